"""EATA (Niu et al.: Efficient Test-Time Model Adaptation without Forgetting, ICML 2022; official code mr-eggplant/EATA).

Entropy minimisation on the norm layers' affine parameters (BatchNorm on batch statistics),
one optimiser step per batch on the samples that pass two filters:
  reliable:      entropy H(x) < E0, E0 = `entropy_margin` * ln K (0.4 ln K);
  non-redundant: |cos(m, p(x))| < `redundancy_margin` (0.05), m the moving average
                 (0.9 / 0.1) of the mean softmax of earlier batches' selected samples (no
                 test before the first batch with a selection);
each selected sample weighted by 1 / exp(H(x) - E0), plus the anti-forgetting term
`fisher_alpha` * sum_i F_i (theta_i - theta0_i)^2 (2000), F the diagonal Fisher of the source
model on `fisher_samples` (2000) source-training images with its own argmax labels: squared
gradients of the cross-entropy, summed over batches of 64 and divided by the number of
batches, as the official code does. No step when nothing is selected.
Optimiser: SGD, lr 2.5e-4, momentum 0.9, the official (ImageNet) setting, as is the 0.05
redundancy margin, which for 10 classes lets almost no sample through after the first batch
(probability vectors of 10 classes are rarely near-orthogonal to their mean); the reference
collection mariodoebler/test-time-adaptation runs CIFAR with 0.4 and fisher_alpha 1.
`reweight=False` drops the weights (with both filters off and fisher_alpha 0, EATA is tent).
Cost per image: one forward and one backward pass (plus the Fisher once per source model).
"""

from __future__ import annotations

import copy
import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from ...core.hashing import seed_from
from ...core.imageset import ImageSet, centre_crop
from ...models.forward import batches, to_float
from ..base import Method, SourceContext
from ..normalisation.norm_layers import adapt_norm_affine
from ..optimizers import OptimizerName, build_optimizer
from ..registry import register_method
from ..snapshot import Snapshot
from .losses import entropy

PROBS_MOMENTUM = 0.9  # of the moving-average probability vector, as in the official code


def fisher_diagonal(source: SourceContext, skip_last: float, samples: int, batch_size: int) -> list[torch.Tensor]:
    """EATA's Fisher of the adapted parameters on `samples` seeded source-training images (on source.device)."""
    if source.train is None:
        raise RuntimeError("eata's Fisher regulariser needs the source training split (SourceContext.train)")
    model = copy.deepcopy(source.model).to(source.device).eval()
    params = adapt_norm_affine(model, skip_last)
    train: ImageSet = source.train
    g = torch.Generator().manual_seed(seed_from("eata_fisher", source.seed))
    rows = torch.randperm(len(train), generator=g)[:samples]
    images = centre_crop(train.images[rows], train.window)
    fisher = [torch.zeros_like(p) for p in params]
    n_batches = 0
    for s in batches(len(rows), batch_size):
        logits = model(to_float(images[s].to(source.device)))
        F.cross_entropy(logits, logits.argmax(1)).backward()
        for f, p in zip(fisher, params):
            f += p.grad.detach() ** 2
            p.grad = None
        n_batches += 1
    return [f / max(n_batches, 1) for f in fisher]


@register_method("eata")
class EATA(Method):
    """Entropy minimisation on reliable, non-redundant samples, weighted, with a Fisher anti-forgetting term."""

    wrappable = True

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 2.5e-4, optimizer: OptimizerName = "sgd",
                 momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 entropy_margin: Annotated[float, Field(gt=0)] | None = 0.4,
                 redundancy_margin: Annotated[float, Field(ge=0)] | None = 0.05,
                 fisher_alpha: Annotated[float, Field(ge=0)] = 2000.0,
                 fisher_samples: Annotated[int, Field(ge=1, le=100_000)] = 2000,
                 fisher_batch_size: Annotated[int, Field(ge=1, le=4096)] = 64, reweight: bool = True,
                 skip_last_norm: Annotated[float, Field(ge=0, lt=1)] = 0.0):
        self.lr, self.optimizer_name, self.momentum, self.steps = lr, optimizer, momentum, steps
        self.entropy_margin, self.redundancy_margin = entropy_margin, redundancy_margin
        self.fisher_alpha, self.fisher_samples, self.fisher_batch_size = fisher_alpha, fisher_samples, fisher_batch_size
        self.reweight, self.skip_last_norm = reweight, skip_last_norm

    def setup(self, model, source):
        super().setup(model, source)
        self.params = adapt_norm_affine(self.model, self.skip_last_norm)
        self.optimizer = build_optimizer(self.params, self.optimizer_name, self.lr, self.momentum)
        # E0 also sets the weights; with the entropy filter off they use E0 = ln K, the largest entropy
        self.e0 = (self.entropy_margin if self.entropy_margin is not None else 1.0) * math.log(source.num_classes)
        self.anchor = [p.detach().clone() for p in self.params]
        self.fisher = None
        if self.fisher_alpha > 0:
            key = ("eata_fisher", self.skip_last_norm, self.fisher_samples, self.fisher_batch_size)
            fisher = source.remember(key, lambda: fisher_diagonal(source, self.skip_last_norm, self.fisher_samples,
                                                                  self.fisher_batch_size))
            if len(fisher) != len(self.params):
                raise RuntimeError("eata: the Fisher was computed for a different set of norm layers")
            self.fisher = [f.to(p.device) for f, p in zip(fisher, self.params)]
        self.initial = Snapshot(self.model, self.optimizer)
        self.mean_probs = None
        self.seen = self.updated_on = 0  # diagnostics for the cell record, over the whole stream

    def reset(self):
        self.initial.restore()
        self.mean_probs = None

    def predict(self, x):
        for _ in range(self.steps):
            logits = self._step(x)
        return logits

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            logits = self.model(x)
            ent = entropy(logits)
            keep = torch.ones_like(ent, dtype=torch.bool)
            if self.entropy_margin is not None:
                keep &= ent < self.e0
            probs = logits.detach().softmax(1)
            if self.redundancy_margin is not None and self.mean_probs is not None:
                cos = F.cosine_similarity(self.mean_probs.unsqueeze(0), probs, dim=1)
                keep &= cos.abs() < self.redundancy_margin
            self._update_mean_probs(probs[keep])
            selected = ent[keep]
            self.seen += len(ent)
            self.updated_on += len(selected)
            if self.reweight:
                selected = selected * (1 / torch.exp(selected.detach() - self.e0))
            if selected.numel():
                loss = selected.mean(0)
                if self.fisher is not None:
                    loss = loss + sum(self.fisher_alpha * (f * (p - p0) ** 2).sum()
                                      for f, p, p0 in zip(self.fisher, self.params, self.anchor))
                loss.backward()
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return logits.detach()

    def describe(self):
        return {"samples_seen": self.seen, "samples_in_updates": self.updated_on}

    def _update_mean_probs(self, probs: torch.Tensor) -> None:
        if not len(probs):
            return
        if self.mean_probs is None:
            self.mean_probs = probs.mean(0)
        else:
            self.mean_probs = PROBS_MOMENTUM * self.mean_probs + (1 - PROBS_MOMENTUM) * probs.mean(0)
