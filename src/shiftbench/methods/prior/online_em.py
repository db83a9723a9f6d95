"""Online MLLS on top of a test-time adaptation method: the base adapts the features, EM the class prior."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field

from ..base import Method
from ..labelshift import RunningPrior, adjust_logits
from ..registry import create_method, register_method
from .prior_correction import Calibration


@register_method("online_em")
class OnlineEM(Method):
    """Per batch: logits z from the base method (which adapts as usual), calibrated, then EM updates the running
    target prior q and the prediction is z + log q - log p.

    momentum None: EM over every posterior since reset (stationary streams); momentum m in (0, 1]:
    q <- (1 - m) q + m EM(batch), which follows a drifting prior (label-correlated order).
    prior_from: which posteriors EM reads. 'source' (default): the frozen source model's (one extra
    forward pass); their only error is the covariate shift. 'base': the adapted model's, which under
    label shift carry the bias of class-skewed batch statistics (bn_adapt, tent).
    The calibrator is fitted on the *source model's* held-out logits; applied to an adapted
    base's logits it is an approximation (bn_adapt and tent keep the logit scale roughly).
    With base=source and momentum None this equals the logit-only `mlls` method.
    """

    wraps_base = True

    def __init__(self, base: str = "bn_adapt", base_params: dict[str, Any] | None = None,
                 calibration: Calibration = "bcts", momentum: Annotated[float, Field(gt=0, le=1)] | None = None,
                 prior_from: Literal["source", "base"] = "source"):
        self.base_name, self.base_params = base, dict(base_params or {})
        self.prior_from = prior_from
        self.calibration, self.momentum = calibration, momentum

    def setup(self, model, source):
        super().setup(model, source)
        self.base = create_method(self.base_name, self.base_params)
        self.base.setup(model, source)
        self.calibrator = source.calibrator(self.calibration)
        self.source_prior = source.prior.double().cpu()
        self.running = RunningPrior(self.source_prior, self.momentum)

    def reset(self):
        self.base.reset()
        self.running.reset()

    def predict(self, x):
        z = self.calibrator(self.base.predict(x).detach().double())
        if self.prior_from == "source":
            with torch.no_grad():
                posteriors = self.calibrator(self.source.model(x).double()).softmax(1)
        else:
            posteriors = z.softmax(1)
        q = self.running.update(posteriors.cpu())
        return adjust_logits(z, q, self.source_prior).float()

    def describe(self):
        return {"prior_estimate": self.running.estimate.tolist(), "base": self.base_name, **self.base.describe()}
