"""LAME (Boudiaf, Mueller, Ben Ayed, Bertinetto: Parameter-free Online Test-time Adaptation, CVPR 2022;
official code fiveai/LAME).

No parameter changes: the frozen source model (its own BatchNorm statistics) gives each image
of the batch its class probabilities p_i and features f_i (the head's input, L2-normalised).
LAME then finds assignments Y minimising the Laplacian-regularised objective
  sum_i KL(y_i || p_i) - sum_ij w_ij y_i . y_j
by the bound optimisation of the paper: Y <- softmax(log(p + 1e-10) + W Y), from Y = p, at most
`max_steps` (100) times, stopping when the objective changes by at most 1e-8 of its value.
The output is the logits of the final Y (the softmax argument), so softmax gives Y exactly.

Affinity W: "knn" (default) w_ij = 1 when j is one of the `knn` (5) nearest neighbours of i
(not symmetrised, as in the official code); "rbf" exp(-|f_i - f_j|^2 / (2 sigma^2)) with sigma
the batch mean of the distance to the knn-th nearest point counting the point itself (the
official default; its `sigma` setting is never read); "linear" f_i . f_j. We default to kNN:
on the ResNet-20's 64-d features the RBF matrix is dense (median weight 0.2, so each image's
200 weights in a batch add up to tens), the pairwise term outweighs the unary one and each
batch collapses to one or two classes. knn = 0 gives W = 0, and LAME returns the source
model's probabilities (the law test).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from ..base import Method
from ..registry import register_method


def affinity(features: torch.Tensor, kind: str, knn: int) -> torch.Tensor:
    n = features.shape[0]
    if kind == "linear":
        return features @ features.t()
    dist = torch.norm(features.unsqueeze(0) - features.unsqueeze(1), dim=-1, p=2)
    if kind == "rbf":
        kth = dist.topk(k=min(max(knn, 1), n), dim=-1, largest=False).values[:, -1]
        sigma = kth.mean()
        return torch.exp(-dist**2 / (2 * sigma**2))
    neighbours = dist.topk(min(knn + 1, n), dim=-1, largest=False).indices[:, 1:]
    return torch.zeros(n, n, device=features.device, dtype=features.dtype).scatter_(-1, neighbours, 1.0)


def laplacian_optimization(unary: torch.Tensor, kernel: torch.Tensor, max_steps: int) -> torch.Tensor:
    """The logits of the assignments (softmax of the result = Y)."""
    exponent = -unary
    y = exponent.softmax(-1)
    old = float("inf")
    for i in range(max_steps):
        pairwise = kernel.matmul(y)
        exponent = -unary + pairwise
        y = exponent.softmax(-1)
        energy = (unary * y - pairwise * y + y * torch.log(y.clip(1e-20))).sum().item()
        if i > 1 and abs(energy - old) <= 1e-8 * abs(old):
            break
        old = energy
    return exponent


@register_method("lame")
class LAME(Method):
    """Laplacian-regularised adjustment of the source model's batch of predictions over its feature kNN graph."""

    wrappable = True

    def __init__(self, affinity: Literal["knn", "rbf", "linear"] = "knn", knn: Annotated[int, Field(ge=0, le=1000)] = 5,
                 force_symmetry: bool = False, max_steps: Annotated[int, Field(ge=1, le=1000)] = 100):
        self.affinity, self.knn, self.force_symmetry, self.max_steps = affinity, knn, force_symmetry, max_steps

    def setup(self, model, source):
        super().setup(model, source)
        if not hasattr(self.model, "features_and_logits"):
            raise RuntimeError("lame needs a model with a declared features/classifier split (a shiftbench Classifier)")

    @torch.no_grad()
    def predict(self, x):
        features, logits = self.model.features_and_logits(x)
        unary = -torch.log(logits.softmax(1) + 1e-10)
        kernel = affinity(F.normalize(features, p=2, dim=-1), self.affinity, self.knn)
        if self.force_symmetry:
            kernel = (kernel + kernel.t()) / 2
        return laplacian_optimization(unary, kernel, self.max_steps)
