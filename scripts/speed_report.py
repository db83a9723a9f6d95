"""Speed report: ratios measured in one run on this machine.

    PYTHONPATH=src python scripts/speed_report.py            # about 4 minutes on a quiet 2-core CPU
    PYTHONPATH=src python scripts/speed_report.py --skip-cli  # without the cold/warm `shiftbench run`

1. evaluator overhead: `run_stream` with the source method vs a bare `model(x)` loop over the same batches
2. the Ray executor with 2 workers vs the local executor on the same grid
3. how wall time grows with the grid: 1x, 2x, 4x cells (local executor)
4. cold (empty cache) vs warm (everything cached) `shiftbench run` on the default project

Every computation uses --threads torch threads (default 1): one per Ray worker, and the
same in the local executor, so both do the same work per core. Nothing here reads or
writes the user's cache or the project's results: all goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORRUPTIONS = ["gaussian_noise", "shot_noise", "impulse_noise", "contrast", "gaussian_blur", "pixelate"]
METHODS = {"source": "source", "bn": "bn_adapt", "tent": "tent"}


def grid_benchmark(name: str, severities: list[int], corruptions: list[str]) -> str:
    return f"""\
name: {name}
dataset: digits
batch_size: 64
model: {{arch: small_cnn, width: 16}}
training: {{name: erm, epochs: 3, lr: 0.05, batch_size: 64}}
scenarios:
  - name: "{{c}}-s{{s}}"
    family: covariate
    matrix: {{c: [{", ".join(corruptions)}], s: {severities}}}
    shifts: [{{shift: "{{c}}", severity: "{{s}}"}}]
