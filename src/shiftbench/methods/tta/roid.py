"""ROID (Marsden, Döbler, Yang: Universal Test-time Adaptation through Weight Ensembling, Diversity
Weighting, and Prior Correction, WACV 2024; code: the test-time-adaptation repository, mariodoebler).

BatchNorm on test-batch statistics; the norm layers' affine parameters are trained (Adam,
lr 1e-3, betas 0.9/0.999, one step per batch: the repository's CIFAR-10-C configuration).
Per batch of B images with logits z:
  1. weights (no gradient): diversity d_i = 1 - cos(p_ema, softmax(z_i)) and certainty
     c_i = -H(softmax(z_i)), each min-max normalised over the batch; w_i = exp(d_i c_i / T),
     T = `temperature` (1/3); images with d_i below the batch mean of d get w_i = 0 and leave
     the loss. p_ema <- m p_ema + (1 - m) mean_i softmax(z_i), m = `momentum_probs` (0.9),
     starting uniform.
  2. loss = sum_kept w_i SLR(z_i) / B (soft likelihood ratio, losses.py) plus, for the kept
     images, the consistency sum w_i SCE(z'_i, z_i) / B with z' the logits of one augmented copy
     of them (cotta_augment with reflection padding, no blur or noise); one optimiser step;
  3. weight ensembling: every trained parameter theta <- a theta + (1 - a) theta_source,
     a = `momentum_source` (0.99);
  4. prediction (from before the step): prior correction of z by the batch prior
     q = mean softmax(z), smoothed: s = max(1/B, 1/K) / max(q), q' = (q + s) / (1 + K s);
     the repository multiplies the logits themselves by q' (not the probabilities), and so do we.
`use_weighting`, `use_consistency`, `use_prior_correction` switch the parts off as the
repository's options do (with weighting off every image is kept with weight 1).

Departures: B is the batch's own size (the repository divides by the configured batch size,
which differs only on a final partial batch); a batch whose d or c are all equal normalises to 0
(the repository divides by zero there). Cost per image: two forward passes (one on the kept
half of the batch) and one backward pass.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from ...core.hashing import seed_from
from ..base import Method
from ..normalisation.norm_layers import adapt_norm_affine
from ..optimizers import OptimizerName, build_optimizer
from ..registry import register_method
from ..snapshot import Snapshot
from .cotta_augment import cotta_augment
from .losses import entropy, soft_likelihood_ratio, symmetric_cross_entropy


def min_max(x: torch.Tensor) -> torch.Tensor:
    """(x - min) / (max - min) over the batch; 0 where all values are equal."""
    return (x - x.min()) / (x.max() - x.min()).clamp_min(torch.finfo(x.dtype).tiny)


def prior_corrected(logits: torch.Tensor) -> torch.Tensor:
    """ROID's adaptive prior correction: the logits times the smoothed batch prior."""
    n, k = logits.shape
    prior = logits.softmax(1).mean(0)
    smooth = max(1 / n, 1 / k) / prior.max()
    return logits * ((prior + smooth) / (1 + smooth * k))


class ROIDBase(Method):
    """What ROID and CMF share: the weighted soft-likelihood-ratio and consistency step on the norm
    layers' affine parameters, and the prior-corrected prediction. Subclasses say how the trained
    parameters are merged back after each step (`merge`)."""

    def _init_shared(self, lr: float, optimizer: OptimizerName, momentum: float, steps: int, use_weighting: bool,
                   use_consistency: bool, use_prior_correction: bool, momentum_probs: float, temperature: float):
        self.lr, self.optimizer_name, self.momentum, self.steps = lr, optimizer, momentum, steps
        self.use_weighting, self.use_consistency = use_weighting, use_consistency
        self.use_prior_correction = use_prior_correction
        self.momentum_probs, self.temperature = momentum_probs, temperature

    def setup(self, model, source):
        super().setup(model, source)
        self.params = adapt_norm_affine(self.model)
        self.optimizer = build_optimizer(self.params, self.optimizer_name, self.lr, self.momentum)
        self.source_params = [p.detach().clone() for p in self.params]
        self.generator = torch.Generator().manual_seed(seed_from("roid_augment", source.seed))  # CMF draws the same views
        self.num_classes = source.num_classes
        self.initial = Snapshot(self.model, self.optimizer, self.generator)
        self.class_probs = None

    def reset(self):
        self.initial.restore()
        self.class_probs = None

    def predict(self, x):
        for _ in range(self.steps):
            logits = self._step(x)
            self.merge()
        return prior_corrected(logits) if self.use_prior_correction else logits

    def merge(self) -> None:
        raise NotImplementedError

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            logits = self.model(x)
            weights, keep = self._weights(logits.detach())
            loss = (soft_likelihood_ratio(logits) * weights)[keep].sum() / len(x)
            if self.use_consistency and keep.any():
                augmented = self.model(cotta_augment(x[keep], self.generator, padding="reflect", blur_and_noise=False))
                loss = loss + (symmetric_cross_entropy(augmented, logits[keep]) * weights[keep]).sum() / len(x)
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return logits.detach()

    def _weights(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_i, kept) for the batch, and the moving class-probability vector updated."""
        probs = logits.softmax(1)
        if not self.use_weighting:
            return torch.ones(len(logits), device=logits.device), torch.ones(len(logits), dtype=torch.bool,
                                                                               device=logits.device)
        if self.class_probs is None:
            self.class_probs = torch.full((self.num_classes,), 1 / self.num_classes, device=logits.device)
        diversity = min_max(1 - F.cosine_similarity(self.class_probs.unsqueeze(0), probs, dim=1))
        keep = ~(diversity < diversity.mean())
        certainty = min_max(-entropy(logits))
        weights = torch.exp(diversity * certainty / self.temperature) * keep
        self.class_probs = self.momentum_probs * self.class_probs + (1 - self.momentum_probs) * probs.mean(0)
        return weights, keep


@register_method("roid")
class ROID(ROIDBase):
    """Certainty- and diversity-weighted soft likelihood ratio + consistency, weight ensembling with the source, prior correction."""

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, optimizer: OptimizerName = "adam",
                 momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 use_weighting: bool = True, use_consistency: bool = True, use_prior_correction: bool = True,
                 momentum_source: Annotated[float, Field(ge=0, le=1)] = 0.99,
                 momentum_probs: Annotated[float, Field(ge=0, le=1)] = 0.9,
                 temperature: Annotated[float, Field(gt=0)] = 1 / 3):
        self._init_shared(lr, optimizer, momentum, steps, use_weighting, use_consistency, use_prior_correction,
                        momentum_probs, temperature)
        self.momentum_source = momentum_source

    @torch.no_grad()
    def merge(self):
        a = self.momentum_source
        if a < 1.0:
            for p, p0 in zip(self.params, self.source_params):
                p.copy_(a * p + (1 - a) * p0)
