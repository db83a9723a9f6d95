"""Latent label shift (Roberts, Mani, Garg, Lipton: Unsupervised Learning under Latent Label Shift,
NeurIPS 2022; code acmi-lab/Latent-Label-Shift-DDFA): several domains whose label marginals p_d(y)
differ while p(x|y) stays fixed, built from one labelled pool as the paper's semi-synthetic
experiments build them.

The D x K prior matrix has rows p_d ~ Dirichlet(concentration / K, ..., concentration / K), drawn
again until its condition number is at most `max_condition` (None: the first draw); entries
below 1e-7 become 0 and the rows are renormalised. Domains are equally large: domain d gets
floor(p_d(y) s / D) images of class y, the scale s = min_y n_y / max_y (mean_d p_d(y)) chosen so
that the class needed most still fits in the pool (n_y images of class y), and the images are
drawn without replacement, seeded. A method sees the images and their domain index, not the
labels; `LatentDomains.priors` is the realised p_d(y) (counts over domain size), the truth an
estimate of p_d(y) is scored against.

As a registered shift (`latent_label_domains`, family label) it returns the drawn images in a
seeded random order (the draw lists them domain by domain, class by class, which would hand a
batch-wise method one class per batch), each image's domain in ImageSet.domains (names
`domain-0`, ...), and in meta `domain_priors` (the realised p_d(y), K x D: the truth the
evaluator scores recovered priors and matched accuracy against), `designed_domain_priors` and
`domain_prior_condition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from ..core.imageset import ImageSet
from .registry import generator, register_shift

ZERO_BELOW = 1e-7
MAX_DRAWS = 10_000


@dataclass(frozen=True)
class LatentDomains:
    rows: torch.Tensor  # indices into the pool, grouped by domain
    domains: torch.Tensor  # the domain of each row
    priors: torch.Tensor  # K x D, column d the realised p_d(y)
    design: torch.Tensor  # K x D, the drawn prior matrix (transposed), before rounding to counts
    condition: float


def prior_matrix(k: int, n_domains: int, concentration: float, rng: np.random.Generator,
                 max_condition: float | None = None) -> tuple[np.ndarray, float]:
    """D x K, rows ~ Dirichlet(concentration / K), redrawn until cond <= max_condition; and its condition number."""
    for _ in range(MAX_DRAWS):
        p = rng.dirichlet(np.full(k, concentration / k), n_domains)
        cond = float(np.linalg.cond(p))
        if max_condition is None or cond <= max_condition:
            break
    else:
        raise ValueError(f"no {n_domains} x {k} Dirichlet({concentration}) prior matrix with condition number <= "
                         f"{max_condition} in {MAX_DRAWS} draws")
    p = np.where(p < ZERO_BELOW, 0.0, p)
    return p / p.sum(1, keepdims=True), cond


def latent_domains(labels: torch.Tensor, k: int, n_domains: int, concentration: float, seed: int,
                   max_condition: float | None = None) -> LatentDomains:
    """Split a labelled pool into n_domains domains with Dirichlet label marginals (see the module's text)."""
    if n_domains < 1 or concentration <= 0:
        raise ValueError("need at least one domain and a positive concentration")
    rng = np.random.default_rng(seed)
    p, cond = prior_matrix(k, n_domains, concentration, rng, max_condition)
    available = np.bincount(labels.numpy(), minlength=k)
    need = p.mean(0)
    scale = available.min() / need.max()
    counts = np.floor(p * scale / n_domains).astype(np.int64)  # D x K
    pools = [rng.permutation(np.flatnonzero(labels.numpy() == c)) for c in range(k)]
    taken = np.zeros(k, dtype=np.int64)
    rows, domains = [], []
    for d in range(n_domains):
        for c in range(k):
            rows.append(pools[c][taken[c]:taken[c] + counts[d, c]])
            domains.append(np.full(counts[d, c], d))
            taken[c] += counts[d, c]
    sizes = counts.sum(1, keepdims=True)
    priors = counts / np.maximum(sizes, 1)
    return LatentDomains(torch.from_numpy(np.concatenate(rows)), torch.from_numpy(np.concatenate(domains)),
                         torch.from_numpy(priors.T.copy()), torch.from_numpy(p.T.copy()), cond)


@register_shift("latent_label_domains", "label")
def latent_label_domains(data: ImageSet, *, seed: int, n_domains: Annotated[int, Field(ge=2, le=1000)] = 10,
                         concentration: Annotated[float, Field(gt=0, le=10_000)] = 3.0,
                         max_condition: Annotated[float, Field(ge=1)] | None = None) -> ImageSet:
    """Several unlabelled domains with Dirichlet(concentration / K) label marginals, p(x|y) shared (DDFA's setting)."""
    split = latent_domains(data.labels, data.num_classes, n_domains, concentration, seed, max_condition)
    order = torch.randperm(len(split.rows), generator=generator(seed))
    out = data.subset(split.rows[order])
    return out.with_(domains=split.domains[order].clone(), domain_names=tuple(f"domain-{d}" for d in range(n_domains)),
                     meta={**data.meta, "domain_priors": split.priors.tolist(),
                           "designed_domain_priors": split.design.tolist(), "domain_prior_condition": split.condition})
