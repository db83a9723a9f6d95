"""Cells run in worker processes: a method that hangs, exits, segfaults, raises SystemExit or
KeyboardInterrupt, or allocates past the memory cap fails its own cell; every other cell of the run
is computed as if nothing had happened, and the exit code says that cells failed."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import submission
from scaleout_support import LAST_BATCH, SCENARIOS, counts_line, fault_project, store_records

from shiftbench.cli.main import main
from shiftbench.run.cell import Cell
from shiftbench.run.executors import InlineExecutor
from shiftbench.run.executors.dispatch import Queue
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_all

BAD_SCENARIO = "noise-s3"
TIMEOUT_S = 20
MODES = {  # mode -> what the error of its cell on BAD_SCENARIO says
    "hang": f"CellTimeout: the cell was still running after {TIMEOUT_S} s (--cell-timeout); its worker was stopped",
    "exit": "WorkerDied: the worker process running this cell exited with code 3 (tries: 2)",
    "segfault": "WorkerDied: the worker process running this cell was killed by signal 11 (SIGSEGV",
    "system_exit": "SystemExit: the method tried to end the process (exit code 0)",
    "interrupt": "KeyboardInterrupt: (no message)",
    "memory": "can't allocate memory",
}
GOOD = {"source.yaml": submission("Source", "source"), "bn.yaml": submission("BN", "bn_adapt")}


def misbehaving(mode: str) -> str:
    params = f"{{mode: {mode}, batch: {LAST_BATCH[BAD_SCENARIO]}, gigabytes: 4}}"
    return submission(f"Misbehave {mode}", "fault_methods:Misbehave", params)


def by_method(records: dict) -> dict:
    out: dict = {}
    for r in records.values():
        name = r["cell"]["params"].get("mode", r["cell"]["method"])
        out.setdefault(name, {})[r["cell"]["scenario"]] = r
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Source and BN computed in this process, on the same project."""
    root = fault_project(tmp_path_factory.mktemp("iso") / "proj", {**GOOD, **{f"{m}.yaml": misbehaving(m) for m in MODES}})
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    try:
        store = root.parent / "reference"
        run_submissions(check_all([root / "leaderboard" / "submissions" / n for n in GOOD]), device="cpu",
                        store=Store(store), results_root=root.parent / "reference-results", progress=False)
    finally:
        mp.undo()
    return root, by_method(store_records(store))


def test_each_misbehaving_cell_fails_alone_and_every_other_cell_is_as_computed_in_process(reference, tmp_path,
                                                                                          monkeypatch, capsys):
    root, expected = reference
    monkeypatch.chdir(root)
    store = tmp_path / "store"
    # a 3 GiB cap per worker: the 4 GiB allocation fails inside it (the machine itself would allow it)
    code = main(["run", "--quiet", "--device", "cpu", "--store", str(store), "--workers", "2",
                 "--cell-timeout", str(TIMEOUT_S), "--cell-memory", "3"])
    out = capsys.readouterr()
    n = (len(GOOD) + len(MODES)) * SCENARIOS
    assert code == 1, out.err
    assert counts_line(out.out) == f"{n} cells: {n} computed, 0 reused, {len(MODES)} failed"
    assert "cells failed" in out.err.splitlines()[-1]
    got = by_method(store_records(store))
    for method in ("source", "bn_adapt"):
        assert got[method] == expected[method], method
    raw = {}
    for mode, error in MODES.items():
        cells = got[mode]
        bad = cells.pop(BAD_SCENARIO)
        assert bad["status"] == "failed" and error in bad["error"], (mode, bad["error"])
        raw[mode] = json.loads((store / "tiny" / f"{bad['key']}.json").read_text())
        assert raw[mode]["limits"] == {"cell_timeout_s": TIMEOUT_S, "memory_cap_bytes": 3 << 30}
        for scenario, record in cells.items():  # on its other scenarios the method is the source model
            assert record["status"] == "ok", (mode, scenario, record["error"])
            assert record["metrics"] == expected["source"][scenario]["metrics"], (mode, scenario)
    assert raw["hang"]["seconds"] >= TIMEOUT_S
    assert "memory cap is 3.0 GiB" in raw["memory"]["error"]
    results = {json.loads(p.read_text())["name"] for p in (root / "leaderboard" / "results" / "tiny").glob("*.json")}
    assert results == {"Source", "BN"} | {f"Misbehave {m}" for m in MODES}


class InOrder:
    """Computes the cells in process, in the order given by `first` (cell -> sort key), stopping (as a
    Ctrl-C would) after `stop_after` records."""

    def __init__(self, first, stop_after):
        self.first, self.stop_after = first, stop_after

    def run(self, cells, device):
        for i, rec in enumerate(InlineExecutor(progress=False).run(sorted(cells, key=self.first), device)):
            if i == self.stop_after:
                raise KeyboardInterrupt
            yield rec


def test_a_submissions_result_file_is_written_when_its_last_cell_is_recorded(reference, tmp_path, monkeypatch):
    root, _ = reference
    monkeypatch.chdir(root)
    checked = check_all([root / "leaderboard" / "submissions" / n for n in GOOD])
    source_first = InOrder(lambda c: c.method != "source", stop_after=SCENARIOS + 1)
    with pytest.raises(KeyboardInterrupt):
        run_submissions(checked, device="cpu", store=Store(tmp_path / "store"), results_root=tmp_path / "results",
                        executor=source_first, progress=False)
    [written] = (tmp_path / "results" / "tiny").glob("*.json")
    body = json.loads(written.read_text())
    assert body["name"] == "Source" and len(body["records"]) == SCENARIOS


def cell(scenario: str, method: str) -> Cell:
    return Cell(benchmark="b", scenario=scenario, family="clean", spec={}, dataset="d", model={}, training={},
                method=method, params={}, protocol="per_scenario", seed=0, batch_size=1, version="0")


def test_each_worker_takes_whole_scenarios_then_shares_the_busiest_workers_rest():
    cells = [cell(s, m) for s in "ab" for m in "123456"]
    queue = Queue(cells)
    taken = {0: [queue.next_for(0) for _ in range(2)], 1: [queue.next_for(1) for _ in range(6)]}
    assert [c.scenario for c in taken[0]] == ["a", "a"] and [c.scenario for c in taken[1]] == ["b"] * 6
    # worker 1 is done with b; worker 0 still has a's cells 3-6: worker 1 takes the later half
    taken[1] += [queue.next_for(1), queue.next_for(1)]
    assert [c.method for c in taken[1][6:]] == ["5", "6"]
    taken[0] += [queue.next_for(0), queue.next_for(0)]
    assert [c.method for c in taken[0][2:]] == ["3", "4"]
    assert queue.next_for(0) is None and queue.next_for(1) is None and len(queue) == 0
    everything = taken[0] + taken[1]
    assert Counter(c.key for c in everything) == Counter(c.key for c in cells)


def test_a_cell_to_retry_goes_before_all_others():
    cells = [cell("a", m) for m in "123"]
    queue = Queue(cells)
    first = queue.next_for(0)
    queue.retry(first)
    assert queue.next_for(1) is first
    assert len(queue) == 2
