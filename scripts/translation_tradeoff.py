"""Accuracy vs consistency of crop selection at several margins against the source model; writes an SVG.

    PYTHONPATH=src python scripts/translation_tradeoff.py [--benchmark digits-wide]
        [--scenarios translate-grid-d1 translate-grid-d2] [--margins 0 1 2 3 4] [--out PATH]

Trains (or loads from the cache) the benchmark's source model, runs `source` and
`crop_select` (realistic mode, each margin) on the chosen translation scenarios
through the shared evaluator, prints the table and plots it with
shiftbench.leaderboard.plots_translation.plot_translation_tradeoff.
"""

from __future__ import annotations

import argparse
import time

import pandas as pd
import torch

from shiftbench.core.device import resolve_device
from shiftbench.evaluation import compute_metrics, run_stream
from shiftbench.leaderboard.plots_translation import plot_translation_tradeoff
from shiftbench.methods import create_method
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="digits-wide")
    ap.add_argument("--scenarios", nargs="+", default=["translate-grid-d1", "translate-grid-d2"])
    ap.add_argument("--margins", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="leaderboard/site/translation_tradeoff.svg")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    bench = load_benchmark(args.benchmark)
    ws = Workspace(resolve_device(args.device), progress=False)
    entries = [("source", "source", {})] + [(f"crop_select m={m}", "crop_select", {"margin": m}) for m in args.margins]
    rows = []
    for name in args.scenarios:
        cell = scenario_cell(bench, name, seed=args.seed)
        model = ws.model(cell)
        segments = ws.stream(cell)
        context = ws.source(cell, model)
        for label, method_name, params in entries:
            start = time.perf_counter()
            method = create_method(method_name, params)
            method.setup(model.model, context)
            logits = run_stream(method, segments, "per_scenario", bench.batch_size, ws.device)[0]
            seg = segments[0]
            m = compute_metrics(logits, seg.labels, source_index=seg.source_index, meta=seg.meta)
            rows.append({"scenario": name, "entry": label, "method": method_name, "margin": params.get("margin"),
                         "accuracy": m["accuracy"], "consistency": m.get("pairwise_consistency", m["consistency"]),
                         "fooling_rate": m.get("fooling_rate"), "worst_shift_accuracy": m.get("worst_shift_accuracy"),
                         "argmax_on_border": method.describe().get("argmax_on_border"),
                         "seconds": round(time.perf_counter() - start, 2)})
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    points = table.groupby(["entry", "method"], sort=False)[["margin", "accuracy", "consistency"]].mean().reset_index()
    out = plot_translation_tradeoff(points, args.out, title=f"{bench.name}: {', '.join(args.scenarios)}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
