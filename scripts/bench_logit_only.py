"""Logit-only sharing: one scenario with 6 logit-only label-shift methods vs with the source method alone.

Both sides run the real cell path (execute_cell) on a warm workspace whose scenario data
and source model already exist; the logit-only side starts with the logit memo empty, so
it pays for the one shared forward pass (test and held-out source logits) plus six
calibrations, prior estimates and metric computations. Prints wall times and their ratio,
best of --repeats (interleaved) for each, measured in one run.

    PYTHONPATH=src python scripts/bench_logit_only.py [--benchmark digits-label] [--scenario dirichlet-a0.1]
"""

from __future__ import annotations

import argparse
import time

import torch

from shiftbench import __version__
from shiftbench.benchmark import load_benchmark
from shiftbench.cell import Cell, execute_cell
from shiftbench.methods import check_method, prior_correction
from shiftbench.provenance import resolve_device
from shiftbench.workspace import Workspace

LOGIT_ONLY = [
    ("logit_adjust", {}),
    ("bbse", {}),
    ("bbse", {"soft": True}),
    ("rlls", {}),
    ("mlls", {"calibration": "none"}),
    ("mlls", {"calibration": "bcts"}),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="digits-label")
    ap.add_argument("--scenario", default="dirichlet-a0.1")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    bench = load_benchmark(args.benchmark)
    scenario = bench.scenario(args.scenario)
    ws = Workspace(resolve_device(args.device), progress=True)
    model = ws.model(bench, scenario, None, 0)
    ws.segments(bench, scenario, 0)

    def cell(method, params):
        return Cell(benchmark=bench.name, benchmark_hash=bench.content_hash(), scenario=scenario.name,
                    family=scenario.family, method=method, params=check_method(method, params), protocol="per_scenario",
                    seed=0, checkpoint_sha256=model.sha256, version=__version__)

    source_cell = cell("source", {})
    logit_cells = [cell(m, p) for m, p in LOGIT_ONLY]

    def run(cells):
        ws.logits.clear()  # every side pays for its own forward passes and calibration fits
        prior_correction._calibrators.clear()
        t = time.perf_counter()
        for c in cells:
            rec = execute_cell(c, ws)
            if rec["status"] != "ok":
                raise SystemExit(f"{c.method} failed: {rec['error']}")
        return time.perf_counter() - t

    run([source_cell] + logit_cells)  # warm-up: imports, first-call costs
    times = [(run([source_cell]), run(logit_cells)) for _ in range(args.repeats)]  # interleaved: load drifts
    t_source, t_logit = min(t for t, _ in times), min(t for _, t in times)
    print(f"{bench.name}/{scenario.name} on {ws.device}, best of {args.repeats}")
    print(f"source alone:           {t_source:.3f} s")
    print(f"6 logit-only methods:   {t_logit:.3f} s  ({', '.join(m for m, _ in LOGIT_ONLY)})")
    print(f"ratio:                  {t_logit / t_source:.2f}x")


if __name__ == "__main__":
    main()
