"""From submissions to records: expand the grid, train or load models, skip finished cells, run the rest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..core.hashing import canonical_json, config_hash
from ..core.paths import project_root
from ..methods import resolve_method
from .cell import Cell
from .provenance import code_fingerprint, resolve_device
from .store import Store, atomic_write_text
from .submission import CheckedSubmission
from .workspace import Workspace


@dataclass
class RunReport:
    cells: list[Cell] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    failed: int = 0
    result_files: list[Path] = field(default_factory=list)


def expand(checked: CheckedSubmission) -> list[Cell]:
    sub, bench = checked.submission, checked.benchmark
    return [
        Cell(benchmark=bench.name, benchmark_hash=bench.content_hash(), scenario=s.name, family=s.family,
             method=sub.method, params=checked.params, protocol=sub.protocol, seed=seed, training=sub.training,
             version=__version__, code=code_fingerprint(), submissions=(sub.name,))
        for seed in sub.seeds for s in bench.scenarios
    ]


def attach_checkpoints(cells: list[Cell], checked: list[CheckedSubmission], workspace: Workspace) -> list[Cell]:
    """Fill each cell's checkpoint sha256, training (or loading) every source model the grid needs once."""
    benches = {c.benchmark.name: c.benchmark for c in checked}
    out = []
    for cell in cells:
        bench = benches[cell.benchmark]
        model = workspace.model(bench, bench.scenario(cell.scenario), cell.training, cell.seed)
        out.append(replace(cell, checkpoint_sha256=model.sha256))
    return out


def results_dir() -> Path:
    return project_root() / "leaderboard" / "results"


def result_path(results_root: Path, benchmark: str, name: str) -> Path:
    return results_root / benchmark / f"{slug(name)}.json"


def slug(name: str) -> str:
    s = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-.")
    return (s or "submission")[:80] + "-" + config_hash(name, length=6)


def run_submissions(checked: list[CheckedSubmission], *, device: str = "auto", store: Store | None = None,
                    results_root: Path | None = None, force: bool = False, retry_failed: bool = False,
                    executor=None, progress: bool = True,
                    on_record: Callable[[dict[str, Any]], None] | None = None) -> RunReport:
    from .executors import LocalExecutor

    store = store or Store()
    results_root = results_root or results_dir()
    workspace = Workspace(resolve_device(device), progress)
    executor = executor or LocalExecutor(progress=progress, workspace=workspace)

    per_submission = {c.path: attach_checkpoints(expand(c), checked, workspace) for c in checked}
    unique: dict[str, Cell] = {}
    for cells in per_submission.values():
        for cell in cells:
            unique.setdefault(cell.key, cell)

    report = RunReport(cells=list(unique.values()))
    records: dict[str, dict[str, Any]] = {}
    pending = []
    for key, cell in unique.items():
        rec = None if force else store.get(cell.benchmark, key)
        if rec is not None and retry_failed and rec.get("status") == "failed":
            rec = None
        if rec is None:
            pending.append(cell)
        else:
            records[key] = rec
            report.reused += 1
    # scenario-major order lets consecutive cells share scenario data and source logits
    pending.sort(key=lambda c: (c.benchmark, c.seed, c.scenario, c.method))
    for rec in executor.run(pending, device):
        store.put(rec)
        records[rec["key"]] = rec
        report.computed += 1
        if on_record:
            on_record(rec)
    for c in checked:
        cells = per_submission[c.path]
        recs = [records[cell.key] for cell in cells]
        report.failed += sum(r["status"] == "failed" for r in recs)
        report.result_files.append(write_result(results_root, c, recs))
    return report


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
        "benchmark_hash": checked.benchmark.content_hash(),
        "records": sorted(records, key=lambda r: (r["cell"]["seed"], r["cell"]["scenario"])),
    }
    body["records_sha256"] = config_hash(body["records"], length=64)
    path = result_path(results_root, sub.benchmark, sub.name)
    atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True))
    return path
