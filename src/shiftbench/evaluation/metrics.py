"""Metrics from (logits, labels, metadata), WILDS style: one function, a flat dict out.

Accuracies are fractions in [0, 1]; `error` is 1 - accuracy, stated so nobody has to guess.
Under latent label shift (the scenario's meta holds the true per-domain priors, `domain_priors`)
classes are discovered in an arbitrary order, so every method there is also scored by the
Hungarian-matched accuracy (methods/discovery/matching.py).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..methods.discovery.matching import best_matching, matched_accuracy, prior_error

ECE_BINS = 15


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of |accuracy - confidence| weighted by the bin's share."""
    conf, pred = probs.max(1)
    correct = (pred == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf.double(), edges[1:-1], right=True)  # bin i holds (edge_i, edge_i+1]
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.double().mean().item() * abs(correct[mask].mean().item() - conf[mask].double().mean().item())
    return ece


def group_accuracies(correct: torch.Tensor, groups: torch.Tensor) -> dict[int, float]:
    return {int(g): correct[groups == g].double().mean().item() for g in torch.unique(groups)}


def consistency(pred: torch.Tensor, source_index: torch.Tensor) -> float:
    """Fraction of original images whose views all get the same top-1 prediction."""
    n = int(source_index.max()) + 1
    lo = torch.full((n,), 1 << 30, dtype=torch.long).scatter_reduce(0, source_index, pred, "amin")
    hi = torch.full((n,), -1, dtype=torch.long).scatter_reduce(0, source_index, pred, "amax")
    present = torch.bincount(source_index, minlength=n) > 0
    return (lo == hi)[present].double().mean().item()


