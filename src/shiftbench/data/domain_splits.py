"""Splits of a set made of several domains (DomainBed folders, DomainNet-126 lists, MetaShift subsets).

Every split keeps every domain, each image tagged with its domain (ImageSet.domains): a
benchmark says which domain(s) train the source model with a `domain_subset` train shift and
which one a scenario tests on with a `domain_subset` test shift (shifts/domain.py), so one
loaded set serves every source/target pair. source_train and source_val are a seeded
(1 - holdout_fraction) / holdout_fraction split of each domain (DomainBed's per-environment
hold-out); test holds every image of every domain, as stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core.imageset import ImageSet
from .image_folder import decode_images
from .registry import DatasetSplits


def holdout_rows(domains: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train rows, held-out rows): within each domain a seeded `fraction` is held out; both sorted."""
    g = torch.Generator().manual_seed(seed)
    train, held = [], []
    for d in torch.unique(domains).tolist():
        rows = (domains == d).nonzero().flatten()
        perm = rows[torch.randperm(len(rows), generator=g)]
        n_held = round(len(rows) * fraction)
        held.append(perm[:n_held])
        train.append(perm[n_held:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def domain_splits(name: str, paths: list[Path], labels: torch.Tensor, domains: torch.Tensor,
                  classes: tuple[str, ...], domain_names: tuple[str, ...], p: dict[str, Any],
                  where: str) -> DatasetSplits:
    """Decode `paths` once (through decode_images) and build the three splits of a multi-domain set.

    p: channels, size, resize, crop, window, holdout_fraction, split_seed.
    """
    images = decode_images(paths, int(p.get("channels") or 3), p.get("size"), p.get("resize"), p.get("crop"), where)
    data = ImageSet(images, labels.to(torch.int64), tuple(classes), domains=domains.to(torch.int64),
                    domain_names=tuple(domain_names), window=p.get("window"))
    train_rows, val_rows = holdout_rows(data.domains, float(p["holdout_fraction"]), int(p["split_seed"]))
    return DatasetSplits(name, data.subset(train_rows), data.subset(val_rows), data)

