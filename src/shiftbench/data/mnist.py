"""MNIST from its gzip IDX files.

IDX: a big-endian header, magic 0x00000803 (uint8, 3 dims) for images with
counts (N, rows, cols), 0x00000801 (uint8, 1 dim) for labels with count N, then
the raw bytes. params.channels / canvas / window shape the 28 px digits like the
built-in digits dataset (grey replicated to 3 channels, centred on a 32 px
canvas, a 28 px window seen by the model) so translations have real border.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side, source_and_test
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array stored in a (gzip) IDX file whose magic number must be `magic`."""
    if not path.exists():
        raise UserError("file not found", source=str(path))
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read ({e})", source=str(path)) from None
    if len(raw) < 8:
        raise UserError("too short for an IDX header", source=str(path))
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise UserError(f"IDX magic is 0x{found:08x}, expected 0x{magic:08x}", source=str(path))
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError(f"header says {dims} ({int(np.prod(dims))} bytes) but {body.size} bytes follow",
                        source=str(path))
    return body.reshape(dims)


def read_mnist(folder: Path, images_file: str, labels_file: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(folder / images_file, IMAGES_MAGIC)
    labels = read_idx(folder / labels_file, LABELS_MAGIC)
    if len(images) != len(labels):
        raise UserError(f"{len(images)} images but {len(labels)} labels", source=str(folder / labels_file))
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


@register_loader("mnist")
def load_mnist(manifest: Manifest, data_dir: Path | None = None, *, train_images: str = "train-images-idx3-ubyte.gz",
               train_labels: str = "train-labels-idx1-ubyte.gz", test_images: str = "t10k-images-idx3-ubyte.gz",
               test_labels: str = "t10k-labels-idx1-ubyte.gz", val_fraction: Fraction = 0.1, split_seed: Seed = 0,
               window: Side | None = None, canvas: Side | None = None,
               channels: Channels | None = None) -> DatasetSplits:
    p = dict(train_images=train_images, train_labels=train_labels, test_images=test_images, test_labels=test_labels,
             val_fraction=val_fraction, split_seed=split_seed, window=window, canvas=canvas, channels=channels)
    folder = require_data(manifest, data_dir)
    train_x, train_y = read_mnist(folder, p["train_images"], p["train_labels"])
    test_x, test_y = read_mnist(folder, p["test_images"], p["test_labels"])
    classes = tuple(str(i) for i in range(10))
    return source_and_test(manifest.name, train_x, train_y, test_x, test_y, classes, p)
