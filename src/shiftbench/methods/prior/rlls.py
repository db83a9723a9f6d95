"""RLLS (Azizzadenesheli et al. 2019): regularised, constrained BBSE that shrinks w toward 1."""

import math
from typing import Annotated

from pydantic import Field

from ..labelshift import rlls_prior
from ..registry import register_method
from .bbse import BBSE, prediction_rows
from .prior_correction import Calibration


@register_method("rlls")
class RLLS(BBSE):
    """theta = argmin ||C theta - b|| + D ||theta||, theta >= -1, with D = regularization * sqrt(K / n_target).

    D shrinks with the number of target samples seen, as the paper's Delta_C = O(1/sqrt(n)) does;
    `regularization` is the constant in front.
    """

    def __init__(self, calibration: Calibration = "bcts", soft: bool = False,
                 regularization: Annotated[float, Field(ge=0)] = 0.01):
        super().__init__(calibration, soft)
        self.regularization = regularization

    def update(self, probs):
        mu = self.mu.add(prediction_rows(probs, self.soft))
        d = self.regularization * math.sqrt(len(mu) / self.mu.count)
        return rlls_prior(self.confusion, mu, d, init=self.estimate)
