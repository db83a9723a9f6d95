"""Datasets: manifests say where data comes from; loaders turn it into ImageSet splits."""

from .manifest import Manifest, all_manifests, load_manifest
from .registry import DatasetSplits, load_dataset, register_loader

__all__ = ["DatasetSplits", "Manifest", "all_manifests", "load_dataset", "load_manifest", "register_loader"]
