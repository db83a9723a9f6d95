"""Metrics from (logits, labels, metadata), WILDS style: one function, a flat dict out.

Accuracies are fractions in [0, 1]; `error` is 1 - accuracy, stated so nobody has to guess.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

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
    return out


def true_prior(segment) -> torch.Tensor:
    """The segment's true class prior: the one its label shift recorded, else its label frequencies."""
    if "target_prior" in segment.meta:
        return torch.tensor(segment.meta["target_prior"], dtype=torch.float64)
    return segment.class_prior()


def prior_estimation_error(method_info: dict[str, Any], meta: dict[str, Any] | None,
                           source_prior: torch.Tensor) -> dict[str, float]:
    """L1 between true and estimated target prior, and mean_k (w*_k - w_k)^2 of the weights w = q / p.

    Only when the method reports `prior_estimate` and the scenario recorded `target_prior`
    (the realised label frequencies of a label shift, REFERENCE.md section 3).
    """
    if not meta or "target_prior" not in meta or "prior_estimate" not in (method_info or {}):
        return {}
    q_true = torch.tensor(meta["target_prior"], dtype=torch.float64)
    q_est = torch.tensor(method_info["prior_estimate"], dtype=torch.float64)
    p = source_prior.double().clamp_min(1e-12)
    return {"prior_l1": (q_true - q_est).abs().sum().item(),
            "weight_mse": ((q_true / p - q_est / p) ** 2).mean().item()}
