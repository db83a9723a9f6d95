"""CMF (Lee, Chang: Continual Momentum Filtering on Parameter Space for Online Test-time Adaptation,
ICLR 2024; code: the test-time-adaptation repository, mariodoebler, from the authors' release).

ROID's loss and prediction (roid.py: weighted soft likelihood ratio, consistency, prior
correction; same defaults), with ROID's weight ensembling replaced by a Kalman-style filter on
the trained parameters. A hidden copy h of them starts at the source values theta_s, with
variance v = 0. After each optimiser step:
  1. predict: h <- alpha h + (1 - alpha) theta_s, v <- alpha^2 v + q;
  2. update: beta = (1 - q) / (v + 1 - q), raised to 0.89 when below it and set to 1 when at
     or above 0.9999; h <- beta h + (1 - beta) theta, v <- beta v;
  3. ensemble: theta <- gamma theta + (1 - gamma) h.
alpha = `alpha` 0.99, gamma = `gamma` 0.99, q = `q` (0.005) x n / 38400, n the number of
trained parameters (the repository scales q to the parameter count this way). The repository's
other filter type ("op") ensembles with the predicted h of step 1, but its code hands step 3 the
same tensor after step 2 has updated it, so both types compute the same thing; there is one here.

Departure: reset() also returns v to 0 (the repository keeps it across resets; its continual
protocol never resets). Cost per image: as ROID.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from ..optimizers import OptimizerName
from ..registry import register_method
from .roid import ROIDBase

BETA_FLOOR, BETA_ONE = 0.89, 0.9999
Q_PARAMETERS = 38400  # the parameter count at which q is used as given


@register_method("cmf")
class CMF(ROIDBase):
    """ROID's weighted self-training with a Kalman filter in parameter space pulling towards a hidden source-anchored model."""

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, optimizer: OptimizerName = "adam",
                 momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 use_weighting: bool = True, use_consistency: bool = True, use_prior_correction: bool = True,
                 momentum_probs: Annotated[float, Field(ge=0, le=1)] = 0.9,
                 temperature: Annotated[float, Field(gt=0)] = 1 / 3,
                 alpha: Annotated[float, Field(ge=0, le=1)] = 0.99, gamma: Annotated[float, Field(ge=0, le=1)] = 0.99,
                 q: Annotated[float, Field(ge=0, le=1e6)] = 0.005):
        self._init_shared(lr, optimizer, momentum, steps, use_weighting, use_consistency, use_prior_correction,
                        momentum_probs, temperature)
        self.alpha, self.gamma, self.q_base = alpha, gamma, q

    def setup(self, model, source):
        super().setup(model, source)
        self.q = self.q_base * sum(p.numel() for p in self.params) / Q_PARAMETERS
        if self.q >= 1:
            raise ValueError(f"cmf: q x (trained parameters / {Q_PARAMETERS}) = {self.q:.3g} must stay below 1")
        self._start_filter()

    def reset(self):
        super().reset()
        self._start_filter()

    def _start_filter(self) -> None:
        self.hidden = [p.clone() for p in self.source_params]
        self.variance = 0.0

    @torch.no_grad()
    def merge(self):
        for h, p0 in zip(self.hidden, self.source_params):
            h.copy_(self.alpha * h + (1 - self.alpha) * p0)
        self.variance = self.alpha ** 2 * self.variance + self.q
        r = 1 - self.q
        beta = r / (self.variance + r)
        beta = beta if beta > BETA_FLOOR else BETA_FLOOR
        beta = beta if beta < BETA_ONE else 1.0
        self.variance = beta * self.variance
        for h, p in zip(self.hidden, self.params):
            h.copy_(beta * h + (1 - beta) * p)
            p.copy_(self.gamma * p + (1 - self.gamma) * h)

    def describe(self):
        return {"filter_variance": self.variance}
