"""The CIFAR-10 ResNet-20 table: error per corruption (severity 5) for source, BN-adapt, alpha-BN (0.1) and TENT.

Runs the cifar10-jpeg benchmark's generated-*-s5 scenarios (by default its seeded,
class-stratified 2,000-image subset, shuffled, batches of 200, reset per corruption)
through the suite's own cell computation, and prints a Markdown table with the mean.
Needs a data root holding cifar10-jpeg/, cifar10-resnet20/ and imagenet-c-frost/ (--data-dir or
$SHIFTBENCH_DATA).

    python scripts/cifar10_corruption_table.py --data-dir ROOT [--n 2000] [--benchmark cifar10-jpeg]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import torch

C15 = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
       "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"]
METHODS = {"source": ("source", {}), "BN-adapt": ("bn_adapt", {}), "alpha-BN (0.1)": ("alpha_bn", {"alpha": 0.1}),
           "TENT": ("tent", {"lr": 1e-3, "steps": 1, "optimizer": "adam"})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--benchmark", default="cifar10-jpeg")
    ap.add_argument("--n", type=int, default=None, help="images per scenario (default: the benchmark's n_per_scenario)")
    ap.add_argument("--severity", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.data_dir:
        os.environ["SHIFTBENCH_DATA"] = str(args.data_dir)
    if args.threads:
        torch.set_num_threads(args.threads)

    from shiftbench.run.benchmark import load_benchmark
    from shiftbench.run.compute import compute_cell
    from shiftbench.run.plan import scenario_cell
    from shiftbench.run.workspace import Workspace

    bench = load_benchmark(args.benchmark)
    ws = Workspace(torch.device("cpu"), progress=False)
    start = time.perf_counter()
    rows = {}
    for c in C15:
        rows[c] = {}
        for label, (method, params) in METHODS.items():
            cell = scenario_cell(bench, f"generated-{c}-s{args.severity}", method=method, params=params)
            if args.n:
                cell = replace(cell, spec={**cell.spec, "n_per_scenario": args.n})
            cell = replace(cell, checkpoint_sha256=ws.model(cell).sha256)
            record = compute_cell(cell, ws)
            if record["status"] != "ok":
                raise SystemExit(f"{c} / {label}: {record['error']}")
            rows[c][label] = 100 * record["metrics"]["error"]
        print(f"{c}: " + ", ".join(f"{k} {v:.1f}" for k, v in rows[c].items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    n = cell.spec["n_per_scenario"] or "all"
    print(f"\n{args.benchmark}, {n} images per corruption, severity {args.severity}, batch {bench.batch_size}, "
          f"order {cell.spec['order']}, reset per corruption; commit {commit}; {time.perf_counter() - start:.0f} s\n")
    print("| corruption | " + " | ".join(METHODS) + " |")
    print("|---|" + "---:|" * len(METHODS))
    for c, r in rows.items():
        print(f"| {c} | " + " | ".join(f"{r[m]:.1f}" for m in METHODS) + " |")
    print("| **mean** | " + " | ".join(f"**{sum(r[m] for r in rows.values()) / len(rows):.1f}**" for m in METHODS) + " |")


if __name__ == "__main__":
    main()
