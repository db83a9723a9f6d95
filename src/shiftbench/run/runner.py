"""From submissions to records: plan the grid, skip finished cells, run the rest, write result files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.device import resolve_device
from .cell import Cell
from .plan import plan
from .results import results_dir, write_result
from .store import Store
from .submission import CheckedSubmission
from .workspace import Workspace


@dataclass
class RunReport:
    cells: list[Cell] = field(default_factory=list)
    computed: int = 0
    reused: int = 0
    failed: int = 0
    result_files: list[Path] = field(default_factory=list)


def run_submissions(checked: list[CheckedSubmission], *, device: str = "auto", store: Store | None = None,
                    results_root: Path | None = None, force: bool = False, retry_failed: bool = False,
                    executor=None, progress: bool = True,
                    on_record: Callable[[dict[str, Any]], None] | None = None) -> RunReport:
    from .executors import LocalExecutor

    store = store or Store()
    results_root = results_root or results_dir()
    workspace = Workspace(resolve_device(device), progress)
    executor = executor or LocalExecutor(progress=progress, workspace=workspace)

    per_submission = plan(checked, workspace)
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
        recs = [records[cell.key] for cell in per_submission[c.path]]
        report.failed += sum(r["status"] == "failed" for r in recs)
        report.result_files.append(write_result(results_root, c, recs))
    return report
