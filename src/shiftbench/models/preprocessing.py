"""What a network expects of its input, applied inside the model wrapper so every method still passes [0, 1] images.

Fields (each optional): `mean` and `std` (per channel, or one number), `input_size` (the
side the network was trained at), `resize` (the shorter side images are resized to before
the centre crop to `input_size`; default `input_size`), `interpolation`. An image whose
side already equals `input_size` is taken as it is: it was already resized and cropped
(ImageNet-C stores 224 px crops made by resize 256 + centre crop 224; CIFAR images are
32 px), so only mean and std apply. Otherwise it is resized (antialiased, like PIL) and
centre-cropped first, as torchvision's and timm's evaluation transforms do.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

Side = Annotated[int, Field(ge=1, le=8192)]
FIELDS = ("mean", "std", "input_size", "resize", "interpolation")


class Preprocessing(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mean: list[float] | None = None
    std: list[float] | None = None
    input_size: Side | None = None
    resize: Side | None = None
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"

    @field_validator("mean", "std", mode="before")
    @classmethod
    def _listed(cls, v):
        return [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    @field_validator("std")
    @classmethod
    def _positive(cls, v):
        if v is not None and any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v

    def with_(self, **changes) -> Preprocessing:
        """A copy with the given fields replaced (validated again)."""
        return Preprocessing(**{**self.model_dump(), **changes})

    def record(self) -> dict:
        """As written into provenance."""
        return self.model_dump()


def resize_and_crop(x: torch.Tensor, p: Preprocessing) -> torch.Tensor:
    """Float images (N, C, H, W) resized so the shorter side is p.resize, then centre-cropped to
    p.input_size; unchanged when they are already input_size square (or no input_size is set)."""
    size = p.input_size
    h, w = x.shape[-2:]
    if size is None or (h == size and w == size):
        return x
    short = p.resize or size
    if min(h, w) != short:
        # the long side truncated and the crop offsets rounded as torchvision's Resize / CenterCrop do
        new = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
        mode = p.interpolation
        x = F.interpolate(x, size=new, mode=mode, antialias=mode != "nearest",
                          **({} if mode == "nearest" else {"align_corners": False}))
        if mode == "bicubic":
            x = x.clamp(0, 1)
        h, w = new
    if h < size or w < size:
        raise ValueError(f"images of {h}x{w} px after resizing are smaller than the input size {size}")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]
