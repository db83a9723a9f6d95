"""Label shift: the class prior changes, p(x|y) does not (REFERENCE.md section 3).

Every builder resamples the pool with replacement so that class k gets
floor(n * q_k) samples plus its share of the remainder drawn from q, and records
both the designed prior q and the realised label frequencies in `meta`.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ..imageset import ImageSet
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
