"""Translation: realistic window shifts (real content enters at the border) and cyclic rolls.

Each image yields two views, the centred window and one shifted by exactly
`distance` pixels (Chebyshev), so the evaluator can measure prediction
consistency over views sharing a source_index.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..imageset import ImageSet
from .registry import generator, register_shift


def ring_offsets(distance: int) -> torch.Tensor:
    """All (dy, dx) with max(|dy|, |dx|) == distance."""
    r = torch.arange(-distance, distance + 1)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    keep = torch.maximum(dy.abs(), dx.abs()) == distance
    return torch.stack([dy[keep], dx[keep]], dim=1)


def crop_at(images: torch.Tensor, window: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Per-image crop of size window whose top-left is the centred one moved by (dy, dx)."""
    n, c, h, w = images.shape
    base = (h - window) // 2
    rows = (base + dy)[:, None] + torch.arange(window)[None, :]  # (n, window)
    cols = (base + dx)[:, None] + torch.arange(window)[None, :]
    idx_n = torch.arange(n)[:, None, None]
    out = images.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def roll_each(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """torch.roll of image i by (dy[i], dx[i]), batched."""
    n, c, h, w = images.shape
    rows = (torch.arange(h)[None, :] - dy[:, None]) % h
    cols = (torch.arange(w)[None, :] - dx[:, None]) % w
    idx_n = torch.arange(n)[:, None, None]
    out = images.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


@register_shift("translate", "translation")
def translate(data: ImageSet, *, seed: int, distance: Annotated[int, Field(ge=0)] = 1,
              mode: Literal["realistic", "cyclic"] = "realistic") -> ImageSet:
    """Centred view plus one view shifted by `distance` px: realistic (window moves) or cyclic (roll)."""
    window = data.window or data.image_size
    margin = (data.image_size - window) // 2
    if mode == "realistic" and distance > margin:
        raise ValueError(f"realistic shift of {distance} px needs images larger than the window by {2 * distance} px")
    g = generator(seed)
    n = len(data)
    offsets = ring_offsets(distance) if distance > 0 else torch.zeros(1, 2, dtype=torch.long)
    pick = offsets[torch.randint(len(offsets), (n,), generator=g)]
    zeros = torch.zeros(n, dtype=torch.long)
    centre = crop_at(data.images, window, zeros, zeros)
    if mode == "realistic":
        moved = crop_at(data.images, window, pick[:, 0], pick[:, 1])
    else:
        moved = roll_each(centre, pick[:, 0], pick[:, 1])
    images = torch.stack([centre, moved], dim=1).flatten(0, 1)
    index = torch.arange(n).repeat_interleave(2)
    out = data.subset(index)
    return out.with_(images=images, source_index=index, window=None)
