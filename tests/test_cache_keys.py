"""The cache laws: a cell's key covers what decides its numbers and nothing else.

Adding a scenario or a submission computes only the new cells; editing one method's file
recomputes that method's cells (and those of methods whose code imports it); editing a shift
recomputes only the scenarios that use it; editing the evaluator recomputes every cell; the key
does not depend on what else is on disk; records stored under another key are never read as
this cell's.
"""

import json

import pytest
import torch

from shiftbench.core import code_identity
from shiftbench.run.plan import plan
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_all
from shiftbench.run.workspace import Workspace

from conftest import make_project, submission

METHODS = {"source": "{}", "bn_adapt": "{}", "alpha_bn": "{alpha: 0.3}", "tent": "{}", "mlls": "{}",
           "online_em": "{base: tent}"}


@pytest.fixture
def proj(tmp_path, monkeypatch):
    root = make_project(tmp_path / "proj", {f"{m}.yaml": submission(m, m, p) for m, p in METHODS.items()})
    monkeypatch.chdir(root)
    return root


def keys(root) -> dict[tuple[str, str], str]:
    """(method, scenario) -> cell key, as planned now."""
    checked = check_all(sorted((root / "leaderboard" / "submissions").glob("*.yaml")))
    ws = Workspace(torch.device("cpu"), progress=False)
    return {(c.method, c.scenario): c.key for cells in plan(checked, ws).values() for c in cells}


UNEDITED = code_identity.source_bytes


def edited(monkeypatch, suffix: str) -> None:
    """Make the code identity see the package file ending in `suffix` (and only it) as edited."""
    monkeypatch.setattr(code_identity, "source_bytes",
                        lambda path: UNEDITED(path) + (b"\n# edited\n" if path.as_posix().endswith(suffix) else b""))


def changed(before, after) -> set[tuple[str, str]]:
    assert before.keys() == after.keys()
    return {cell for cell in before if before[cell] != after[cell]}


def test_planning_twice_gives_the_same_keys(proj):
    assert keys(proj) == keys(proj)


def test_editing_one_method_file_changes_only_the_cells_that_run_its_code(proj, monkeypatch):
    before = keys(proj)
    edited(monkeypatch, "shiftbench/methods/normalisation/alpha_bn.py")
    assert changed(before, keys(proj)) == {c for c in before if c[0] == "alpha_bn"}

    edited(monkeypatch, "shiftbench/methods/normalisation/bn_adapt.py")  # tent normalises with bn_adapt's batch statistics
    assert changed(before, keys(proj)) == {c for c in before if c[0] in ("bn_adapt", "tent", "online_em")}

    edited(monkeypatch, "shiftbench/methods/tta/tent.py")  # a composite runs its base's code too
    assert changed(before, keys(proj)) == {c for c in before if c[0] in ("tent", "online_em")}


def test_editing_a_shift_changes_only_the_scenarios_that_use_it(proj, monkeypatch):
    before = keys(proj)
    edited(monkeypatch, "shiftbench/shifts/label.py")
    assert changed(before, keys(proj)) == {c for c in before if c[1] == "dirichlet"}

    edited(monkeypatch, "shiftbench/shifts/translation.py")
    assert changed(before, keys(proj)) == {c for c in before if c[1] == "translate-d1"}


def test_editing_the_evaluator_changes_every_key(proj, monkeypatch):
    before = keys(proj)
    for part in ("shiftbench/evaluation/stream.py", "shiftbench/evaluation/metrics.py", "shiftbench/run/compute.py"):
        edited(monkeypatch, part)
        assert changed(before, keys(proj)) == set(before), part


def test_leaderboard_and_cli_code_are_not_part_of_any_key(proj, monkeypatch):
    before = keys(proj)
    for part in ("shiftbench/leaderboard/render.py", "shiftbench/cli/commands.py", "shiftbench/run/runner.py"):
        edited(monkeypatch, part)
        assert changed(before, keys(proj)) == set(), part


def test_the_key_does_not_depend_on_what_else_is_on_disk(proj, tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path / "empty"))
    before = keys(proj)
    other = tmp_path / "full"
    (other / "cifar10c" / "CIFAR-10-C").mkdir(parents=True)  # another dataset appears on disk
    monkeypatch.setenv("SHIFTBENCH_DATA", str(other))
    assert keys(proj) == before


def test_a_plugin_method_file_edit_recomputes_its_cells(tmp_path, monkeypatch):
    root = make_project(tmp_path / "proj", {"mine.yaml": submission("Mine", "my_methods:Mine"),
                                            "source.yaml": submission("Source", "source")})
    plugin = root / "my_methods.py"
    plugin.write_text("from shiftbench.methods import Method\n\n\nclass Mine(Method):\n    def __init__(self):\n"
                      "        pass\n")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    before = keys(root)
    plugin.write_text(plugin.read_text() + "\n# a new version\n")
    assert changed(before, keys(root)) == {c for c in before if c[0] == "my_methods:Mine"}


def test_adding_a_scenario_or_a_submission_computes_only_the_new_cells(proj, tmp_path):
    subs = proj / "leaderboard" / "submissions"
    store = Store(tmp_path / "store")

    def run():
        return run_submissions(check_all(sorted(subs.glob("*.yaml"))), device="cpu", store=store,
                               results_root=tmp_path / "results", progress=False)

    first = run()
    assert (first.computed, first.reused) == (36, 0)
    again = run()
    assert (again.computed, again.reused) == (0, 36)

    bench = proj / "benchmarks" / "tiny.yaml"
    bench.write_text(bench.read_text() + "  - {name: contrast-s2, family: covariate, "
                                          "shifts: [{shift: contrast, severity: 2}]}\n")
    added = run()
    assert (added.computed, added.reused) == (6, 36)  # one new scenario x six submissions

    (subs / "rlls.yaml").write_text(submission("rlls", "rlls"))
    newcomer = run()
    assert (newcomer.computed, newcomer.reused) == (7, 42)  # the new submission's seven scenarios


def test_a_record_stored_under_a_key_is_never_read_as_another_cell(proj, tmp_path):
    checked = check_all(sorted((proj / "leaderboard" / "submissions").glob("*.yaml")))[:1]
    store = Store(tmp_path / "store")
    report = run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r", progress=False)
    cell = report.cells[0]
    path = store.path(cell.benchmark, cell.key)
    record = json.loads(path.read_text())
    record["key"] = "0" * 32  # an old or foreign record sitting at this path
    path.write_text(json.dumps(record))
    assert store.get(cell.benchmark, cell.key) is None
    rerun = run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r", progress=False)
    assert rerun.computed == 1 and store.get(cell.benchmark, cell.key)["key"] == cell.key

