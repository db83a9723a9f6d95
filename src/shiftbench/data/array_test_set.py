"""Test sets published as numpy arrays: CIFAR-10.1 (an .npy pair) and CIFAR-10.2 (an .npz).

CIFAR-10.1 (Recht et al. 2018) ships `cifar10.1_<version>_data.npy`, uint8 (N, 32, 32, 3)
HWC, and `cifar10.1_<version>_labels.npy`, (N,) integer class indices; CIFAR-10.2 (Lu et
al. 2020) ships `cifar102_test.npz` with arrays `images` (uint8 N x 32 x 32 x 3) and
`labels` (int64). Both use CIFAR-10's class indices, so they are test sets for a CIFAR-10
model: the test split holds every image in the published order; source_train and
source_val are empty (a benchmark trains, or loads, its model on the clean dataset and plays
these as scenarios, `dataset:` in a scenario).

params: `images` and `labels` (file names, relative to the data folder; for `npz_arrays`,
`file` and the two keys), `classes` (the names of labels 0..K-1). A file that does not read
as an array (truncated, not npy), images that are not uint8 (N, H, W, 3), labels of another
length than the images or outside 0..K-1: one error naming the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet
from .common import from_nhwc, test_only
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def read_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise UserError("file not found (the download may be incomplete)", source=str(path))
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
        raise UserError(f"not a readable .npy array, truncated or of another format ({e})", source=str(path)) from None


def read_npz(path: Path, keys: tuple[str, ...]) -> list[np.ndarray]:
    if not path.is_file():
        raise UserError("file not found (the download may be incomplete)", source=str(path))
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise UserError(f"no array '{missing[0]}' in the archive; it holds: {', '.join(z.files)}",
                                source=str(path))
            return [z[k] for k in keys]
    except (ValueError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise UserError(f"not a readable .npz archive, truncated or of another format ({e})", source=str(path)) from None


def checked_test_set(name: str, images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
              images_from: str, labels_from: str) -> DatasetSplits:
    """The arrays checked (uint8 NHWC images, one label in 0..K-1 per image) as a test-only DatasetSplits."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}",
                        source=images_from)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"expected (N,) integer labels, got {labels.dtype} {labels.shape}", source=labels_from)
    if len(labels) != len(images):
        raise UserError(f"{len(labels)} labels for {len(images)} images in {Path(images_from).name}",
                        source=labels_from)
    if len(labels) and not (0 <= labels.min() and labels.max() < len(classes)):
        raise UserError(f"labels must be class indices 0..{len(classes) - 1}, found {labels.min()}..{labels.max()}",
                        source=labels_from)
    return test_only(name, ImageSet(from_nhwc(images), torch.from_numpy(labels.astype(np.int64)), classes))


@register_loader("npy_pair")
def load_npy_pair(manifest: Manifest, data_dir: Path | None = None, *, images: str, labels: str,
                  classes: list[str]) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    return checked_test_set(manifest.name, read_npy(root / images), read_npy(root / labels), tuple(classes),
                     str(root / images), str(root / labels))


@register_loader("npz_arrays")
def load_npz_arrays(manifest: Manifest, data_dir: Path | None = None, *, file: str, classes: list[str],
                    images_key: str = "images", labels_key: str = "labels") -> DatasetSplits:
    root = require_data(manifest, data_dir)
    x, y = read_npz(root / file, (images_key, labels_key))
    where = str(root / file)
    return checked_test_set(manifest.name, x, y, tuple(classes), f"{where}: {images_key}", f"{where}: {labels_key}")
