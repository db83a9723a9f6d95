"""How a pixel corruption becomes a registered covariate shift.

A corruption is fn(x, param, generator) -> x' on float images in [0, 1] of shape
(N, C, H, W), batched, on whatever device x lives on. Each is registered with two
parameter tables (REFERENCE.md section 4): the CIFAR-10-C one for images of at
most 64 px and the ImageNet-C one for larger images; `table` overrides the choice.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

import torch
from pydantic import Field

from ..imageset import ImageSet
from .registry import generator, register_shift

Severity = Annotated[int, Field(ge=1, le=5)]
Table = Literal["auto", "cifar", "imagenet"]
SMALL_IMAGE_MAX = 64


# On the CPU a batch is corrupted in blocks of about this many values (2 MB of float32), so
# the temporaries of each step stay in cache: 2-4x faster than whole-batch passes at 224 px.
# CUDA tensors go in one block. The block size is fixed, so the output is still a pure
# function of (images, seed).
CPU_BLOCK_VALUES = 1 << 19


class Corruption:
    def __init__(self, name: str, fn: Callable, cifar: tuple, imagenet: tuple, blocked: bool = True):
        assert len(cifar) == 5 and len(imagenet) == 5, name
        self.name, self.fn, self.cifar, self.imagenet = name, fn, tuple(cifar), tuple(imagenet)
        self.blocked = blocked

    def param(self, severity: int, table: str, image_size: int) -> Any:
        if table == "auto":
            table = "cifar" if image_size <= SMALL_IMAGE_MAX else "imagenet"
        return (self.cifar if table == "cifar" else self.imagenet)[severity - 1]

    def blocks(self, x: torch.Tensor) -> list[slice]:
        n = x.shape[0]
        per = n if x.device.type != "cpu" or not self.blocked else max(1, CPU_BLOCK_VALUES // max(1, x[0].numel()))
        return [slice(i, min(n, i + per)) for i in range(0, n, per)] or [slice(0, 0)]

    def apply_float(self, x: torch.Tensor, severity: int, seed: int, table: str = "auto") -> torch.Tensor:
        """The corrupted float images in [0, 1]."""
        g = generator(seed, x.device)
        p = self.param(severity, table, x.shape[-1])
        return torch.cat([self.fn(x[rows], p, g) for rows in self.blocks(x)]).clamp_(0, 1)

    def apply_uint8(self, images: torch.Tensor, severity: int, seed: int, table: str = "auto") -> torch.Tensor:
        """The corrupted 8-bit images, converted block by block."""
        g = generator(seed, images.device)
        p = self.param(severity, table, images.shape[-1])
        out = torch.empty_like(images)
        for rows in self.blocks(images):
            out[rows] = to_uint8(self.fn(images[rows].to(torch.float32).mul_(1 / 255), p, g))
        return out


CORRUPTIONS: dict[str, Corruption] = {}


def register_corruption(name: str, *, cifar: tuple, imagenet: tuple, blocked: bool = True):
    """Decorator registering fn(x, param, generator) as covariate shift `name` with `severity`.

    blocked=False: always call fn on the whole batch (for functions whose cost is a long
    sequence of small batched steps, which blocks would repeat).
    """

    def wrap(fn):
        corruption = Corruption(name, fn, cifar, imagenet, blocked)
        CORRUPTIONS[name] = corruption

        def shift(data: ImageSet, *, seed: int, severity: Severity = 3, table: Table = "auto") -> ImageSet:
            return data.with_(images=corruption.apply_uint8(data.images, severity, seed, table))

        shift.__doc__ = fn.__doc__
        shift.__name__ = name
        register_shift(name, "covariate")(shift)
        return fn

    return wrap


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats (clipped) to 0..255, rounding half up."""
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
