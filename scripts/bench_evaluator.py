"""Evaluator overhead: the same batches through a bare `model(x)` loop and through the evaluator.

Prints wall times and their ratio, measured in one run (best of --repeats for each).
The evaluator side includes everything a cell does after its data exist: method
setup (a copy of the model), the batch loop with resets, metrics.

    python scripts/bench_evaluator.py [--scenario gaussian_noise-s3] [--device auto]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from shiftbench.core.device import resolve_device
from shiftbench.evaluation import compute_metrics, run_stream
from shiftbench.methods import create_method
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--benchmark", default="digits")
    ap.add_argument("--scenario", default="gaussian_noise-s3")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--method", default="source")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    bench = load_benchmark(args.benchmark)
    cell = scenario_cell(bench, args.scenario, method=args.method)
    ws = Workspace(device, progress=True)
    source = ws.model(cell)
    segments = ws.stream(cell)
    images = [s.model_view().images.to(device) for s in segments]  # what the model sees: the centred window
    bs = bench.batch_size

    @torch.no_grad()
    def bare():
        model = source.model
        model.eval()
        for imgs in images:
            for i in range(0, len(imgs), bs):
                model(imgs[i : i + bs].float().div_(255)).cpu()

    def evaluator():
        method = create_method(args.method)
        method.setup(copy.deepcopy(source.model), ws.source(cell, source))
        logits = run_stream(method, segments, "per_scenario", bs, device)
        for seg, lg in zip(segments, logits):
            compute_metrics(lg, seg.labels, groups=seg.groups, source_index=seg.source_index)

    bare(), evaluator()  # warm up
    t_bare = best_of(bare, args.repeats)
    t_eval = best_of(evaluator, args.repeats)
    n = sum(len(s) for s in segments)
    print(f"device {device}, torch threads {torch.get_num_threads()}, {n} images in batches of {bs}, "
          f"scenario {args.scenario}, method {args.method}")
    print(f"bare model(x) loop : {t_bare * 1000:8.1f} ms")
    print(f"evaluator          : {t_eval * 1000:8.1f} ms")
    print(f"ratio              : {t_eval / t_bare:8.3f}  (target <= 1.25)")


if __name__ == "__main__":
    main()
