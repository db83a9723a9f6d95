"""CIFAR-10-C / CIFAR-100-C as published (Hendrycks & Dietterich 2019), read from their .npy files.

Layout: `<corruption>.npy` of shape (50000, 32, 32, 3) uint8 holds the 10,000
test images at severity 1, then 2, ... 5: severity s is rows
[(s-1)*10000, s*10000). `labels.npy` (50000,) repeats the test labels 5 times.

As a dataset (`dataset: cifar10c`), the source splits are the clean source
dataset's (params.source) and the test split is `test_corruptions` at
`test_severity`, concatenated, with the corruption's index as the group. To play
one corruption as a scenario of a clean benchmark, use the `corruption_file`
shift instead (data/corrupted_files.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from pydantic import Field

from ..core.errors import UserError
from .common import from_nhwc
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, load_dataset, register_loader

ROWS_PER_SEVERITY = 10_000


def _load_npy(path: Path) -> np.ndarray:
    if not path.exists():
        raise UserError("file not found", source=str(path))
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise UserError(f"not a .npy array ({e})", source=str(path)) from None


def read_cifar_c(folder: Path, corruption: str, severity: int,
                 rows_per_severity: int = ROWS_PER_SEVERITY) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 (n, 3, H, W) and labels int64 (n,) of one corruption at one severity (1..5)."""
    if not 1 <= severity <= 5:
        raise UserError(f"severity must be 1..5, got {severity}")
    images = _load_npy(folder / f"{corruption}.npy")
    labels = _load_npy(folder / "labels.npy")
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise UserError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}",
                        source=str(folder / f"{corruption}.npy"))
    if len(images) != 5 * rows_per_severity or len(labels) != len(images):
        raise UserError(f"expected {5 * rows_per_severity} rows (5 severities x {rows_per_severity}) "
                        f"and as many labels, got {len(images)} images, {len(labels)} labels", source=str(folder))
    rows = slice((severity - 1) * rows_per_severity, severity * rows_per_severity)
    return from_nhwc(np.array(images[rows])), torch.from_numpy(np.array(labels[rows])).to(torch.int64)


def available_corruptions(manifest: Manifest) -> list[str]:
    return list(manifest.params.get("corruptions", []))


def check_corruption(manifest: Manifest, corruption: str) -> None:
    known = available_corruptions(manifest)
    if known and corruption not in known:
        raise UserError(f"unknown corruption '{corruption}' for {manifest.name}; known: {', '.join(known)}",
                        field="corruption")


@register_loader("cifar_c")
def load_cifar_c(manifest: Manifest, data_dir: Path | None = None, *, source: str = "cifar10",
                 corruptions: list[str] = [], test_corruptions: list[str] = [],  # noqa: B006 (validated copies)
                 test_severity: Annotated[int, Field(ge=1, le=5)] = 5,
                 rows_per_severity: Annotated[int, Field(ge=1)] = ROWS_PER_SEVERITY) -> DatasetSplits:
    p = dict(source=source, test_severity=test_severity, rows_per_severity=rows_per_severity)
    names = test_corruptions or corruptions
    if not names:
        raise UserError("params.test_corruptions (or params.corruptions) must name at least one corruption",
                        source=f"data_manifests/{manifest.name}.yaml")
    source = load_dataset(p["source"], data_dir)
    folder = require_data(manifest, data_dir)
    parts = [read_cifar_c(folder, name, int(p["test_severity"]), int(p["rows_per_severity"])) for name in names]
    images = torch.cat([x for x, _ in parts])
    labels = torch.cat([y for _, y in parts])
    groups = torch.arange(len(names)).repeat_interleave(torch.tensor([len(y) for _, y in parts]))
    test = source.test.with_(images=images, labels=labels, groups=groups, source_index=None,
                             meta={"corruptions": list(names), "severity": int(p["test_severity"]),
                                   "corruption_source": "files"})
    return DatasetSplits(manifest.name, source.source_train, source.source_val, test)