"""


def make_project(root: Path, corruptions: list[str]) -> dict[str, list[int]]:
    """A project whose benchmarks grid-1x, -2x, -4x have 1, 2, 4 severities of each corruption; 3 methods each."""
    shutil.copytree(REPO / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir()
    grids = {"grid-1x": [5], "grid-2x": [4, 5], "grid-4x": [2, 3, 4, 5]}
    for name, sev in grids.items():
        (root / "benchmarks" / f"{name}.yaml").write_text(grid_benchmark(name, sev, corruptions))
        subs = root / "leaderboard" / name
        subs.mkdir(parents=True)
        for entry, method in METHODS.items():
            (subs / f"{entry}.yaml").write_text(f"name: {entry}\nmethod: {method}\nbenchmark: {name}\nseeds: [0]\n")
    return grids


def submissions(root: Path, grid: str):
    from shiftbench.run.submission import check_all

    return check_all(sorted((root / "leaderboard" / grid).glob("*.yaml")))


def timed_run(root: Path, grid: str, executor=None) -> tuple[float, int]:
    """Wall seconds of run_submissions on a fresh store (every cell computed; models already cached)."""
    from shiftbench.run.runner import run_submissions
    from shiftbench.run.store import Store

    checked = submissions(root, grid)
    out = Path(tempfile.mkdtemp(dir=root))
    start = time.perf_counter()
    report = run_submissions(checked, device="cpu", store=Store(out / "store"), results_root=out / "results",
                             executor=executor, progress=False)
    seconds = time.perf_counter() - start
    assert report.failed == 0 and report.computed == len(report.cells)
    return seconds, report.computed


def evaluator_overhead(root: Path, repeats: int) -> tuple[float, float, float]:
    """Median over repeats of (bare loop s, run_stream s, compute_cell s) on the same model and batches."""
    import torch

    from shiftbench.evaluation.stream import run_stream
    from shiftbench.methods import create_method
    from shiftbench.models.forward import batches, to_float
    from shiftbench.run.compute import compute_cell
    from shiftbench.run.plan import plan
    from shiftbench.run.workspace import Workspace

    checked = submissions(root, "grid-1x")
    source = next(c for c in checked if c.submission.method == "source")
    ws = Workspace(torch.device("cpu"), progress=False)
    cell = plan([source], ws)[source.path][0]
    model = ws.model(cell).model
    segments = ws.stream(cell)
    images = segments[0].model_view().images  # what the model sees: the centred window

    @torch.no_grad()
    def bare():
        for s in batches(len(images), cell.batch_size):
            model(to_float(images[s]))

    method = create_method("source")
    method.setup(model, ws.source(cell, ws.model(cell)))
    times = {"bare": [], "stream": [], "cell": []}
    for _ in range(repeats):  # interleaved, so load changes hit all three alike
        for name, fn in (("bare", bare), ("stream", lambda: run_stream(method, segments, "per_scenario",
                                                                        cell.batch_size, torch.device("cpu"))),
                         ("cell", lambda: compute_cell(cell, ws))):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return tuple(statistics.median(times[k]) for k in ("bare", "stream", "cell"))


def cli_run(tmp: Path, threads: int) -> float:
    env = dict(os.environ, SHIFTBENCH_CACHE=str(tmp / "cli-cache"), OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    cmd = [sys.executable, "-m", "shiftbench", "run", "--quiet", "--store", str(tmp / "cli-store"),
           "--results", str(tmp / "cli-results"), "--site", str(tmp / "cli-site")]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per computation (default 1)")
    ap.add_argument("--repeats", type=int, default=15, help="repeats of the evaluator overhead timing")
    ap.add_argument("--corruptions", type=int, default=len(CORRUPTIONS), help="corruptions in the grids (default 6)")
    ap.add_argument("--skip-cli", action="store_true", help="skip the cold/warm `shiftbench run` rows")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="shiftbench-speed-"))
    os.environ["SHIFTBENCH_CACHE"] = str(tmp / "cache")
    root = tmp / "project"
    grids = make_project(root, CORRUPTIONS[: args.corruptions])
    os.chdir(root)
    rows: list[tuple[str, str, str]] = []

    def row(what: str, seconds: str, ratio: str = "") -> None:
        rows.append((what, seconds, ratio))
        print(f"  {what:<52} {seconds:>10} {ratio}", file=sys.stderr, flush=True)

    from shiftbench.run.executors.ray_executor import RayExecutor

    timed_run(root, "grid-1x")  # trains the model, loads the data: not measured

    bare, stream, cell = evaluator_overhead(root, args.repeats)
    row("bare model(x) loop, one scenario", f"{bare * 1000:.1f} ms")
    row("evaluator run_stream (source), same batches", f"{stream * 1000:.1f} ms",
        f"{stream / bare:.2f}x bare (target <= 1.25)")
    row("whole cell (execute_cell: copy, metrics, record)", f"{cell * 1000:.1f} ms", f"{cell / bare:.2f}x bare")

    sizes = {}
    for grid in grids:
        seconds, n = timed_run(root, grid)
        sizes[grid] = (seconds, n)
    base = sizes["grid-1x"][0]
    for grid, (seconds, n) in sizes.items():
        row(f"local, {grid} ({n} cells)", f"{seconds:.1f} s", f"{seconds / base:.2f}x the 1x grid")

    local, n = sizes["grid-4x"]
    cold, _ = timed_run(root, "grid-4x", RayExecutor(num_cpus=2, cpus_per_cell=args.threads, progress=False))
    row("ray, 2 workers, grid-4x, incl. Ray start-up", f"{cold:.1f} s", f"speed-up {local / cold:.2f}x over local")
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        timed_run(root, "grid-1x", RayExecutor(cpus_per_cell=args.threads, progress=False))  # starts the workers
        warm, _ = timed_run(root, "grid-4x", RayExecutor(cpus_per_cell=args.threads, progress=False))
    finally:
        ray.shutdown()
    row("ray, 2 workers, grid-4x, Ray already running", f"{warm:.1f} s",
        f"speed-up {local / warm:.2f}x over local (target >= 1.6)")

    if not args.skip_cli:
        cold_cli = cli_run(tmp, args.threads)
        warm_cli = cli_run(tmp, args.threads)
        row("`shiftbench run`, default project, cold cache", f"{cold_cli:.1f} s")
        row("`shiftbench run`, same, all cached", f"{warm_cli:.1f} s", f"{warm_cli / cold_cli:.2f}x the cold time")

    print(f"\nshiftbench speed report ({os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} torch thread(s) per computation, device cpu)\n")
    print(f"| {'measure':<52} | {'time':>10} | ratio")
    print(f"|{'-' * 54}|{'-' * 12}|------")
    for what, seconds, ratio in rows:
        print(f"| {what:<52} | {seconds:>10} | {ratio}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
