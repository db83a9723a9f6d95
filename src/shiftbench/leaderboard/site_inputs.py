"""What a built site depends on, as one key, so that a re-run whose results, reference numbers,
benchmarks and leaderboard code are unchanged keeps the site it has instead of redrawing every
figure (most of a warm `shiftbench run`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core.paths import find_project_root
from ..core.version import __version__

INPUTS_FILE = ".shiftbench-inputs"
CODE = Path(__file__).resolve().parent


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def site_inputs_key(results_root: Path, published: Path, benchmark_hashes: dict | None) -> str:
    h = hashlib.sha256(json.dumps([__version__, benchmark_hashes], sort_keys=True, default=str).encode())
    project = find_project_root()
    folders = [Path(results_root), Path(published), CODE]
    if project is not None:
        folders += [project / "benchmarks", project / "data_manifests"]
    for folder in folders:
        for path in _files(folder):
            if "__pycache__" in path.parts:
                continue
            h.update(f"{folder.resolve()}\0{path.relative_to(folder)}\0".encode() + path.read_bytes() + b"\0")
    return h.hexdigest()


def unchanged(site_dir: Path, key: str) -> bool:
    marker = Path(site_dir) / INPUTS_FILE
    return (Path(site_dir) / "index.html").is_file() and marker.is_file() and marker.read_text().strip() == key
