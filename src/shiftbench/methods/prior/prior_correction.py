"""Shared shape of the post-hoc label-shift corrections (logit_adjust, bbse, rlls, mlls, oracle_prior).

Each one is logit-only: the evaluator runs the source model once per scenario and
hands every such method the same logits. Per batch a correction
  1. calibrates the logits with a calibrator fitted by NLL on held-out source logits
     (`calibration`: none | ts | bcts | vs, Alexandari et al. 2020; labelshift/calibration.py),
  2. updates its estimate q of the target prior,
  3. returns z + log q - log p (the Bayes correction; p = source training prior).

The prior is estimated from every batch seen since the last reset(), so the protocol
decides the window: episodic = each batch alone, per_scenario = the scenario so far,
continual = the whole stream so far. Predictions for a batch use the estimate that
includes that batch; nothing from later batches is ever used.
"""

from __future__ import annotations

from typing import Any, Literal

import torch

from ..base import Method
from ..labelshift import adjust_logits

Calibration = Literal["none", "ts", "bcts", "vs"]


class PriorCorrection(Method):
    logit_only = True

    def __init__(self, calibration: Calibration = "bcts"):
        self.calibration = calibration

    def setup(self, model, source):
        super().setup(model, source)
        val_logits, val_labels = source.val_logits_and_labels()
        self.calibrator = source.calibrator(self.calibration)
        self.val_probs = self.calibrator(val_logits.double()).softmax(1)
        self.val_labels = val_labels
        self.source_prior = source.prior.double().cpu()
        self.prepare()
        self.reset()

    def prepare(self) -> None:
        """Work done once per cell from the held-out source predictions (e.g. a confusion matrix)."""

    def reset(self):
        self.estimate = self.source_prior.clone()
        self.batches = 0

    def update(self, probs: torch.Tensor) -> torch.Tensor:
        """Take one batch of calibrated probabilities (float64, CPU); return the new prior estimate."""
        raise NotImplementedError

    def adapt_logits(self, logits):
        z = self.calibrator(logits.double())
        self.estimate = self.update(z.softmax(1).cpu())
        self.batches += 1
        return adjust_logits(z, self.estimate, self.source_prior).to(logits.dtype)

    def describe(self) -> dict[str, Any]:
        return {"prior_estimate": self.estimate.tolist(), "calibration": self.calibration,
                "calibrator": {"scale": self.calibrator.scale.tolist(), "bias": self.calibrator.bias.tolist()}}


class RunningMean:
    """Mean of the rows seen since reset, kept as a sum and a count."""

    def __init__(self, k: int):
        self.total = torch.zeros(k, dtype=torch.float64)
        self.count = 0

    def add(self, rows: torch.Tensor) -> torch.Tensor:
        self.total += rows.sum(0)
        self.count += len(rows)
        return self.total / max(self.count, 1)
