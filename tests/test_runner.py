"""The runner: records, resumption after an interruption, failing cells, --force, result files."""

import json

import pytest
from conftest import make_project, submission

from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_all

EXPLODING = '''
from shiftbench.methods import Method


class Exploding(Method):
    """Raises once a cell has fed it n_trigger images; shorter scenarios pass."""

    def __init__(self, n_trigger: int = 300):
        self.n_trigger = n_trigger

    def predict(self, x):
        if self.seen_total >= self.n_trigger:
            raise RuntimeError("boom at the 300th image")
        self.seen_total += len(x)
        return self.model(x)

    def setup(self, model, source):
        super().setup(model, source)
        self.seen_total = 0


class NaNs(Method):
    def __init__(self):
        pass

    def predict(self, x):
        return self.model(x) * float("nan")
'''


def comparable(records):
    """Everything but timings."""
    return sorted(
        (r["key"], r["status"], json.dumps(r.get("metrics"), sort_keys=True), r["provenance"]["checkpoint_sha256"])
        for r in records
    )


def load_records(results_root):
    out = []
    for p in sorted(results_root.glob("*/*.json")):
        out.extend(json.loads(p.read_text())["records"])
    return out


class StopAfter:
    """An executor that is interrupted (like Ctrl-C) after k cells."""

    def __init__(self, k):
        self.k = k

    def run(self, cells, device):
        from shiftbench.run.executors import LocalExecutor

        for i, rec in enumerate(LocalExecutor(progress=False).run(cells, device)):
            if i == self.k:
                raise KeyboardInterrupt
            yield rec


def checked_in(project):
    return check_all(sorted((project / "leaderboard" / "submissions").glob("*.yaml")))


def test_interrupted_run_resumes_to_identical_records(project, tmp_path):
    checked = checked_in(project)
    full = run_submissions(checked, device="cpu", store=Store(tmp_path / "s1"), results_root=tmp_path / "r1",
                           progress=False)
    assert full.computed == len(full.cells) == 12 and full.failed == 0

    store = Store(tmp_path / "s2")
    with pytest.raises(KeyboardInterrupt):
        run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r2", executor=StopAfter(5),
                        progress=False)
    assert len(list((tmp_path / "s2").rglob("*.json"))) == 5
    assert not (tmp_path / "r2").exists()  # no half-written results
    resumed = run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r2", progress=False)
    assert (resumed.reused, resumed.computed) == (5, 7)
    assert comparable(load_records(tmp_path / "r2")) == comparable(load_records(tmp_path / "r1"))

    again = run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r2", progress=False)
    assert (again.reused, again.computed) == (12, 0)
    forced = run_submissions(checked, device="cpu", store=store, results_root=tmp_path / "r2", force=True,
                             progress=False)
    assert forced.computed == 12
    assert comparable(load_records(tmp_path / "r2")) == comparable(load_records(tmp_path / "r1"))


def test_a_failing_method_fails_only_its_own_cells(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", {
        "boom.yaml": submission("Boom", "failing_methods:Exploding"),
        "nan.yaml": submission("NaN", "failing_methods:NaNs"),
        "source.yaml": submission("Source", "source"),
    })
    (root / "failing_methods.py").write_text(EXPLODING)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    report = run_submissions(checked_in(root), device="cpu", store=Store(tmp_path / "s"),
                             results_root=tmp_path / "r", progress=False)
    by_method = {}
    for rec in load_records(tmp_path / "r"):
        by_method.setdefault(rec["cell"]["method"], []).append(rec)
    boom = {r["cell"]["scenario"]: r for r in by_method["failing_methods:Exploding"]}
    # clean has 539 test images and so reaches the trigger; the Dirichlet scenario draws only 300
    assert boom["clean"]["status"] == "failed" and "boom at the 300th image" in boom["clean"]["error"]
    assert boom["dirichlet"]["status"] == "ok"  # 300 images: the trigger is never reached
    assert all(r["status"] == "failed" and "NaN" in r["error"] for r in by_method["failing_methods:NaNs"])
    assert all(r["status"] == "ok" for r in by_method["source"])
    assert report.failed == sum(r["status"] == "failed" for recs in by_method.values() for r in recs)


def test_result_file_carries_provenance_and_a_records_hash(project, tmp_path):
    from shiftbench.core.hashing import config_hash

    run_submissions(checked_in(project), device="cpu", store=Store(tmp_path / "s"), results_root=tmp_path / "r",
                    progress=False)
    files = sorted((tmp_path / "r" / "tiny").glob("*.json"))
    assert len(files) == 2
    body = json.loads(files[0].read_text())
    assert body["records_sha256"] == config_hash(body["records"], length=64)
    prov = body["records"][0]["provenance"]
    for field in ("shiftbench_version", "torch_version", "device", "config_hash", "data_sha256", "checkpoint_sha256",
                  "git_commit"):
        assert field in prov
    assert body["benchmark_hash"] == load_benchmark("tiny").content_hash()
    assert body["records"][0]["seconds"] > 0
    assert len(prov["checkpoint_sha256"]) == 64


def test_git_commit_is_the_current_projects_even_after_another_in_the_same_process(tmp_path, monkeypatch):
    import subprocess

    from shiftbench.run.provenance import git_commit

    tracked, untracked = tmp_path / "tracked", tmp_path / "untracked"
    for root in (tracked, untracked):
        (root / "benchmarks").mkdir(parents=True)
        (root / "leaderboard").mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=tracked, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=tracked, check=True,
                   env={**__import__("os").environ, **env})
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tracked, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(tracked)
    assert git_commit() == head
    monkeypatch.chdir(untracked)  # (tmp_path is outside any repository)
    assert git_commit() is None
