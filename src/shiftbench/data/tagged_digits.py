"""A small synthetic tagged dataset for MetaShift-style context shifts: the digits over background patterns.

Each image carries one or two context tags out of eight background patterns,
drawn faintly behind the digit. The tags sit on a chain (in CONTEXTS order): an
image's first tag is uniform, and with probability `second_tag` it gets a
second one, a chain neighbour with probability `near`, two steps away with
probability `next`, else any other tag (steps past an end fold back inside). So
neighbouring contexts co-occur often and the co-occurrence graph of
`digit(context)` subsets is roughly a path: far apart on the chain = far apart
in MetaShift's distance. (A path, not a ring: a ring's Laplacian has repeated
eigenvalues, which makes a spectral embedding arbitrary within each pair.)

Splits carry meta["tags"] (N, 8) bool and meta["tag_names"]; meta["tag_universe"]
holds the labels and tags of the whole dataset, from which subset distances are computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from .common import Fraction, Seed, Side
from .digits import build_digit_images
from .manifest import Manifest

Probability = Annotated[float, Field(ge=0, le=1)]
from .registry import DatasetSplits, register_loader

CONTEXTS = ("hstripes", "grid", "vstripes", "checker", "dots", "diagonal", "antidiagonal", "frame")


def pattern(name: str, size: int, window: int) -> torch.Tensor:
    """A (size, size) bool mask of the named background pattern."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    if name == "hstripes":
        return y % 4 == 0
    if name == "vstripes":
        return x % 4 == 0
    if name == "grid":
        return (y % 8 == 0) | (x % 8 == 0)
    if name == "antidiagonal":
        return (x - y) % 6 == 0
    if name == "checker":
        return (y // 4 + x // 4) % 2 == 0
    if name == "dots":
        return (y % 6 < 2) & (x % 6 < 2)
    if name == "diagonal":
        return (x + y) % 6 == 0
    if name == "frame":
        lo, hi = (size - window) // 2 + 1, (size + window) // 2 - 2
        inside = (y >= lo) & (y <= hi) & (x >= lo) & (x <= hi)
        return inside & ((y <= lo + 1) | (y >= hi - 1) | (x <= lo + 1) | (x >= hi - 1))
    raise ValueError(f"unknown pattern '{name}'")


def draw_tags(n: int, g: torch.Generator, second_tag: float, near: float, next_: float) -> torch.Tensor:
    k = len(CONTEXTS)
    first = torch.randint(k, (n,), generator=g)
    u = torch.rand(n, generator=g)
    anywhere = (first + torch.randint(1, k, (n,), generator=g)) % k
    sign = torch.where(torch.rand(n, generator=g) < 0.5, 1, -1)
    step = torch.where(u < near, 1, 2)
    stepped = first + sign * step
    stepped = torch.where((stepped < 0) | (stepped >= k), first - sign * step, stepped)  # fold back at the ends
    second = torch.where(u < near + next_, stepped, anywhere)
    tags = torch.zeros(n, k, dtype=torch.bool)
    tags[torch.arange(n), first] = True
    has_second = torch.rand(n, generator=g) < second_tag
    tags[torch.arange(n)[has_second], second[has_second]] = True
    return tags


@register_loader("tagged_digits", random_test_order=True)
def load_tagged_digits(manifest: Manifest, data_dir: Path | None = None, *, digit_size: Side = 24, canvas: Side = 32,
                       window: Side = 28, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.3,
                       split_seed: Seed = 0, tag_seed: Seed = 0, second_tag: Probability = 0.8,
                       near: Probability = 0.7, next: Probability = 0.2,
                       intensity: Annotated[int, Field(ge=0, le=255)] = 100) -> DatasetSplits:
    p = dict(digit_size=digit_size, canvas=canvas, window=window, val_fraction=val_fraction,
             test_fraction=test_fraction, split_seed=split_seed, tag_seed=tag_seed, second_tag=second_tag, near=near,
             next=next, intensity=intensity)
    images, labels = build_digit_images(p["digit_size"], p["canvas"])
    tags = draw_tags(len(labels), torch.Generator().manual_seed(p["tag_seed"]), p["second_tag"], p["near"], p["next"])
    masks = torch.stack([pattern(c, p["canvas"], p["window"]) for c in CONTEXTS])  # (K, H, W)
    background = (tags.float() @ masks.flatten(1).float()).clamp(max=1).view(-1, 1, p["canvas"], p["canvas"])
    images = torch.maximum(images, (background * p["intensity"]).to(torch.uint8).expand_as(images))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(p["split_seed"]))
    n_test = round(len(labels) * p["test_fraction"])
    n_val = round(len(labels) * p["val_fraction"])
    parts = {"test": perm[:n_test], "source_val": perm[n_test : n_test + n_val], "source_train": perm[n_test + n_val :]}
    classes = tuple(str(i) for i in range(10))
    universe = {"labels": labels, "tags": tags}
    sets = {k: ImageSet(images[idx], labels[idx], classes, window=p["window"],
                        meta={"tags": tags[idx], "tag_names": CONTEXTS, "tag_universe": universe})
            for k, idx in parts.items()}
    return DatasetSplits(manifest.name, **sets)
