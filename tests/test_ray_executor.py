"""The Ray executor: same records as the local one, models shipped by hash, dead workers retried.

One local Ray of 2 CPUs serves the whole module (starting Ray takes seconds).
"""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import submission
from scaleout_support import LAST_BATCH, SCENARIOS, fault_project, store_records

from shiftbench.core.errors import UserError
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_all

ray = pytest.importorskip("ray")
from shiftbench.run.executors.ray_executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.ray

GRID = {
    "source.yaml": submission("Source", "source"),
    "bn.yaml": submission("BN", "bn_adapt"),
    "tent.yaml": submission("TENT", "tent"),
    "alpha.yaml": submission("alpha-BN", "alpha_bn", "{alpha: 0.3}"),
}


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project on the fast grid with its own model cache; cwd and one torch thread while the module runs."""
    base = tmp_path_factory.mktemp("ray")
    root = fault_project(base / "proj", {**GRID, "crash.yaml": submission("Crash", "fault_methods:CrashOnce")})
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.setenv("SHIFTBENCH_CACHE", str(base / "driver-cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker does, so that the records can be equal bit for bit
    yield root
    torch.set_num_threads(threads)
    mp.undo()


def checked(root, names):
    return check_all([root / "leaderboard" / "submissions" / n for n in names])


def run(root, names, store, executor=None):
    return run_submissions(checked(root, names), device="cpu", store=Store(store), results_root=store / "results",
                           executor=executor, progress=False)


@pytest.fixture(scope="module")
def local_records(project, tmp_path_factory):
    """The grid run in process, on a checkpoint no training would produce (see the ray test)."""
    store = tmp_path_factory.mktemp("local")
    run(project, ["source.yaml"], store / "first")  # trains the source model into the driver cache
    [ckpt] = (project.parent / "driver-cache" / "models").glob("*.pt")
    state = torch.load(ckpt, weights_only=True)
    state["head.bias"] = state["head.bias"] + torch.linspace(-0.5, 0.5, len(state["head.bias"]))
    torch.save(state, ckpt)
    report = run(project, list(GRID), store / "altered")
    assert report.computed == len(GRID) * SCENARIOS
    return store_records(store / "altered")


def test_ray_gives_the_local_records_and_workers_never_train(ray_session, project, local_records, tmp_path):
    # The workers' cache starts empty. A worker that trained the model itself would get the checkpoint
    # training gives, not the altered one the run was planned with, and its cells would fail.
    worker_cache = tmp_path / "worker-cache"
    executor = RayExecutor(env_vars={"SHIFTBENCH_CACHE": str(worker_cache)}, progress=False)
    report = run(project, list(GRID), tmp_path / "store", executor)
    assert report.computed == len(local_records) and report.failed == 0
    assert store_records(tmp_path / "store") == local_records
    [driver_ckpt] = (project.parent / "driver-cache" / "models").glob("*.pt")
    assert (worker_cache / "models" / driver_ckpt.name).read_bytes() == driver_ckpt.read_bytes()


def source_metrics(records):
    return {r["cell"]["scenario"]: r["metrics"] for r in records.values() if r["cell"]["method"] == "source"}


def test_a_worker_that_dies_mid_cell_is_replaced_and_the_cell_retried(ray_session, project, local_records, tmp_path):
    marker = project / "crashed-once"
    marker.unlink(missing_ok=True)
    report = run(project, ["crash.yaml"], tmp_path / "store", RayExecutor(progress=False))
    assert marker.exists()  # one worker did kill itself mid-cell
    records = store_records(tmp_path / "store")
    assert report.computed == SCENARIOS and report.failed == 0
    assert {r["cell"]["scenario"]: r["metrics"] for r in records.values()} == source_metrics(local_records)


@pytest.mark.slow  # another worker restart; the default run already kills one worker
def test_a_cell_whose_worker_dies_on_every_try_is_recorded_as_failed(ray_session, project, local_records, tmp_path):
    (project / "crashed-once").unlink(missing_ok=True)
    report = run(project, ["crash.yaml"], tmp_path / "store", RayExecutor(max_retries=0, progress=False))
    records = store_records(tmp_path / "store")
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert report.failed == len(failed) == 1
    assert failed[0]["error"].startswith("WorkerDied: the worker process running this cell died (")
    assert failed[0]["error"].endswith("(tries: 1)")
    ok = {r["cell"]["scenario"]: r["metrics"] for r in records.values() if r["status"] == "ok"}
    assert len(ok) == SCENARIOS - 1 and ok.items() <= source_metrics(local_records).items()


def test_a_hanging_exiting_or_segfaulting_cell_fails_alone_and_everything_else_is_the_local_result(
        ray_session, project, local_records, tmp_path):
    """One actor per cell at a time: a dead or stopped actor fails only the cell it was running (after a
    retry for a death), never its scenario's other cells or another submission's."""
    names = {"hang": "hang.yaml", "exit": "exit.yaml", "segfault": "segv.yaml"}
    for mode, name in names.items():
        (project / "leaderboard" / "submissions" / name).write_text(
            submission(f"Misbehave {mode}", "fault_methods:Misbehave", f"{{mode: {mode}, batch: {LAST_BATCH['noise-s3']}}}"))
    executor = RayExecutor(max_retries=1, cell_timeout=20, progress=False)
    report = run(project, ["source.yaml", "bn.yaml", *names.values()], tmp_path / "store", executor)
    records = store_records(tmp_path / "store")
    assert report.computed == 5 * SCENARIOS and report.failed == 3
    expected = {k: r for k, r in local_records.items() if r["cell"]["method"] in ("source", "bn_adapt")}
    assert {k: r for k, r in records.items() if k in expected} == expected
    source = source_metrics(local_records)
    errors = {"hang": "CellTimeout: the cell was still running after 20 s",
              "exit": "WorkerDied: the worker process running this cell died (", "segfault": "WorkerDied: "}
    for r in records.values():
        mode = r["cell"]["params"].get("mode")
        if mode is None:
            continue
        if r["cell"]["scenario"] == "noise-s3":
            assert r["status"] == "failed" and r["error"].startswith(errors[mode]), (mode, r["error"])
            assert mode == "hang" or r["error"].endswith("(tries: 2)")
        else:
            assert r["status"] == "ok" and r["metrics"] == source[r["cell"]["scenario"]], (mode, r["cell"]["scenario"])


def test_asking_for_more_gpus_than_the_cluster_has_stops_before_any_cell(ray_session, project, tmp_path):
    with pytest.raises(UserError, match="--gpus-per-cell: 1.0 GPUs per cell, but the Ray cluster has 0"):
        run(project, ["source.yaml"], tmp_path / "store", RayExecutor(gpus_per_cell=1.0, progress=False))
    assert not (tmp_path / "store" / "tiny").exists()


def test_each_cell_runs_on_the_device_ray_reserved_for_it():
    assert RayExecutor(progress=False)._worker_device("auto") == "cpu"
    assert RayExecutor(gpus_per_cell=0.25, progress=False)._worker_device("auto") == "cuda"
    assert RayExecutor(gpus_per_cell=1, progress=False)._worker_device("cpu") == "cpu"
    with pytest.raises(UserError, match="--gpus-per-cell"):
        RayExecutor(progress=False)._worker_device("cuda")


@pytest.mark.parametrize("argv, message", [
    (["--address", "auto", "--workers", "2"], "--workers: sizes a local Ray only"),
    (["--workers", "0"], "--workers: must be at least 1, got 0"),
    (["--gpus-per-cell", "-1"], "--gpus-per-cell: must be >= 0"),
])
def test_bad_ray_options_are_one_line_and_exit_2(project, tmp_path, capsys, argv, message):
    from shiftbench.cli.main import main

    assert main(["run", "--quiet", "--executor", "ray", "--store", str(tmp_path / "store"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shiftbench: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "store").exists()
