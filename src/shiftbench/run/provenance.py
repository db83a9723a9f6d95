"""Facts about the software that produced a result, recorded beside its numbers."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache

import torch

from ..core.version import __version__
from ..core.paths import find_project_root


def git_commit() -> str | None:
    """The commit of the project (benchmarks, submissions) this process works in now (None outside one)."""
    root = find_project_root()
    return None if root is None else _git_commit(str(root))


@lru_cache(maxsize=8)  # per project: one process may work in several (tests, notebooks)
def _git_commit(root: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def software() -> dict[str, str | None]:
    return {
        "shiftbench_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }
