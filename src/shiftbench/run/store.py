"""The cell store: one JSON record per cell at <root>/<benchmark>/<key>.json, written atomically.

Keys are content hashes of everything that decides a cell's result, so a
finished cell is found again by any later run and never recomputed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..core.paths import cache_dir


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a unique temporary file in the same folder, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared and served
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_store_dir() -> Path:
    return cache_dir() / "cells"


class Store:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_store_dir()

    def path(self, benchmark: str, key: str) -> Path:
        return self.root / benchmark / f"{key}.json"

    def get(self, benchmark: str, key: str) -> dict[str, Any] | None:
        """The stored record, or None when absent or unreadable (an unreadable one is recomputed)."""
        try:
            record = json.loads(self.path(benchmark, key).read_text())
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return record if record.get("key") == key else None

    def put(self, record: dict[str, Any]) -> None:
        atomic_write_text(self.path(record["cell"]["benchmark"], record["key"]), json.dumps(record, indent=1, sort_keys=True))
