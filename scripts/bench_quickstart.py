"""The quickstart as a newcomer meets it: `shiftbench run` in a fresh project with an empty cache, then again.

    python scripts/bench_quickstart.py [--repeats N] [--keep DIR]

Copies the project's benchmarks/, data_manifests/ and leaderboard/{submissions,published}/ into
a temporary folder, points SHIFTBENCH_CACHE at an empty folder there, and times (wall clock, and
CPU seconds of the command and its worker processes) a cold run (the source model is trained,
every cell computed, the site built) and a warm run (everything reused). The goals on a 2-core
machine: cold under 60 s, warm under 5 s. --repeats runs the warm run N times and keeps the
fastest (a warm run is short enough for a burst of load elsewhere to land on it). The machine's
load average is printed beside the figures, since a shared machine slows every figure here.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLD_GOAL_S, WARM_GOAL_S = 60, 5


def make_project(root: Path) -> Path:
    for part in ("benchmarks", "data_manifests"):
        shutil.copytree(REPO / part, root / part)
    for part in ("submissions", "published"):
        shutil.copytree(REPO / "leaderboard" / part, root / "leaderboard" / part)
    return root


def timed_run(project: Path, cache: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the run and its children, the run's last line)."""
    env = {**os.environ, "SHIFTBENCH_CACHE": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "shiftbench", "run"], cwd=project, env=env, capture_output=True,
                         text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"shiftbench run failed ({out.returncode}):\n{out.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="warm runs; the fastest is reported")
    ap.add_argument("--keep", type=Path, default=None, help="build the project here and keep it")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="shiftbench-quickstart-")) if args.keep is None else args.keep
    try:
        project = make_project(tmp / "project")
        cache = tmp / "cache"
        cold = timed_run(project, cache)
        warm = min((timed_run(project, cache) for _ in range(args.repeats)), key=lambda r: r[0])
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} after the runs")
        for label, (wall, cpu, last), goal in (("cold", cold, COLD_GOAL_S), ("warm", warm, WARM_GOAL_S)):
            print(f"{label}: {wall:6.1f} s wall, {cpu:6.1f} s CPU  (goal under {goal} s: "
                  f"{'met' if wall < goal else 'NOT met'})  {last}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
