"""DDFA and its baselines under latent label shift on the digits test split (classes discovered, not given).

    PYTHONPATH=src python scripts/latent_label_digits.py [--domains 10 20] [--concentrations 0.5 3 10] [--seeds 0 1 2]

The digits benchmark's source model (small CNN, trained once and cached as `shiftbench run` trains it)
gives the features; the clean test split is cut into Dirichlet domains (shifts/latent_label.py).
Rows: DDFA on the source features (logistic-regression domain discriminator, k-means in p(d|x),
NMF, adjustment), k-means with K clusters on the same features (both scored by Hungarian
matching), the source model alone, and the source model with each domain's true p_d(y) (an
oracle). Prints mean (and min-max over seeds) accuracy in %, and DDFA's recovered-prior L1 error
per domain (sum over classes of |p_hat_d(y) - p_d(y)|, 0..2).
"""

from __future__ import annotations

import argparse

import torch

from shiftbench.methods.discovery.ddfa import ddfa, kmeans, source_with_true_priors
from shiftbench.methods.discovery.matching import best_matching, matched_accuracy, prior_error
from shiftbench.models.forward import to_float
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace
from shiftbench.shifts.latent_label import latent_domains


@torch.no_grad()
def features_and_logits(model, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    parts = [model.features_and_logits(to_float(images[i:i + batch])) for i in range(0, len(images), batch)]
    return torch.cat([f for f, _ in parts]), torch.cat([z for _, z in parts])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--concentrations", type=float, nargs="+", default=[0.5, 3.0, 10.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-condition", type=float, default=None)
    args = ap.parse_args()

    bench = load_benchmark("digits")
    cell = scenario_cell(bench, "clean")
    ws = Workspace(torch.device("cpu"), progress=False)
    source = ws.model(cell)
    test = ws.stream(cell)[0].model_view()
    feats, logits = features_and_logits(source.model, test.images)
    k = test.num_classes
    prior = torch.bincount(ws.source_split(cell, "source_train").labels, minlength=k).double()
    prior /= prior.sum()
    print(f"{len(test)} test images, {k} classes, features {feats.shape[1]}-d")
    print("| domains | concentration | images | DDFA | k-means | source | source + true p_d(y) | DDFA prior L1 / domain |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n_domains in args.domains:
        for conc in args.concentrations:
            rows: dict[str, list[float]] = {"ddfa": [], "kmeans": [], "source": [], "oracle": [], "l1": [], "n": []}
            for seed in args.seeds:
                split = latent_domains(test.labels, k, n_domains, conc, seed, args.max_condition)
                x, y, z = feats[split.rows], test.labels[split.rows], logits[split.rows]
                result = ddfa(x, split.domains, k, n_domains, seed)
                rows["ddfa"].append(matched_accuracy(result.labels, y, k))
                rows["l1"].append(prior_error(result.p_y_d, split.priors, best_matching(result.labels, y, k)) / n_domains)
                rows["kmeans"].append(matched_accuracy(kmeans(x, k, seed), y, k))
                rows["source"].append((z.argmax(1) == y).double().mean().item())
                oracle = source_with_true_priors(z, split.domains, split.priors, prior)
                rows["oracle"].append((oracle.argmax(1) == y).double().mean().item())
                rows["n"].append(len(y))

            def cell_text(v: list[float], scale: float = 100.0, digits: int = 1) -> str:
                return f"{scale * sum(v) / len(v):.{digits}f} ({scale * min(v):.{digits}f}-{scale * max(v):.{digits}f})"

            print(f"| {n_domains} | {conc:g} | {int(sum(rows['n']) / len(rows['n']))} | {cell_text(rows['ddfa'])} | "
                  f"{cell_text(rows['kmeans'])} | {cell_text(rows['source'])} | {cell_text(rows['oracle'])} | "
                  f"{cell_text(rows['l1'], 1.0, 2)} |", flush=True)


if __name__ == "__main__":
    main()
