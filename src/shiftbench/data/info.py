"""What a dataset on disk holds (`shiftbench data info`): images per split, per domain and per class, classes in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core.imageset import ImageSet
from .registry import load_dataset

SPLITS = ("source_train", "source_val", "test")


def split_counts(data: ImageSet) -> dict[str, Any]:
    out: dict[str, Any] = {"n_images": len(data),
                           "images_per_class": dict(zip(data.classes, torch.bincount(
                               data.labels, minlength=data.num_classes).tolist()))}
    if data.domains is not None and data.domain_names:
        out["images_per_domain"] = dict(zip(data.domain_names, torch.bincount(
            data.domains, minlength=len(data.domain_names)).tolist()))
    return out


def dataset_info(name: str, data_dir: str | Path | None = None) -> dict[str, Any]:
    """The dataset loaded from disk, described: name, classes (label order), then per split its counts."""
    splits = load_dataset(name, data_dir)
    test = splits.test
    info: dict[str, Any] = {"name": name, "classes": list(test.classes)}
    if test.domain_names:
        info["domains"] = list(test.domain_names)
    info["n_images"] = {s: len(splits.split(s)) for s in SPLITS}
    info["splits"] = {s: split_counts(splits.split(s)) for s in SPLITS}
    return info
