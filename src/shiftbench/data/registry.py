"""Dataset loaders by name; a loader turns a manifest into source-train / source-val / test splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import UserError
from ..core.hashing import config_hash
from ..core.imageset import ImageSet
from .manifest import load_manifest


@dataclass(frozen=True)
class DatasetSplits:
    """source_train trains the source model; source_val is held-out source data methods may use."""

    name: str
    source_train: ImageSet
    source_val: ImageSet
    test: ImageSet

    def split(self, name: str) -> ImageSet:
        try:
            return {"source_train": self.source_train, "source_val": self.source_val, "test": self.test}[name]
        except KeyError:
            raise UserError(f"unknown split '{name}'; allowed: source_train, source_val, test") from None

    def sha256(self) -> str:
        return config_hash([self.source_train.sha256(), self.source_val.sha256(), self.test.sha256()], length=64)


LOADERS: dict[str, Callable[..., DatasetSplits]] = {}


def register_loader(name: str):
    """Decorator: fn(manifest: Manifest, data_dir: Path | None) -> DatasetSplits."""

    def wrap(fn):
        LOADERS[name] = fn
        return fn

    return wrap


_memo: dict[tuple, DatasetSplits] = {}


def load_dataset(name: str, data_dir: str | Path | None = None) -> DatasetSplits:
    """Build the splits of the dataset named by a manifest (memoised within the process).

    data_dir: where downloaded data lives (default: $SHIFTBENCH_DATA, else $SHIFTBENCH_CACHE/data).
    """
    from . import digits  # noqa: F401  (importing the package registers every loader)

    manifest = load_manifest(name)
    from .location import data_root

    key = (manifest.name, config_hash(manifest.model_dump()), str(data_root(data_dir)))
    if key not in _memo:
        if manifest.loader not in LOADERS:
            raise UserError(f"unknown loader '{manifest.loader}'; known: {', '.join(sorted(LOADERS))}",
                            source=f"data_manifests/{name}.yaml", field="loader")
        _memo[key] = LOADERS[manifest.loader](manifest, Path(data_dir) if data_dir else None)
    return _memo[key]
