"""Where downloaded datasets live on disk.

The data root is `--data-dir` when given, else $SHIFTBENCH_DATA, else
$SHIFTBENCH_CACHE/data. Dataset NAME is fetched into ROOT/NAME; a loader reads
the manifest's `root` folder inside it (e.g. ROOT/cifar10/cifar-10-batches-py).
An existing copy laid out as ROOT/<root> (torchvision style, without the
NAME level) is found too.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import cache_dir, under
from .manifest import Manifest

DATA_ENV = "SHIFTBENCH_DATA"


def data_root(data_dir: str | Path | None = None) -> Path:
    if data_dir:
        return Path(data_dir).expanduser()
    if env := os.environ.get(DATA_ENV):
        return Path(env).expanduser()
    return cache_dir() / "data"


def dataset_dir(manifest: Manifest, data_dir: str | Path | None = None) -> Path:
    """The folder `data fetch` downloads this dataset into (always under the data root)."""
    return under(data_root(data_dir), manifest.name, what="dataset folder", source=manifest.source, field="name")


def find_data(manifest: Manifest, data_dir: str | Path | None = None) -> Path | None:
    """The folder holding what the loader reads, or None when the data is not on disk."""
    folder = dataset_dir(manifest, data_dir)
    if manifest.root:
        candidates = [under(base, manifest.root, what="data folder", source=manifest.source, field="root")
                      for base in (folder, data_root(data_dir))]
    else:
        candidates = [folder]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def require_data(manifest: Manifest, data_dir: str | Path | None = None) -> Path:
    """find_data, or a one-line UserError that says how to get the data."""
    found = find_data(manifest, data_dir)
    if found is None:
        where = dataset_dir(manifest, data_dir) / (manifest.root or "")
        how = (f"run `shiftbench data fetch {manifest.name}`" if manifest.downloadable
               else "put the files there")
        what = {"data": "dataset", "model": "model weights", "asset": "asset"}[manifest.kind]
        raise UserError(f"{what} '{manifest.name}' is not on disk (looked for {where}); {how}, "
                        f"or point --data-dir / ${DATA_ENV} at a local copy")
    return found


def data_present(name: str, data_dir: str | Path | None = None) -> bool:
    from .manifest import load_manifest

    return find_data(load_manifest(name), data_dir) is not None
