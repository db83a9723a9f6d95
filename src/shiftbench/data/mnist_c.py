"""MNIST-C (Mu & Gilmer 2019): `mnist_c/<corruption>/{train,test}_{images,labels}.npy`.

Images are uint8 (N, 28, 28, 1), one severity per corruption; `identity` is
clean MNIST. As a dataset (`dataset: mnistc`) the source splits come from
identity/train (seeded source-val hold-out) and the test split is
`test_corruptions` concatenated, the corruption's index as the group. To play
one corruption as a scenario of the MNIST benchmark, use the `corruption_file`
shift (data/corrupted_files.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side, from_nhwc, shape_images, source_and_test
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def read_mnist_c(folder: Path, corruption: str, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 (N, 1, 28, 28) and labels int64 (N,) of one corruption's train or test part."""
    sub = folder / corruption
    if not sub.is_dir():
        known = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        raise UserError(f"no corruption folder '{corruption}'; found: {', '.join(known) or 'none'}", source=str(folder))
    arrays = []
    for kind in ("images", "labels"):
        path = sub / f"{split}_{kind}.npy"
        if not path.exists():
            raise UserError("file not found", source=str(path))
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except ValueError as e:
            raise UserError(f"not a .npy array ({e})", source=str(path)) from None
    images, labels = arrays
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
        raise UserError(f"expected uint8 (N, 28, 28, 1) images and N labels, got {images.dtype} {images.shape} "
                        f"and {labels.shape}", source=str(sub))
    return from_nhwc(images), torch.from_numpy(labels.astype(np.int64).reshape(-1))


@register_loader("mnist_c")
def load_mnist_c(manifest: Manifest, data_dir: Path | None = None, *, source_corruption: str = "identity",
                 corruptions: list[str] = [], test_corruptions: list[str] = [],  # noqa: B006 (validated copies)
                 val_fraction: Fraction = 0.1, split_seed: Seed = 0, window: Side | None = None,
                 canvas: Side | None = None, channels: Channels | None = None) -> DatasetSplits:
    p = dict(source_corruption=source_corruption, val_fraction=val_fraction, split_seed=split_seed, window=window,
             canvas=canvas, channels=channels)
    names = test_corruptions or corruptions
    if not names:
        raise UserError("params.test_corruptions (or params.corruptions) must name at least one corruption",
                        source=f"data_manifests/{manifest.name}.yaml")
    folder = require_data(manifest, data_dir)
    train_x, train_y = read_mnist_c(folder, p["source_corruption"], "train")
    clean_x, clean_y = read_mnist_c(folder, p["source_corruption"], "test")
    splits = source_and_test(manifest.name, train_x, train_y, clean_x, clean_y, tuple(str(i) for i in range(10)), p)
    parts = [read_mnist_c(folder, name, "test") for name in names]
    images = shape_images(torch.cat([x for x, _ in parts]), p.get("channels"), p.get("canvas"))
    labels = torch.cat([y for _, y in parts])
    groups = torch.arange(len(names)).repeat_interleave(torch.tensor([len(y) for _, y in parts]))
    test = splits.test.with_(images=images, labels=labels, groups=groups,
                             meta={"corruptions": list(names), "corruption_source": "files"})
    return DatasetSplits(manifest.name, splits.source_train, splits.source_val, test)
