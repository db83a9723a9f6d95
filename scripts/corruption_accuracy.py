"""Source-model accuracy on a benchmark's test split under every corruption.

    SHIFTBENCH_CACHE=/tmp/sbcache PYTHONPATH=src python scripts/corruption_accuracy.py \
        [--benchmark benchmarks/digits.yaml] [--severities 3] [--table auto|cifar|imagenet]
    ... scripts/corruption_accuracy.py --scenarios [--seeds 0 1 2]

Trains (or loads from the cache) the benchmark's default source model once, then prints its
top-1 accuracy on the clean test images and on each corruption at the given severities.
With --scenarios: its accuracy on each of the benchmark's own one-segment covariate scenarios
as defined (parameters, table and the seed derivation of a run), per seed and the mean: the
figures a benchmark's description quotes.
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
    ap.add_argument("--table", default="auto", choices=["auto", "cifar", "imagenet"])
    ap.add_argument("--scenarios", action="store_true", help="the benchmark's covariate scenarios instead")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="with --scenarios: seeds (default: --seed)")
    args = ap.parse_args()
    if args.scenarios:
        return scenario_accuracy(args)
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
        accs = [accuracy(fn(test, seed=seed_from(bench.name, name, s, args.seed), severity=s, table=args.table))
                for s in args.severities]
        print(f"{name:18s} " + " ".join(f"{100 * a:6.1f}" for a in accs))


def scenario_accuracy(args) -> None:
    """Source accuracy on each one-segment covariate scenario, through the same Workspace as a run."""
    bench = load_benchmark(args.benchmark)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ws = Workspace(device, progress=False)
    seeds = args.seeds or [args.seed]
    rows = []
    for s in [s for s in bench.scenarios if s.family in ("clean", "covariate") and s.segments is None]:
        accs = []
        for seed in seeds:
            cell = scenario_cell(bench, s.name, seed=seed)
            data = ws.stream(cell)[0].model_view()
            logits = forward(ws.model(cell).model, data, 512, device)
            accs.append((logits.argmax(1) == data.labels).float().mean().item())
        rows.append((s.name, accs))
        print(f"{s.name:24s} " + " ".join(f"{100 * a:5.1f}" for a in accs) + f"   mean {100 * sum(accs) / len(accs):5.1f}",
              flush=True)
    clean = dict(rows).get("clean")
    if clean:
        base = sum(clean) / len(clean)
        hurt = [n for n, a in rows if n != "clean" and base - sum(a) / len(a) >= 0.2]
        print(f"{len(hurt)} of {len(rows) - 1} scenarios lose at least 20 points against clean ({100 * base:.1f})")


if __name__ == "__main__":
    main()
