"""Source-model accuracy on a benchmark's test split under every corruption.

    SHIFTBENCH_CACHE=/tmp/sbcache PYTHONPATH=src python scripts/corruption_accuracy.py \
        [--benchmark benchmarks/digits.yaml] [--severities 3]

Trains (or loads from the cache) the benchmark's default source model once, then prints its
top-1 accuracy on the clean test images and on each corruption at the given severities.
"""

from __future__ import annotations

import argparse

import torch

from shiftbench.core.hashing import seed_from
from shiftbench.models.forward import forward
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace
from shiftbench.shifts import all_shifts, get_shift
from shiftbench.shifts.corruption import CORRUPTIONS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmark", default="benchmarks/digits.yaml")
    ap.add_argument("--severities", type=int, nargs="+", default=[3])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    all_shifts()
    bench = load_benchmark(args.benchmark)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ws = Workspace(device, progress=False)
    model = ws.model(scenario_cell(bench, bench.scenarios[0].name, seed=args.seed)).model.to(device)
    test = ws.dataset(bench.dataset).test

    def accuracy(data) -> float:
        view = data.model_view()
        logits = forward(model, view, 512, device)
        return (logits.argmax(1) == view.labels).float().mean().item()

    print(f"{bench.name}: {len(test)} test images, source model seed {args.seed}")
    print(f"{'clean':18s} {100 * accuracy(test):6.1f}")
    print(f"{'corruption':18s} " + " ".join(f"{'s' + str(s):>6s}" for s in args.severities))
    for name in sorted(CORRUPTIONS):
        fn = get_shift(name).fn
        accs = [accuracy(fn(test, seed=seed_from(bench.name, name, s, args.seed), severity=s)) for s in args.severities]
        print(f"{name:18s} " + " ".join(f"{100 * a:6.1f}" for a in accs))


if __name__ == "__main__":
    main()
