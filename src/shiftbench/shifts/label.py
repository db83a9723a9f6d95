"""Label shift: the class prior changes, p(x|y) does not (Lipton et al. 2018; Alexandari et al. 2020).

Every prior builder resamples the pool with replacement so that class k gets
floor(n * q_k) samples plus its share of the remainder drawn from q, and records
both the designed prior q and the realised label frequencies (`target_prior`) in
`meta`. label_correlated_order keeps the samples and only reorders the stream.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from .registry import generator, register_shift

Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]


def resample_to_prior(data: ImageSet, q: torch.Tensor, n: int, g: torch.Generator) -> ImageSet:
    """n samples whose labels follow prior q, drawn with replacement from data within each class."""
    k = data.num_classes
    q = q.double() / q.sum()
    counts = torch.floor(n * q).long()
    remainder = n - int(counts.sum())
    if remainder > 0:
        counts += torch.bincount(torch.multinomial(q, remainder, replacement=True, generator=g), minlength=k)
    picks = []
    for c in range(k):
        if counts[c] == 0:
            continue
        pool = torch.nonzero(data.labels == c).flatten()
        if len(pool) == 0:
            raise ValueError(f"class {c} has no samples to draw from")
        picks.append(pool[torch.randint(len(pool), (int(counts[c]),), generator=g)])
    index = torch.cat(picks)
    index = index[torch.randperm(len(index), generator=g)]
    out = data.subset(index)
    return out.with_(meta={**data.meta, "designed_prior": q.tolist(), "target_prior": out.class_prior().tolist()})


@register_shift("dirichlet_prior", "label")
def dirichlet_prior(data: ImageSet, *, seed: int, alpha: Positive = 1.0, n: Count = 2000) -> ImageSet:
    """Class prior q ~ Dirichlet(alpha * 1); smaller alpha, sharper shift."""
    g = generator(seed)
    gamma = torch._standard_gamma(torch.full((data.num_classes,), float(alpha), dtype=torch.float64), generator=g)
    q = gamma / gamma.sum()
    return resample_to_prior(data, q, n, g)


@register_shift("long_tail", "label")
def long_tail(data: ImageSet, *, seed: int, rho: Annotated[float, Field(ge=1)] = 10.0, n: Count = 2000,
              reverse: bool = False) -> ImageSet:
    """Exponential long tail: class k has weight rho^(-k/(K-1)); head is class 0 (last if reverse)."""
    k = data.num_classes
    q = torch.tensor([rho ** (-i / (k - 1)) for i in range(k)], dtype=torch.float64)
    if reverse:
        q = q.flip(0)
    return resample_to_prior(data, q, n, generator(seed))


@register_shift("tweak_one", "label")
def tweak_one(data: ImageSet, *, seed: int, rho: Annotated[float, Field(ge=0, le=1)] = 0.9,
              target_class: Annotated[int, Field(ge=0)] = 0, n: Count = 2000) -> ImageSet:
    """Tweak-one: class target_class gets prior rho, the other K-1 classes share 1 - rho equally."""
    k = data.num_classes
    if target_class >= k:
        raise ValueError(f"target_class must be < {k}, got {target_class}")
    q = torch.full((k,), (1 - rho) / (k - 1), dtype=torch.float64)
    q[target_class] = rho
    return resample_to_prior(data, q, n, generator(seed))


@register_shift("minority_classes", "label")
def minority_classes(data: ImageSet, *, seed: int, m: Count = 3, p: Annotated[float, Field(ge=0, lt=1)] = 0.01,
                     n: Count = 2000) -> ImageSet:
    """m classes (drawn by the seed) get prior p each; the others share 1 - m p equally."""
    k = data.num_classes
    if m >= k or m * p > 1:
        raise ValueError(f"minority_classes needs m < {k} and m * p <= 1, got m={m}, p={p}")
    g = generator(seed)
    minority = torch.randperm(k, generator=g)[:m]
    q = torch.full((k,), (1 - m * p) / (k - m), dtype=torch.float64)
    q[minority] = p
    out = resample_to_prior(data, q, n, g)
    return out.with_(meta={**out.meta, "minority_classes": sorted(minority.tolist())})


@register_shift("label_correlated_order", "label")
def label_correlated_order(data: ImageSet, *, seed: int, concentration: Annotated[float, Field(ge=0)] = 0.1,
                           chunks: Count | None = None) -> ImageSet:
    """Reorder the stream so that batches hold few classes (non-i.i.d. test streams; samples unchanged).

    The stream is cut into `chunks` time slots (default: K, one per class, as in RoTTA's
    Dirichlet stream); each class spreads its samples over the slots with proportions
    ~ Dirichlet(concentration * 1), and slots play in order, shuffled inside.
    Small concentration: each class lives in few slots; 0: sorted by label.
    """
    g = generator(seed)
    chunks = chunks or data.num_classes
    n = len(data)
    if concentration == 0:
        perm = torch.randperm(n, generator=g)
        index = perm[torch.sort(data.labels[perm], stable=True).indices]
    else:
        slot = torch.empty(n, dtype=torch.int64)
        for c in torch.unique(data.labels).tolist():
            members = torch.nonzero(data.labels == c).flatten()
            members = members[torch.randperm(len(members), generator=g)]
            share = torch._standard_gamma(torch.full((chunks,), float(concentration), dtype=torch.float64), generator=g)
            if share.sum() == 0:  # every gamma underflowed (tiny concentration): one slot takes the class
                share[torch.randint(chunks, (1,), generator=g)] = 1.0
            counts = torch.floor(len(members) * share / share.sum()).long()
            left = len(members) - int(counts.sum())
            if left:
                counts += torch.bincount(torch.multinomial(share / share.sum(), left, replacement=True, generator=g),
                                         minlength=chunks)
            slot[members] = torch.repeat_interleave(torch.arange(chunks), counts)
        key = slot.double() + torch.rand(n, generator=g, dtype=torch.float64)  # slots in order, shuffled inside
        index = torch.argsort(key)
    out = data.subset(index)
    return out.with_(meta={**data.meta, "order": "label_correlated", "concentration": concentration})
