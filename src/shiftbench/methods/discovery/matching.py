"""Scoring discovered classes: match clusters to classes one-to-one (Hungarian), then accuracy and prior error.

A clustering is right up to a relabelling, so its accuracy is the best over one-to-one maps of
the K cluster ids onto the K classes: the assignment that maximises the matched count of the
cluster-by-class contingency table (linear_sum_assignment, as the DDFA authors' code scores
it). The error of an estimated p_d(y) is then sum_{y,d} |p_hat_d(pi^-1(y)) - p_d(y)|, the L1
distance of the K x D matrices after the same relabelling (the authors' reconstruction error).
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.lazy import LazyModule

optimize = LazyModule("scipy.optimize")  # imported on first use: every evaluator import would pay for it


def contingency(clusters: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """k x k counts: row = cluster id, column = true class."""
    return torch.bincount(clusters.long() * k + labels.long(), minlength=k * k).view(k, k)


def best_matching(clusters: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """mapping[c] = the class cluster c is matched to (a permutation of 0..k-1) maximising the matches."""
    rows, cols = optimize.linear_sum_assignment(contingency(clusters, labels, k).numpy(), maximize=True)
    mapping = np.empty(k, dtype=np.int64)
    mapping[rows] = cols
    return torch.from_numpy(mapping)


def matched_accuracy(clusters: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    mapping = best_matching(clusters, labels, k)
    return (mapping[clusters.long()] == labels).double().mean().item()


def prior_error(estimate: torch.Tensor, truth: torch.Tensor, mapping: torch.Tensor) -> float:
    """L1 distance between K x D matrices p(y|d) after relabelling the estimate's rows by `mapping`."""
    relabelled = torch.empty_like(estimate)
    relabelled[mapping] = estimate
    return (relabelled.double() - truth.double()).abs().sum().item()
