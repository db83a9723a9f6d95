"""The cell store: one JSON record per cell at <root>/<benchmark>/<key>.json, written atomically.

Keys are content hashes of everything that decides a cell's result, so a
finished cell is found again by any later run and never recomputed. A record
file that is not a record of its own cell (unreadable, not JSON, not an object,
another cell's key, fields missing) is moved aside to <key>.json.corrupt with a
one-line warning and the cell is computed again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import UserError, warn
from ..core.files import atomic_write_text, move_aside
from ..core.names import is_name
from ..core.paths import cache_dir, under


def default_store_dir() -> Path:
    return cache_dir() / "cells"


def record_problem(record: Any, key: str) -> str | None:
    """Why `record` is not a usable record of cell `key` (None: it is)."""
    if not isinstance(record, dict):
        return f"is JSON but not an object ({type(record).__name__})"
    if record.get("key") != key:
        return "holds another cell's key"
    if record.get("status") not in ("ok", "failed"):
        return "has no status 'ok' or 'failed'"
    if not isinstance(record.get("cell"), dict) or not isinstance(record.get("provenance"), dict):
        return "lacks its cell or provenance"
    if record["status"] == "ok" and not isinstance(record.get("metrics"), dict):
        return "is 'ok' without metrics"
    return None


class Store:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else default_store_dir()

    def path(self, benchmark: str, key: str) -> Path:
        if not is_name(benchmark) or not key.isalnum():
            raise UserError(f"a record's benchmark and key must be names, got {benchmark[:100]!r}, {key[:100]!r}")
        return under(self.root, benchmark, f"{key}.json", what="cell record")

    def get(self, benchmark: str, key: str) -> dict[str, Any] | None:
        """The stored record, or None when there is none or it was not usable (then it is moved aside)."""
        path = self.path(benchmark, key)
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:  # a folder in its place, unreadable, not JSON or not UTF-8
            problem = f"cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})"
        else:
            problem = record_problem(record, key)
            if problem is None:
                return record
        self._set_aside(path, problem)
        return None

    def _set_aside(self, path: Path, problem: str) -> None:
        try:
            aside = move_aside(path)
        except FileNotFoundError:  # another run moved it first
            return
        except OSError as e:
            raise UserError(f"is not a usable record ({problem}) and cannot be moved aside ({e.strerror})",
                            source=str(path)) from None
        warn(f"cell record {path} {problem}; moved aside to {aside.name}, computing the cell again")

    def put(self, record: dict[str, Any]) -> None:
        path = self.path(record["cell"]["benchmark"], record["key"])
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True))
