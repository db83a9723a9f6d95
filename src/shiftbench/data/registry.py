"""Dataset loaders by name; a loader turns a manifest into source-train / source-val / test splits.

A loader is fn(manifest, data_dir, **params) -> DatasetSplits; its typed keyword parameters
are the `params:` a data manifest may give it (checked before anything is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..core.errors import UserError
from ..core.hashing import config_hash
from ..core.imageset import ImageSet
from ..core.params import validate_params
from ..core.registry import Registry
from .location import data_root
from .manifest import Manifest, load_manifest

LOAD_ARGS = ("manifest", "data_dir")


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


LOADERS: Registry[Callable[..., DatasetSplits]] = Registry("loader", "shiftbench.data", "shiftbench.loaders")


def register_loader(name: str, *, random_test_order: bool = False):
    """Decorator: fn(manifest: Manifest, data_dir: Path | None, **params) -> DatasetSplits.

    random_test_order: the loader stores the test split in a random order already (a seeded
    permutation, or a published file whose order is random, like CIFAR's test batch), so a
    benchmark plays it as stored unless it says `order: shuffled`. Otherwise (folders read
    class by class, files of unknown order) test streams are shuffled by default.
    """

    def wrap(fn):
        fn.random_test_order = random_test_order
        return LOADERS.decorator(name)(fn)

    return wrap


def stored_in_random_order(manifest: Manifest) -> bool:
    """Whether the manifest's loader declares its test split stored in a random order."""
    return bool(getattr(LOADERS.get(manifest.loader), "random_test_order", False))


def check_loader_params(manifest: Manifest) -> dict[str, Any]:
    """The manifest's loader and its params, validated with defaults filled (nothing is read)."""
    where = f"data_manifests/{manifest.name}.yaml"
    if manifest.kind != "data":
        raise UserError(f"'{manifest.name}' is a {manifest.kind} manifest, not a dataset", source=where, field="kind")
    fn = LOADERS.get(manifest.loader, source=where, field="loader")
    return validate_params(fn, manifest.params, source=where, what=f"loader '{manifest.loader}'", skip=LOAD_ARGS)


_memo: dict[tuple, DatasetSplits] = {}


def load_dataset(name: str, data_dir: str | Path | None = None) -> DatasetSplits:
    """Build the splits of the dataset named by a manifest (memoised within the process).

    data_dir: where downloaded data lives (default: $SHIFTBENCH_DATA, else $SHIFTBENCH_CACHE/data).
    """
    manifest = load_manifest(name)
    key = (manifest.name, config_hash(manifest.model_dump()), str(data_root(data_dir)))
    if key not in _memo:
        params = check_loader_params(manifest)
        _memo[key] = LOADERS.get(manifest.loader)(manifest, Path(data_dir) if data_dir else None, **params)
    return _memo[key]
