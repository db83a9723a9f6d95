"""Runs survive being killed, running twice at once, and failing cells; nothing finished is computed twice."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import submission
from scaleout_support import SCENARIOS, counts_line, fault_project, record_stats, start_run, store_records

from shiftbench.cli.main import main
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_all

# 8 cells; the sleepy ones stretch the run so that a kill lands part-way through it.
GRID = {
    "sleepy.yaml": submission("Sleepy", "fault_methods:Sleepy", "{seconds: 0.3}"),
    "bn.yaml": submission("BN", "bn_adapt"),
}
CELLS = 2 * SCENARIOS


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The project, and the records of one uninterrupted in-process run."""
    root = fault_project(tmp_path_factory.mktemp("ft") / "proj", GRID)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        store = root / "reference-store"
        run_submissions(check_all(sorted((root / "leaderboard" / "submissions").glob("*.yaml"))), device="cpu",
                        store=Store(store), results_root=root / "reference-results", progress=False)
    finally:
        mp.undo()
    reference = store_records(store)
    assert len(reference) == CELLS and all(r["status"] == "ok" for r in reference.values())
    return root, reference


def wait_for_records(store: Path, at_least: int, proc, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(list(store.glob("*/*.json"))) < at_least:
        assert proc.poll() is None, f"the run ended before {at_least} records existed: {proc.communicate()}"
        assert time.monotonic() < deadline, "no records appeared in time"
        time.sleep(0.01)


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
                         ids=["SIGKILL", "SIGINT"])
def test_killed_run_resumes_to_the_uninterrupted_records_without_recomputing(grid, tmp_path, sig):
    root, reference = grid
    store, results = tmp_path / "store", tmp_path / "results"
    kill_after = random.randint(1, CELLS - 3)
    proc = start_run(root, store, results)
    wait_for_records(store, kill_after, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    survivors = record_stats(store)
    assert 0 < len(survivors) < CELLS, f"killed after {kill_after} records, {len(survivors)} survived"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "run again to resume" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    store_records(store)  # every record file left behind is whole JSON

    proc = start_run(root, store, results)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert counts_line(out) == f"{CELLS} cells: {CELLS - len(survivors)} computed, {len(survivors)} reused, 0 failed"
    after = record_stats(store)
    assert {name: after[name] for name in survivors} == survivors  # finished cells were not rewritten
    assert store_records(store) == reference
    result_files = list(results.glob("*/*.json"))
    assert len(result_files) == 2
    assert all(len(json.loads(p.read_text())["records"]) == SCENARIOS for p in result_files)


def test_two_runs_at_once_on_one_store_lose_and_corrupt_nothing(grid, tmp_path):
    root, reference = grid
    store, results = tmp_path / "store", tmp_path / "results"
    procs = [start_run(root, store, results) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert counts_line(out).endswith("0 failed")
    assert store_records(store) == reference
    assert not list(store.rglob("*.tmp")) and not list(results.rglob("*.tmp"))
    for path in results.glob("*/*.json"):
        body = json.loads(path.read_text())
        keys = {r["key"] for r in body["records"]}
        assert len(keys) == SCENARIOS and keys <= set(reference)


FAILING = {
    "source.yaml": submission("Source", "source"),
    "error.yaml": submission("Error", "fault_methods:FailWhileMarked", "{mode: error}"),
    "nan.yaml": submission("NaN", "fault_methods:FailWhileMarked", "{mode: nan}"),
    "oom.yaml": submission("OOM", "fault_methods:FailWhileMarked", "{mode: oom}"),
    "memory.yaml": submission("Memory", "fault_methods:FailWhileMarked", "{mode: memory}"),
}
EXPECTED_ERRORS = {
    "error": "ValueError: deliberate failure",
    "nan": "NonFiniteLogits: the method produced NaN or infinite logits",
    "oom": "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB (simulated)",
    "memory": "MemoryError: simulated host out-of-memory",
}


def test_failed_cells_are_recorded_and_retry_failed_reruns_only_them(tmp_path, monkeypatch, capsys):
    root = fault_project(tmp_path / "proj", FAILING)
    monkeypatch.chdir(root)
    store = tmp_path / "store"
    args = ["run", "--quiet", "--device", "cpu", "--store", str(store)]
    n, failing = 5 * SCENARIOS, 4 * SCENARIOS

    (root / "FAIL").touch()
    assert main(args) == 1  # cells failed
    assert counts_line(capsys.readouterr().out) == f"{n} cells: {n} computed, 0 reused, {failing} failed"
    records = store_records(store)
    for r in records.values():
        mode = r["cell"]["params"].get("mode")
        if mode == "memory":  # a host MemoryError in a worker also says what its memory cap was
            assert r["error"].startswith(EXPECTED_ERRORS[mode] + " [the worker's memory cap is ")
            continue
        assert (r["status"], r["error"]) == (("failed", EXPECTED_ERRORS[mode]) if mode else ("ok", None))
    ok_files = {k: v for k, v in record_stats(store).items() if records[Path(k).stem]["status"] == "ok"}

    (root / "FAIL").unlink()
    assert main(args) == 1  # without the flag a failed record stands
    assert counts_line(capsys.readouterr().out) == f"{n} cells: 0 computed, {n} reused, {failing} failed"

    assert main(args + ["--retry-failed"]) == 0
    assert counts_line(capsys.readouterr().out) == f"{n} cells: {failing} computed, {n - failing} reused, 0 failed"
    assert {k: v for k, v in record_stats(store).items() if k in ok_files} == ok_files
    records = store_records(store)
    source = {r["cell"]["scenario"]: r["metrics"] for r in records.values() if r["cell"]["method"] == "source"}
    for r in records.values():  # unmarked, each fault method is the source model
        assert r["status"] == "ok" and r["metrics"] == source[r["cell"]["scenario"]]
