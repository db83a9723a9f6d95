"""Datasets: manifests say where data comes from; loaders turn it into ImageSet splits.

A new loader is a new file here with `@register_loader(name)` (the registry imports every
module of this package the first time a loader is asked for).
"""

from .location import DATA_ENV, data_present, data_root, dataset_dir, find_data, require_data
from .manifest import Manifest, all_manifests, load_manifest
from .registry import LOADERS, DatasetSplits, check_loader_params, load_dataset, register_loader

__all__ = ["DATA_ENV", "LOADERS", "DatasetSplits", "Manifest", "all_manifests", "check_loader_params", "data_present",
           "data_root", "dataset_dir", "find_data", "load_dataset", "load_manifest", "register_loader",
           "require_data"]
