"""CIFAR-10 and CIFAR-100, "python version": pickled dicts of uint8 rows.

Each batch file holds {b"data": (N, 3072) uint8, channel-major (1024 red, then
green, then blue, each row-major 32x32), b"labels" or b"fine_labels": N ints}.
The manifest's params name the files and keys, so one loader reads both.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side, source_and_test
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader

# what the official pickles (Python 2 cPickle of numpy arrays) need, and nothing else
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_pickle(path: Path) -> dict:
    if not path.exists():
        raise UserError("file not found (the download may be incomplete)", source=str(path))
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise UserError(f"not a CIFAR python batch ({e})", source=str(path)) from None
    if not isinstance(obj, dict):
        raise UserError("not a CIFAR python batch (expected a pickled dict)", source=str(path))
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batches(folder: Path, files: list[str], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 (N, 3, 32, 32) and labels int64 (N,) from the given batch files, in order."""
    images, labels = [], []
    for name in files:
        batch = read_pickle(folder / name)
        if "data" not in batch or label_key not in batch:
            raise UserError(f"batch lacks 'data' or '{label_key}'; keys: {', '.join(map(str, batch))}",
                            source=str(folder / name))
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise UserError(f"'data' must be (N, 3072) uint8, got {data.shape}", source=str(folder / name))
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        labels.append(torch.as_tensor(np.asarray(batch[label_key]), dtype=torch.int64))
    return torch.cat(images), torch.cat(labels)


@register_loader("cifar", random_test_order=True)
def load_cifar(manifest: Manifest, data_dir: Path | None = None, *,
               train_files: list[str] = [f"data_batch_{i}" for i in range(1, 6)],  # noqa: B006 (validated copies)
               test_files: list[str] = ["test_batch"], meta_file: str = "batches.meta", label_key: str = "labels",
               names_key: str = "label_names", val_fraction: Fraction = 0.1, split_seed: Seed = 0,
               window: Side | None = None, canvas: Side | None = None,
               channels: Channels | None = None) -> DatasetSplits:
    p = dict(train_files=train_files, test_files=test_files, meta_file=meta_file, label_key=label_key,
             names_key=names_key, val_fraction=val_fraction, split_seed=split_seed, window=window, canvas=canvas,
             channels=channels)
    folder = require_data(manifest, data_dir)
    train_x, train_y = read_batches(folder, p["train_files"], p["label_key"])
    test_x, test_y = read_batches(folder, p["test_files"], p["label_key"])
    meta = read_pickle(folder / p["meta_file"])
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(p["names_key"], []))
    if not classes:
        raise UserError(f"no '{p['names_key']}' in the meta file", source=str(folder / p["meta_file"]))
    return source_and_test(manifest.name, train_x, train_y, test_x, test_y, classes, p)
