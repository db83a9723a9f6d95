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


class Corruption:
    def __init__(self, name: str, fn: Callable, cifar: tuple, imagenet: tuple):
        assert len(cifar) == 5 and len(imagenet) == 5, name
        self.name, self.fn, self.cifar, self.imagenet = name, fn, tuple(cifar), tuple(imagenet)

    def param(self, severity: int, table: str, image_size: int) -> Any:
        if table == "auto":
            table = "cifar" if image_size <= SMALL_IMAGE_MAX else "imagenet"
        return (self.cifar if table == "cifar" else self.imagenet)[severity - 1]

    def apply_float(self, x: torch.Tensor, severity: int, seed: int, table: str = "auto") -> torch.Tensor:
        g = generator(seed, x.device)
        return self.fn(x, self.param(severity, table, x.shape[-1]), g).clamp_(0, 1)


CORRUPTIONS: dict[str, Corruption] = {}


def register_corruption(name: str, *, cifar: tuple, imagenet: tuple):
    """Decorator registering fn(x, param, generator) as covariate shift `name` with `severity`."""

    def wrap(fn):
        corruption = Corruption(name, fn, cifar, imagenet)
        CORRUPTIONS[name] = corruption

        def shift(data: ImageSet, *, seed: int, severity: Severity = 3, table: Table = "auto") -> ImageSet:
            x = data.images.to(torch.float32).mul_(1 / 255)
            g = generator(seed, x.device)
            y = corruption.fn(x, corruption.param(severity, table, x.shape[-1]), g)
            return data.with_(images=to_uint8(y))

        shift.__doc__ = fn.__doc__
        shift.__name__ = name
        register_shift(name, "covariate")(shift)
        return fn

    return wrap


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats (clipped) to 0..255, rounding half up."""
    return x.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
