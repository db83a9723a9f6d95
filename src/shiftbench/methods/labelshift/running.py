"""The target prior estimated online, batch by batch, with MLLS (EM).

  momentum None   EM on every probability row seen since reset() (warm-started from the
                  last estimate): the estimate of a stationary stream, improving as it grows.
  momentum m      q <- (1 - m) q + m EM(batch, init q): an exponential moving average of
                  per-batch estimates, which follows a prior that drifts (label-correlated order).
"""

from __future__ import annotations

import torch

from .estimators import mlls_em


class RunningPrior:
    def __init__(self, source_prior: torch.Tensor, momentum: float | None = None, tol: float = 1e-6,
                 max_iter: int = 100):
        self.source_prior = source_prior.detach().to("cpu", torch.float64)
        self.momentum, self.tol, self.max_iter = momentum, tol, max_iter
        self.reset()

    def reset(self) -> None:
        self.estimate = self.source_prior / self.source_prior.sum()
        self.seen: list[torch.Tensor] = []

    def update(self, probs: torch.Tensor) -> torch.Tensor:
        """Add one batch of (calibrated) source posteriors; returns the new estimate."""
        probs = probs.detach().to("cpu", torch.float64)
        if self.momentum is None:
            self.seen.append(probs)
            self.estimate = mlls_em(torch.cat(self.seen), self.source_prior, self.estimate, self.tol, self.max_iter)
        else:
            batch = mlls_em(probs, self.source_prior, self.estimate, self.tol, self.max_iter)
            self.estimate = (1 - self.momentum) * self.estimate + self.momentum * batch
        return self.estimate
