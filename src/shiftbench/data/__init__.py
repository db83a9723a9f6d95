"""Datasets: manifests say where data comes from; loaders turn it into ImageSet splits.

Every module in this package is imported here, so a new loader is a new file
with `@register_loader(name)`.
"""

import importlib
import pkgutil
from pathlib import Path

from .location import DATA_ENV, data_present, data_root, dataset_dir, find_data, require_data
from .manifest import Manifest, all_manifests, load_manifest
from .registry import DatasetSplits, load_dataset, register_loader

for _mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
    importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["DATA_ENV", "DatasetSplits", "Manifest", "all_manifests", "data_present", "data_root", "dataset_dir",
           "find_data", "load_dataset", "load_manifest", "register_loader", "require_data"]
