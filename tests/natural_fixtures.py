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
