"""Dataset loaders by name; a loader turns a manifest into source-train / source-val / test splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..hashing import config_hash
from ..imageset import ImageSet
from .manifest import Manifest, load_manifest


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


def _load_builtin_loaders() -> None:
    """Import every module of this package once; each loader file registers itself."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name not in ("registry", "manifest", "__init__"):
            importlib.import_module(f"{__package__}.{mod.name}")


def load_dataset(name: str, data_dir: str | Path | None = None) -> DatasetSplits:
    """Build the splits of the dataset named by a manifest (memoised within the process)."""
    _load_builtin_loaders()

    manifest = load_manifest(name)
    key = (manifest.name, config_hash(manifest.model_dump()), str(data_dir))
    if key not in _memo:
        if manifest.loader not in LOADERS:
            raise UserError(f"unknown loader '{manifest.loader}'; known: {', '.join(sorted(LOADERS))}",
                            source=f"data_manifests/{name}.yaml", field="loader")
        _memo[key] = LOADERS[manifest.loader](manifest, Path(data_dir) if data_dir else None)
    return _memo[key]
