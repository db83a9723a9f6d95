"""Result files: one JSON file per submission under leaderboard/results/<benchmark>/, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_text
from ..core.hashing import canonical_json, config_hash
from ..core.paths import project_root, under
from ..methods import resolve_method
from .submission import CheckedSubmission


def results_dir() -> Path:
    return project_root() / "leaderboard" / "results"


def slug(name: str) -> str:
    """A file name for a submission name: its safe characters, then a hash of the whole name (so names never collide)."""
    s = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-.")
    return (s or "submission")[:80] + "-" + config_hash(name, length=6)


def result_path(results_root: Path, benchmark: str, name: str) -> Path:
    return under(results_root, benchmark, f"{slug(name)}.json", what="result file")


def write_result(results_root: Path, checked: CheckedSubmission, records: list[dict[str, Any]]) -> Path:
    """One file per submission: the submission as given, its cells' records, and a hash of those records."""
    sub = checked.submission
    body = {
        "submission": json.loads(canonical_json(checked.raw)),
        "submission_file": Path(checked.path).name,
        "name": sub.name,
        "method": sub.method,
        "oracle": bool(getattr(resolve_method(sub.method), "oracle", False)),
        "params": checked.params,
        "benchmark": sub.benchmark,
        "protocol": sub.protocol,
        "benchmark_hash": checked.benchmark.content_hash(),
        "records": sorted(records, key=lambda r: (r["cell"]["seed"], r["cell"]["scenario"])),
        "unsupported": checked.unsupported,  # scenario -> why this method has no cells there
    }
    body["records_sha256"] = config_hash(body["records"], length=64)
    path = result_path(results_root, sub.benchmark, sub.name)
    atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True))
    return path
