"""MetaShift's domain-generalization folders (Liang & Zou 2022, `domain_generalization_cat_dog.py`):
`<root>/{train,test}/<class>/<subset>/<image id>.jpg`, e.g. train/dog/dog(bed)/2345678.jpg,
each subset a community of Visual Genome contexts (dog(bed) = bed, blanket, sheet, ...).

Every subset folder is a domain (ImageSet.domains), named by its folder, over both splits, so
a benchmark trains on some subsets (`domain_subset` train shift) and tests on others.
params: `classes` (published order: cat, dog), `train`, `test` (folder names),
`val_fraction` and `split_seed` (source_val: a seeded fraction of each training subset), geometry.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet
from .common import Channels, Fraction, Seed, Side
from .domain_splits import holdout_rows
from .image_folder import IMAGE_SUFFIXES, decode_images
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def list_subsets(folder: Path, classes: list[str]) -> list[tuple[Path, int, str]]:
    """(image, label, subset folder name) of `<folder>/<class>/<subset>/*`, sorted by class, subset, name."""
    if not folder.is_dir():
        raise UserError("folder not found", source=str(folder))
    out = []
    for k, cls in enumerate(classes):
        if not (folder / cls).is_dir():
            raise UserError(f"class folder {cls} missing", source=str(folder))
        for subset in sorted(p for p in (folder / cls).iterdir() if p.is_dir()):
            out += [(f, k, subset.name) for f in sorted(subset.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not out:
        raise UserError("no images found", source=str(folder))
    return out


@register_loader("metashift_folders")
def load_metashift_folders(manifest: Manifest, data_dir: Path | None = None, *, classes: list[str],
                           train: str = "train", test: str = "test", val_fraction: Fraction = 0.1,
                           split_seed: Seed = 0, channels: Channels = 3, size: Side | None = None,
                           resize: Side | None = None, crop: Side | None = None,
                           window: Side | None = None) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    parts = {name: list_subsets(root / name, list(classes)) for name in (train, test)}
    domain_names = tuple(sorted({s for rows in parts.values() for _, _, s in rows}))

    def imageset(rows, where):
        images = decode_images([f for f, _, _ in rows], int(channels), size, resize, crop, where)
        return ImageSet(images, torch.tensor([k for _, k, _ in rows], dtype=torch.int64), tuple(classes),
                        domains=torch.tensor([domain_names.index(s) for _, _, s in rows], dtype=torch.int64),
                        domain_names=domain_names, window=window)

    source = imageset(parts[train], str(root / train))
    train_rows, val_rows = holdout_rows(source.domains, float(val_fraction), int(split_seed))
    return DatasetSplits(manifest.name, source.subset(train_rows), source.subset(val_rows),
                         imageset(parts[test], str(root / test)))
