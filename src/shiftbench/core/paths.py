"""Where shiftbench keeps its cache and finds the project's folders."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """SHIFTBENCH_CACHE, else $XDG_CACHE_HOME/shiftbench, else ~/.cache/shiftbench."""
    if env := os.environ.get("SHIFTBENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "shiftbench"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder above start (default: cwd) holding benchmarks/ or leaderboard/; else cwd.

    Falls back to the source checkout that holds this package, so `shiftbench run`
    works from anywhere inside an editable install.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "benchmarks").is_dir() and (folder / "leaderboard").is_dir():
            return folder
    checkout = Path(__file__).resolve().parents[3]  # src/shiftbench/core/paths.py -> the checkout
    if (checkout / "benchmarks").is_dir():
        return checkout
    return here

