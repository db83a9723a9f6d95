"""Group sizes and worst-group accuracy of every concept submission's source model, per seed.

    SHIFTBENCH_CACHE=/tmp/sbcache PYTHONPATH=src python scripts/concept_groups.py [--benchmark concept] [--seeds 0 1 2]

For each submission in leaderboard/submissions/ on the benchmark (its training recipe), and each
seed: the training groups' sizes (label x attribute, from the scenario's train_shifts) and, per
scenario, the test groups' sizes and the source model's accuracy on each group. Trains through
the same cache as `shiftbench run`, so the models are the ones the leaderboard evaluates.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from shiftbench.models.forward import forward
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.submission import check_submission, submissions_dir
from shiftbench.run.workspace import Workspace


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmark", default="concept")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    bench = load_benchmark(args.benchmark)
    device = torch.device("cpu")
    ws = Workspace(device, progress=False)
    subs = [check_submission(p) for p in sorted(submissions_dir().glob("*.yaml"))]
    subs = [s for s in subs if s.submission.benchmark == bench.name]
    for scenario in bench.scenarios:
        print(f"== {scenario.name}: train {scenario.train_shifts}, test {scenario.shifts}")
        for sub in subs:
            for seed in args.seeds:
                cell = replace(scenario_cell(bench, scenario.name, seed=seed), training=sub.training)
                train = ws.source_split(cell, "source_train")
                test = ws.stream(cell)[0].model_view()
                model = ws.model(cell).model
                correct = forward(model, test, 256, device).argmax(1) == test.labels
                names = list((test.meta.get("report") or {}).get("group_sizes", {}))
                per_group = [correct[test.groups == g].float().mean().item() for g in torch.unique(test.groups)]
                print(f"{sub.submission.name:32s} seed {seed}: train groups {train.meta['report']['group_sizes']}")
                print(f"{'':32s}   test groups " + ", ".join(f"{n} {100 * a:.1f}% of {k}" for n, a, k in zip(
                    names, per_group, torch.unique(test.groups, return_counts=True)[1].tolist()))
                      + f"; worst {100 * min(per_group):.1f}%, accuracy {100 * correct.float().mean().item():.1f}%")


if __name__ == "__main__":
    main()