def view_layout(source_index: torch.Tensor, views: int) -> bool:
    """True when rows are image-major views: row i * views + v is view v of image i."""
    n = len(source_index)
    return views > 0 and n % views == 0 and torch.equal(
        source_index, torch.arange(n // views, dtype=source_index.dtype).repeat_interleave(views))


def translation_metrics(pred: torch.Tensor, labels: torch.Tensor, offsets: list[list[int]]) -> dict[str, Any]:
    """Per-shift accuracy, pairwise consistency and fooling rate over image-major views at `offsets`.

    pairwise_consistency: probability that two shifts drawn independently and
    uniformly from `offsets` give the same top-1 class (Zhang 2019), computed
    exactly per image as sum_c (n_c / V)^2 over the V views' predictions.
    fooling_rate: fraction of images whose prediction at some 1-pixel shift
    (max(|dy|, |dx|) == 1) differs from the unshifted view's (Lost in Translation).
    """
    v = len(offsets)
    p = pred.view(-1, v)
    correct = (p == labels.view(-1, v)).double()
    per_shift = correct.mean(0)
    out: dict[str, Any] = {
        "accuracy_by_shift": {f"{dy},{dx}": per_shift[i].item() for i, (dy, dx) in enumerate(offsets)},
        "worst_shift_accuracy": per_shift.min().item(),
    }
    counts = F.one_hot(p, int(pred.max()) + 1).sum(1).double()  # (n, classes)
    out["pairwise_consistency"] = (counts / v).pow(2).sum(1).mean().item()
    keys = [tuple(o) for o in offsets]
    if (0, 0) in keys:
        centre = p[:, keys.index((0, 0))]
        ring = [i for i, (dy, dx) in enumerate(keys) if max(abs(dy), abs(dx)) == 1]
        if ring:
            out["fooling_rate"] = (p[:, ring] != centre[:, None]).any(1).double().mean().item()
    return out


def compute_metrics(logits: torch.Tensor, labels: torch.Tensor, *, groups: torch.Tensor | None = None,
                    source_index: torch.Tensor | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    logits = logits.double().cpu()
    labels = labels.cpu()
    probs = logits.softmax(1)
    pred = probs.argmax(1)
    correct = pred == labels
    acc = correct.double().mean().item()
    k = logits.shape[1]
    per_class = [correct[labels == c].double().mean().item() for c in range(k) if (labels == c).any()]
    out: dict[str, Any] = {
        "n": len(labels),
        "accuracy": acc,
        "error": 1.0 - acc,
        "nll": F.cross_entropy(logits, labels).item(),
        "ece": expected_calibration_error(probs, labels),
        "balanced_accuracy": sum(per_class) / len(per_class),
    }
    if groups is not None:
        per_group = group_accuracies(correct, groups.cpu())
        out["worst_group_accuracy"] = min(per_group.values())
        out["group_average_accuracy"] = sum(per_group.values()) / len(per_group)
    if source_index is not None:
        out["consistency"] = consistency(pred, source_index.cpu())
        offsets = (meta or {}).get("view_offsets")
        if offsets and view_layout(source_index.cpu(), len(offsets)):
            out.update(translation_metrics(pred, labels, offsets))
    out.update(dataset_metrics(pred, labels, None if groups is None else groups.cpu(), meta or {}))
    if "domain_priors" in (meta or {}):
        out["matched_accuracy"] = matched_accuracy(pred, labels, k)
    for key, value in (meta or {}).get("report", {}).items():  # scenario facts shown beside the accuracy
        out[key] = value
    return out


def macro_f1(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """Mean over the classes present in y_true of F1 = 2 TP / (2 TP + FP + FN) (WILDS' F1-macro_all:
    sklearn's f1_score(average='macro', labels=unique(y_true)); a class with no TP, FP, FN scores 0)."""
    scores = []
    for c in torch.unique(y_true).tolist():
        tp = ((y_pred == c) & (y_true == c)).sum().item()
        fp = ((y_pred == c) & (y_true != c)).sum().item()
        fn = ((y_pred != c) & (y_true == c)).sum().item()
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores)


def worst_group_accuracy(y_pred: torch.Tensor, y_true: torch.Tensor, groups: torch.Tensor,
                         exclude: tuple[int, ...] = ()) -> float:
    """The lowest accuracy over the groups present (Waterbirds: the 4 label x place groups), leaving out `exclude`."""
    per_group = group_accuracies(y_pred == y_true, groups)
    kept = [acc for g, acc in per_group.items() if g not in exclude]
    return min(kept) if kept else float("nan")


def worst_region_accuracy(y_pred: torch.Tensor, y_true: torch.Tensor, regions: torch.Tensor,
                          region_names: list[str]) -> float:
    """FMoW's worst-region accuracy: the worst group over the regions present, 'Other' left out (as WILDS does)."""
    other = tuple(i for i, name in enumerate(region_names) if name == "Other")
    return worst_group_accuracy(y_pred, y_true, regions, exclude=other)


def dataset_metrics(y_pred: torch.Tensor, y_true: torch.Tensor, groups: torch.Tensor | None,
                    meta: dict[str, Any]) -> dict[str, float]:
    """The metrics a data set names in its meta (`metrics`: macro_f1, worst_region_accuracy), WILDS style."""
    out: dict[str, float] = {}
    wanted = meta.get("metrics", ())
    if "macro_f1" in wanted:
        out["macro_f1"] = macro_f1(y_pred, y_true)
    if "worst_region_accuracy" in wanted and groups is not None:
        out["worst_region_accuracy"] = worst_region_accuracy(y_pred, y_true, groups, list(meta.get("group_names", ())))
    return out


def true_prior(segment) -> torch.Tensor:
    """The segment's true class prior: the one its label shift recorded, else its label frequencies."""
    if "target_prior" in segment.meta:
        return torch.tensor(segment.meta["target_prior"], dtype=torch.float64)
    return segment.class_prior()


def true_domain_priors(segment) -> torch.Tensor | None:
    """The segment's true p_d(y) (K x D, float64) where its latent label shift recorded one, else None."""
    if "domain_priors" not in segment.meta:
        return None
    return torch.tensor(segment.meta["domain_priors"], dtype=torch.float64)


def prior_estimation_error(method_info: dict[str, Any], meta: dict[str, Any] | None,
                           source_prior: torch.Tensor) -> dict[str, float]:
    """L1 between true and estimated target prior, and mean_k (w*_k - w_k)^2 of the weights w = q / p.

    Only when the method reports `prior_estimate` and the scenario recorded `target_prior`
    (the realised label frequencies of a label shift). The weights' MSE is the measure of Lipton et al.
    2018 (BBSE) and Azizzadenesheli et al. 2019 (RLLS).
    """
    if not meta or "target_prior" not in meta or "prior_estimate" not in (method_info or {}):
        return {}
    q_true = torch.tensor(meta["target_prior"], dtype=torch.float64)
    q_est = torch.tensor(method_info["prior_estimate"], dtype=torch.float64)
    p = source_prior.double().clamp_min(1e-12)
    return {"prior_l1": (q_true - q_est).abs().sum().item(),
            "weight_mse": ((q_true / p - q_est / p) ** 2).mean().item()}


def domain_prior_error(method_info: dict[str, Any], meta: dict[str, Any] | None, logits: torch.Tensor,
                       labels: torch.Tensor) -> dict[str, float]:
    """Under latent label shift: the L1 error of the recovered p_d(y), summed over classes and averaged
    over domains (0..2), after relabelling the estimate's classes by the Hungarian matching of the
    predictions to the labels (the matching that `matched_accuracy` scores).

    Only when the method reports `domain_prior_estimate` (K x D) and the scenario recorded
    `domain_priors` (the realised p_d(y), K x D).
    """
    if not meta or "domain_priors" not in meta or "domain_prior_estimate" not in (method_info or {}):
        return {}
    truth = torch.tensor(meta["domain_priors"], dtype=torch.float64)
    estimate = torch.tensor(method_info["domain_prior_estimate"], dtype=torch.float64)
    if estimate.shape != truth.shape:
        raise ValueError(f"the method's domain_prior_estimate has shape {tuple(estimate.shape)}; the scenario's "
                         f"p_d(y) is {tuple(truth.shape)} (classes x domains)")
    k = truth.shape[0]
    mapping = best_matching(logits.argmax(1).cpu(), labels.cpu(), k)
    return {"domain_prior_l1": prior_error(estimate, truth, mapping) / truth.shape[1]}
