"""Facts about the software and machine that produced a result."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache

import torch

from .. import __version__
from ..core.paths import project_root


def git_commit() -> str | None:
    """The commit of the project (benchmarks, submissions) this process works in now."""
    return _git_commit(str(project_root()))


@lru_cache(maxsize=8)  # per project: one process may work in several (tests, notebooks)
def _git_commit(root: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# Package parts whose code cannot change a cell's numbers.
PRESENTATION = ("leaderboard", "executors", "cli.py", "commands.py", "preview.py", "__main__.py")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the source of every module that can change a result.

    Part of every cell's key, so that a changed shift, method, metric or loader
    never silently reuses numbers computed by the old code.
    """
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0] in PRESENTATION:
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}"


def software() -> dict[str, str | None]:
    return {
        "shiftbench_version": __version__,
        "code_fingerprint": code_fingerprint(),
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


def resolve_device(spec: str) -> torch.device:
    """'auto' takes CUDA when present, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cuda" and not torch.cuda.is_available():
        from ..core.errors import UserError

        raise UserError("--device cuda: no CUDA device is available; use --device auto or cpu")
    return torch.device(spec)
