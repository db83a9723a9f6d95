"""Translation: realistic window shifts (real content enters at the border) and cyclic rolls.

Every shift here turns each image into several views that share a source_index,
laid out image-major (row i * V + v is view v of image i), so the evaluator can
measure how often predictions agree across views.

Realistic views keep a margin: a view moved by (dy, dx) is the (canvas - 2 * D)
square, D the largest shift of the scenario, whose centred `window` is exactly
the model's window moved by (dy, dx) inside the real canvas. Ordinary methods
see that centred window; crop selection may look at the margin around it.
Cyclic views are the centred window rolled (torch.roll), window-sized.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from ..core.spill import empty_images
from .registry import generator, register_shift

Mode = Literal["realistic", "cyclic"]


def ring_offsets(distance: int) -> torch.Tensor:
    """All (dy, dx) with max(|dy|, |dx|) == distance."""
    r = torch.arange(-distance, distance + 1)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    keep = torch.maximum(dy.abs(), dx.abs()) == distance
    return torch.stack([dy[keep], dx[keep]], dim=1)


def grid_offsets(distance: int) -> torch.Tensor:
    """All (dy, dx) in [-distance, distance]^2, row-major (the centre is the middle row)."""
    r = torch.arange(-distance, distance + 1)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([dy.flatten(), dx.flatten()], dim=1)


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


def make_views(data: ImageSet, offsets: torch.Tensor, mode: Mode, max_shift: int, meta: dict | None = None) -> ImageSet:
    """Views of every image at offsets (n, V, 2), image-major, sharing source_index.

    realistic: the (canvas - 2 * max_shift) square centred on the window moved by the offset;
    cyclic: the centred window rolled by the offset.
    """
    n, v = offsets.shape[:2]
    window = data.window or data.image_size
    if mode == "realistic":
        room = (data.image_size - window) // 2
        if max_shift > room:
            raise ValueError(f"a realistic shift of {max_shift} px needs images larger than the window by "
                             f"{2 * max_shift} px; these have {data.image_size - window} (window {window})")
        size = data.image_size - 2 * max_shift
        source = data.images
    else:
        size = window
        source = crop_at(data.images, window, torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long))
    index = torch.arange(n).repeat_interleave(v)
    flat = offsets.reshape(n * v, 2)
    view = crop_at if mode == "realistic" else (lambda x, _, dy, dx: roll_each(x, dy, dx))
    images = empty_images((n * v, data.images.shape[1], size, size))  # a large set's views go to a spill file
    per = max(1, (32 << 20) // max(1, source[0].numel() * v))  # views made for this many images at a time
    for start in range(0, n, per):
        rows = slice(start * v, min(n, start + per) * v)
        images[rows] = view(source[index[rows]], size, flat[rows, 0], flat[rows, 1])
    out = data.subset(index, images=images)
    return out.with_(source_index=index, window=window, meta={**data.meta, **(meta or {})})


@register_shift("translate", "translation")
def translate(data: ImageSet, *, seed: int, distance: Annotated[int, Field(ge=0)] = 1, mode: Mode = "realistic") -> ImageSet:
    """Centred view plus one view shifted by exactly `distance` px (Chebyshev): realistic or cyclic."""
    g = generator(seed)
    n = len(data)
    ring = ring_offsets(distance) if distance > 0 else torch.zeros(1, 2, dtype=torch.long)
    moved = ring[torch.randint(len(ring), (n,), generator=g)]
    offsets = torch.stack([torch.zeros_like(moved), moved], dim=1)
    return make_views(data, offsets, mode, distance)


@register_shift("translate_grid", "translation")
def translate_grid(data: ImageSet, *, seed: int, distance: Annotated[int, Field(ge=1)] = 1,
                   mode: Mode = "realistic") -> ImageSet:
    """Every shift in [-distance, distance]^2 of every image: per-shift accuracy and fooling rate (distance 1)."""
    grid = grid_offsets(distance)
    offsets = grid[None].expand(len(data), -1, -1)
    return make_views(data, offsets, mode, distance, meta={"view_offsets": grid.tolist()})


@register_shift("translate_pair", "translation")
def translate_pair(data: ImageSet, *, seed: int, max_shift: Annotated[int, Field(ge=1)] = 2,
                   mode: Mode = "realistic") -> ImageSet:
    """Two views at independent uniform shifts in [-max_shift, max_shift]^2 (Zhang 2019 consistency)."""
    g = generator(seed)
    offsets = torch.randint(-max_shift, max_shift + 1, (len(data), 2, 2), generator=g)
    return make_views(data, offsets, mode, max_shift)
