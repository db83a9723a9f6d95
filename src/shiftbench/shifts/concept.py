"""Concept shift: p(y|x) changes while p(x) may stay (spurious correlations as in ColoredMNIST /
Waterbirds, relabelled subpopulations); every image gets a group (label x attribute) and the test
groups' sizes are reported."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from .registry import generator, register_shift

Probability = Annotated[float, Field(ge=0, le=1)]
ClassIndex = Annotated[int, Field(ge=0, le=100_000)]
COLOURS = ("red", "green")


def with_group_sizes(data: ImageSet, groups: torch.Tensor, names: dict[int, str], **changes) -> ImageSet:
    """data with `groups` set and the size of every group that occurs reported beside the metrics (meta.report):
    a worst-group accuracy over a group of a few images is a coarse, noisy number, so the page shows the sizes."""
    sizes = {names.get(int(g), str(int(g))): int(n) for g, n in zip(*torch.unique(groups, return_counts=True))}
    meta = {**data.meta, **changes.pop("meta", {})}
    meta["report"] = {**meta.get("report", {}), "group_sizes": sizes}
    return data.with_(groups=groups, meta=meta, **changes)


@register_shift("spurious_colour", "concept")
def spurious_colour(data: ImageSet, *, seed: int, correlation: Probability = 0.9, threshold: ClassIndex = 5) -> ImageSet:
    """ColoredMNIST-style colour: red if (label < threshold) with probability `correlation`, else green.

    Train with a high correlation and test with a low one and p(y | colour) flips.
    groups = 2 * label + colour (colour 0 = red, 1 = green).
    """
    if data.images.shape[1] != 3:
        raise ValueError("spurious_colour needs 3-channel images")
    g = generator(seed)
    binary = (data.labels < threshold).long()
    agree = torch.rand(len(data), generator=g) < correlation
    colour = torch.where(agree, 1 - binary, binary)  # binary=1 (small digits) -> red (0) when agreeing
    gray = data.images.max(dim=1).values
    images = torch.zeros_like(data.images)
    images[:, 0] = torch.where(colour[:, None, None] == 0, gray, torch.zeros_like(gray))
    images[:, 1] = torch.where(colour[:, None, None] == 1, gray, torch.zeros_like(gray))
    names = {2 * k + c: f"class {data.classes[k]} {COLOURS[c]}" for k in range(data.num_classes)
             for c in (0, 1)}
    return with_group_sizes(data, 2 * data.labels + colour, names, images=images)


@register_shift("colored_mnist", "concept")
def colored_mnist(data: ImageSet, *, seed: int, colour_flip: Probability = 0.1, label_noise: Probability = 0.25,
                  threshold: ClassIndex = 5) -> ImageSet:
    """DomainBed's ColoredMNIST: binary y = 1[digit < threshold] XOR Bernoulli(label_noise), colour = y XOR Bernoulli(colour_flip).

    The digit is drawn in the red channel for colour 0 and the green one for colour 1
    (the other channels zeroed). Shape alone predicts y for 1 - label_noise of the
    images and colour for 1 - colour_flip, so a model trained at colour_flip 0.1 or 0.2
    leans on colour and fails when it flips (0.9). groups = 2 * y + colour.
    """
    if data.images.shape[1] != 3:
        raise ValueError("colored_mnist needs 3-channel images")
    g = generator(seed)
    y = (data.labels < threshold).long() ^ (torch.rand(len(data), generator=g) < label_noise).long()
    colour = y ^ (torch.rand(len(data), generator=g) < colour_flip).long()
    gray = data.images.max(dim=1).values
    images = torch.zeros_like(data.images)
    images[:, 0] = torch.where(colour[:, None, None] == 0, gray, torch.zeros_like(gray))
    images[:, 1] = torch.where(colour[:, None, None] == 1, gray, torch.zeros_like(gray))
    classes = (f"digit >= {threshold}", f"digit < {threshold}")
    names = {2 * k + c: f"{classes[k]} {COLOURS[c]}" for k in (0, 1) for c in (0, 1)}
    return with_group_sizes(data, 2 * y + colour, names, images=images, labels=y, classes=classes)


@register_shift("relabel_subpopulation", "concept")
def relabel_subpopulation(data: ImageSet, *, seed: int, source_class: ClassIndex = 1, target_class: ClassIndex = 7,
                          mass: Probability = 0.5) -> ImageSet:
    """p(x) fixed, a fraction `mass` of source_class's inputs carry target_class as label.

    No adaptation without target labels can undo this: it measures honesty, not skill.
    groups = 1 for relabelled samples, 0 otherwise.
    """
    k = data.num_classes
    if not (0 <= source_class < k and 0 <= target_class < k):
        raise ValueError(f"source_class and target_class must be in [0, {k})")
    g = generator(seed)
    pick = (data.labels == source_class) & (torch.rand(len(data), generator=g) < mass)
    labels = torch.where(pick, torch.full_like(data.labels, target_class), data.labels)
    return with_group_sizes(data, pick.long(), {0: "kept", 1: f"relabelled {source_class}->{target_class}"},
                            labels=labels, meta={"relabelled_fraction": float(pick.float().mean())})
