"""MLLS (Saerens et al. 2002): maximum-likelihood target prior by EM; with BCTS, 'hard to beat' (Alexandari 2020)."""

from typing import Annotated

from pydantic import Field

from ..labelshift import RunningPrior
from ..registry import register_method
from .prior_correction import Calibration, PriorCorrection


@register_method("mlls")
class MLLS(PriorCorrection):
    """EM over every calibrated posterior seen since reset (warm-started), to max |dq| < tol or max_iter steps."""

    def __init__(self, calibration: Calibration = "bcts", tol: Annotated[float, Field(gt=0)] = 1e-6,
                 max_iter: Annotated[int, Field(ge=1, le=10_000)] = 100):
        super().__init__(calibration)
        self.tol, self.max_iter = tol, max_iter

    def reset(self):
        super().reset()
        self.running = RunningPrior(self.source_prior, None, self.tol, self.max_iter)

    def update(self, probs):
        return self.running.update(probs)
