"""Tiny copies of the natural sets in their exact published layouts (file names, folders, CSV columns)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from shiftbench.data import check_loader_params, load_manifest
from shiftbench.data.registry import LOADERS


def write_image(path: Path, seed: int, side: int = 16, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)


def domainbed_folders(root: Path, domains: list[str], classes: list[str], per_class: dict[str, int]) -> None:
    """<root>/<domain>/<class>/<i>.jpg-named PNG files (lossless, so pixel tests are exact)."""
    seed = 0
    for domain in domains:
        for cls in classes:
            for i in range(per_class[domain]):
                write_image(root / domain / cls / f"pic_{i:03d}.jpg", seed, fmt="PNG")
                seed += 1


def domainnet_lists(root: Path, domains: list[str], classes: list[str], per_class: int = 1) -> dict[str, list[str]]:
    """<root>/<domain>/<class>/<domain>_NNN_NNNNNN.jpg and <root>/<domain>_list.txt, no final newline."""
    lines_of = {}
    for d, domain in enumerate(domains):
        lines = []
        for k, cls in enumerate(classes):
            for i in range(per_class):
                rel = f"{domain}/{cls}/{domain}_{k:03d}_{i:06d}.jpg"
                write_image(root / rel, 1000 * d + 10 * k + i, fmt="PNG")
                lines.append(f"{rel} {k}")
        (root / f"{domain}_list.txt").write_text("\n".join(lines))
        lines_of[domain] = lines
    return lines_of


def load_with(name: str, data_dir: Path, **params):
    """The dataset `name` loaded from data_dir with its manifest's params overridden (e.g. a small size)."""
    manifest = load_manifest(name)
    manifest = manifest.model_copy(update={"params": {**manifest.params, **params}})
    return LOADERS.get(manifest.loader)(manifest, data_dir, **check_loader_params(manifest))


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_1_arrays(folder: Path, version: str, labels: list[int], seed: int = 0) -> np.ndarray:
    """cifar10.1_<version>_data.npy (uint8 N x 32 x 32 x 3) and _labels.npy (int32, as published); the images."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    np.save(folder / f"cifar10.1_{version}_data.npy", images)
    np.save(folder / f"cifar10.1_{version}_labels.npy", np.asarray(labels, dtype="<i4"))
    return images


def cifar10_2_npz(path: Path, labels: list[int], seed: int = 0) -> np.ndarray:
    """cifar102_test.npz with the published arrays: images, labels (int64), label_names, ti_indices, keywords."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
    np.savez(path, images=images, labels=np.asarray(labels, dtype=np.int64), label_names=np.array(CIFAR10_CLASSES),
             ti_indices=np.arange(len(labels), dtype=np.int64) * 7, keywords=np.array(["kw"] * len(labels)))
    return images


def class_folders(root: Path, folders: list[str], images: dict[str, int], suffix: str = ".jpg",
                  readme: bool = False) -> None:
    """<root>/<folder>/ for every folder (most left empty, as a tiny copy of a 1000-class set can be), with
    images[folder] PNG-encoded images named <i><suffix> in the folders named there; README.txt beside them."""
    for folder in folders:
        (root / folder).mkdir(parents=True, exist_ok=True)
    for n, (folder, count) in enumerate(images.items()):
        for i in range(count):
            write_image(root / folder / f"{i}{suffix}", 100 * n + i, fmt="PNG")
    if readme:
        (root / "README.txt").write_text("the set's README, not a class\n")
