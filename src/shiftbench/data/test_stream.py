"""The rows of a test split a benchmark plays, and their order: a seeded class-stratified subset, a seeded shuffle.

`n_per_scenario` keeps n rows, each class getting floor(n * its share) plus the remainder
to the classes with the largest fractional parts (ties: lower class index), rows drawn
without replacement by a seeded permutation. The shuffle is a seeded permutation of the
rows. Both record in meta["rows"] the index of each row in the stored split, so the
published corrupted copy of a test set (corruption_file) picks the same images.
"""

from __future__ import annotations

import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet

ROWS = "rows"


def stratified_counts(labels: torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    """How many rows of each class a subset of n rows keeps: proportional, largest remainders first."""
    have = torch.bincount(labels, minlength=num_classes)
    if n > len(labels):
        raise UserError(f"n_per_scenario is {n} but the test split has only {len(labels)} images",
                        field="n_per_scenario")
    exact = have.double() * n / len(labels)
    counts = exact.floor().long()
    order = sorted(range(num_classes), key=lambda k: (-(exact[k] - counts[k]).item(), k))
    for k in order[: n - int(counts.sum())]:
        counts[k] += 1
    return counts


def stratified_subset(data: ImageSet, n: int, seed: int) -> ImageSet:
    """n rows, class shares as in data, drawn by a seeded permutation; rows keep their stored order."""
    counts = stratified_counts(data.labels, n, data.num_classes)
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    picked = []
    for k in range(data.num_classes):
        members = perm[data.labels[perm] == k]  # this class's rows in permuted order
        picked.append(members[: int(counts[k])])
    rows = torch.cat(picked).sort().values
    return _take(data, rows)


def shuffled(data: ImageSet, seed: int) -> ImageSet:
    """The rows in a seeded random order."""
    return _take(data, torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)))


def _take(data: ImageSet, index: torch.Tensor) -> ImageSet:
    rows = data.meta.get(ROWS, torch.arange(len(data)))[index]
    out = data.subset(index)
    return out.with_(meta={**data.meta, ROWS: rows})
