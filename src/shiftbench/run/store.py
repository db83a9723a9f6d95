"""The cell store: one JSON record per cell at <root>/<benchmark>/<key>.json, written atomically.

Keys are content hashes of everything that decides a cell's result, so a
finished cell is found again by any later run and never recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_text
from ..core.paths import cache_dir


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
