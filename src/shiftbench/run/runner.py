"""From submissions to records: plan the grid, skip finished cells, run the rest, write result files.

A submission's result file is written as soon as its last cell is recorded, not at the end of
the run, so a run that is stopped later (or a cell of another submission that hangs until its
time limit) costs no finished submission its file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.device import resolve_device
from ..core.paths import public_paths
from .cell import Cell
from .plan import cells_of, plan
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
                    on_record: Callable[[dict[str, Any]], None] | None = None,
                    log: Callable[[str], None] | None = None) -> RunReport:
    """Run every cell the submissions need (in this process unless an executor is given); `log` hears the
    estimate of the work before any model is trained and the number of cells to compute before they run."""
    from .executors import InlineExecutor

    store = store or Store()
    results_root = results_root or results_dir()
    workspace = Workspace(resolve_device(device), progress)
    executor = executor or InlineExecutor(progress=progress, workspace=workspace)

    if log:
        log(estimate(checked, workspace))
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
    if log:
        log(f"cells: {len(pending)} to compute, {report.reused} reused")

    written: dict[str, Path] = {}
    missing = {c.path: {cell.key for cell in per_submission[c.path]} - set(records) for c in checked}

    def write_finished() -> None:
        for c in checked:
            if not missing[c.path] and c.path not in written:
                written[c.path] = write_result(results_root, c, [records[cell.key] for cell in per_submission[c.path]])

    write_finished()
    # scenario-major order lets consecutive cells share scenario data and source logits
    pending.sort(key=lambda c: (c.benchmark, c.seed, c.scenario, c.method))
    for rec in executor.run(pending, device):
        rec = published(rec)
        store.put(rec)
        records[rec["key"]] = rec
        report.computed += 1
        for keys in missing.values():
            keys.discard(rec["key"])
        write_finished()
        if on_record:
            on_record(rec)
    for c in checked:
        report.failed += sum(records[cell.key]["status"] == "failed" for cell in per_submission[c.path])
        report.result_files.append(written[c.path])
    return report


def published(record: dict[str, Any]) -> dict[str, Any]:
    """The record with this machine's absolute paths taken out of its error and traceback."""
    for name in ("error", "traceback"):
        if isinstance(record.get(name), str):
            record[name] = public_paths(record[name])
    return record


def estimate(checked: list[CheckedSubmission], workspace: Workspace) -> str:
    """'work: N cells, M source models (K to train)', from the submissions alone (nothing is trained)."""
    from ..models.train import cached_model

    cells: dict[str, Cell] = {}
    for c in checked:
        for cell in cells_of(c):
            cells.setdefault(cell.key, cell)
    models: dict[str, Cell] = {}
    for cell in cells.values():
        models.setdefault(repr((cell.dataset, cell.benchmark, cell.spec["train_shifts"], cell.model, cell.training,
                                cell.seed)), cell)
    to_train = sum(cached_model(workspace.source_split(cell, "source_train"), cell.model, cell.training, cell.seed)
                   is None and "checkpoint" not in cell.model for cell in models.values())
    return (f"work: {len(cells)} cells in {len(checked)} submissions, {len(models)} source models "
            f"({to_train} to train)")
