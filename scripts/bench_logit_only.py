"""Logit-only sharing: one scenario with 6 logit-only label-shift methods vs with the source method alone.

Both sides run the real cell path (compute_cell) on a warm workspace whose scenario data
and source model already exist; the logit-only side starts with the logit memo empty, so
it pays for the one shared forward pass (test and held-out source logits) plus six
calibrations, prior estimates and metric computations. A second logit-only figure keeps the
held-out source logits (and calibrators) that a full run computes once per source model and
then shares across all its scenarios. Prints wall times and ratios, best of --repeats
(interleaved) for each, measured in one run.

    PYTHONPATH=src python scripts/bench_logit_only.py [--benchmark digits-label] [--scenario dirichlet-a0.1]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from shiftbench.core.device import resolve_device
from shiftbench.methods import check_method
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.compute import compute_cell
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace

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
    ws = Workspace(resolve_device(args.device), progress=True)
    model = ws.model(scenario_cell(bench, args.scenario))
    ws.stream(scenario_cell(bench, args.scenario))

    def cell(method, params):
        return replace(scenario_cell(bench, args.scenario, method=method, params=check_method(method, params)),
                       checkpoint_sha256=model.sha256)

    source_cell = cell("source", {})
    logit_cells = [cell(m, p) for m, p in LOGIT_ONLY]

    def run(cells, keep_held_out=False):
        # every side pays for its own forward passes and calibration fits; keep_held_out leaves the
        # held-out source logits in the memo, as a full run has them after its first scenario on a model
        for key in list(ws._shared):
            if key[0] == "logits":
                del ws._shared[key]
            elif not keep_held_out:  # the source context holds the held-out logits and the fitted calibrators
                ws._shared[key].memo.clear()
        t = time.perf_counter()
        for c in cells:
            rec = compute_cell(c, ws)
            if rec["status"] != "ok":
                raise SystemExit(f"{c.method} failed: {rec['error']}")
        return time.perf_counter() - t

    run([source_cell] + logit_cells)  # warm-up: imports, first-call costs
    # interleaved repeats, so that load from other processes hits all sides alike
    times = [(run([source_cell]), run(logit_cells), run(logit_cells, keep_held_out=True)) for _ in range(args.repeats)]
    t_source, t_cold, t_warm = (min(t[i] for t in times) for i in range(3))
    print(f"{bench.name}/{args.scenario} on {ws.device}, best of {args.repeats}")
    print(f"source alone:                               {t_source:.3f} s")
    print(f"6 logit-only methods ({', '.join(m for m, _ in LOGIT_ONLY)})")
    print(f"  cold (pays the held-out source forward):  {t_cold:.3f} s   ratio {t_cold / t_source:.2f}x")
    print(f"  held-out logits already memoised:         {t_warm:.3f} s   ratio {t_warm / t_source:.2f}x")


if __name__ == "__main__":
    main()
