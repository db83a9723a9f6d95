"""A scenario's built segments -> the stream a method sees: the image-level stream settings.

  mix          every segment's images shuffled into one segment (seeded); meta["domains"] holds
               each image's segment index and meta["domain_meta"] each segment's own meta, so
               per-segment metrics survive the mixing (`domains`)
  label_order  a non-i.i.d. order by class, from the registered label_correlated_order shift,
               within each segment (after mixing: over the mixed stream)
  cycles       the list of segments repeated; the copies are the same objects (no extra memory)

A segment object that occurs twice in the list (a chain that recurs) stays one object.

The chains and severities are resolved earlier (run/stream_settings.py); this is what acts on
images, so that it counts as evaluator code in every cell's key.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.hashing import seed_from
from ..core.imageset import ImageSet
from ..core.spill import empty_images
from ..shifts import get_shift


def lay_out(segments: list[ImageSet], layout: dict[str, Any], seed: int) -> list[ImageSet]:
    if layout["mix"]:
        segments = [mix(segments, seed_from(seed, "mix"))]
    order = layout["label_order"]
    if order is not None:
        ordered: dict[int, ImageSet] = {}  # a segment object played twice is ordered once
        for i, s in enumerate(segments):
            if id(s) not in ordered:
                ordered[id(s)] = order_by_label(s, order, seed_from(seed, "label_order", i))
        segments = [ordered[id(s)] for s in segments]
    return segments * layout["cycles"]


def mix(segments: list[ImageSet], seed: int) -> ImageSet:
    """All images of all segments in one seeded random order, each remembering its segment."""
    first = segments[0]
    for i, s in enumerate(segments):
        if s.images.shape[1:] != first.images.shape[1:] or s.window != first.window or s.classes != first.classes:
            raise ValueError(f"cannot mix segment {i} with segment 0: image size, window or classes differ")
    sizes = [len(s) for s in segments]
    n = sum(sizes)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # mixed row j = concatenated row order[j]
    position = torch.empty(n, dtype=torch.int64)
    position[order] = torch.arange(n)
    images = empty_images((n, *first.images.shape[1:]))
    start = 0
    for s in segments:  # fill in place: never two full copies of the stream at once
        images[position[start:start + len(s)]] = s.images
        start += len(s)
    domains = torch.repeat_interleave(torch.arange(len(segments)), torch.tensor(sizes))[order]

    def joined(name: str) -> torch.Tensor | None:
        parts = [getattr(s, name) for s in segments]
        if any(p is None for p in parts):
            return None
        if name == "source_index":  # keep views of different segments' images apart
            offsets = torch.cumsum(torch.tensor([0] + [int(p.max()) + 1 if len(p) else 0 for p in parts[:-1]]), 0)
            parts = [p + o for p, o in zip(parts, offsets)]
        return torch.cat(parts)[order]

    return ImageSet(images, torch.cat([s.labels for s in segments])[order], first.classes,
                    groups=joined("groups"), source_index=joined("source_index"), window=first.window,
                    meta={"domains": domains, "domain_meta": [s.meta for s in segments]})


def order_by_label(segment: ImageSet, order: dict[str, Any], seed: int) -> ImageSet:
    """The segment in the order the label-order shift gives its labels (its images are not touched
    to find it: the shift runs on a stand-in that carries only the labels and the row numbers)."""
    params = {k: v for k, v in order.items() if k != "shift"}
    n = len(segment)
    stand_in = ImageSet(torch.zeros((n, 1, 1, 1), dtype=torch.uint8), segment.labels, segment.classes,
                        source_index=torch.arange(n))
    index = get_shift(order["shift"]).fn(stand_in, seed=seed, **params).source_index
    out = segment.subset(index)
    if "domains" in segment.meta:
        out = out.with_(meta={**segment.meta, "domains": segment.meta["domains"][index]})
    return out


def domains(segment: ImageSet, logits: torch.Tensor) -> list[tuple[ImageSet, torch.Tensor]]:
    """A played segment split back into the segments it was mixed from, in their order, each with
    its logits (in stream order); a segment that was not mixed is its own only part."""
    which = segment.meta.get("domains")
    if which is None:
        return [(segment, logits)]
    parts = []
    for d, meta in enumerate(segment.meta["domain_meta"]):
        rows = torch.nonzero(which == d).flatten()
        parts.append((segment.subset(rows).with_(meta=meta), logits[rows]))
    return parts
