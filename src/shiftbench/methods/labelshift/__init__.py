"""Label-shift estimation and correction on logits (BBSE, RLLS, MLLS; calibration; the Bayes correction).

Pure functions and small classes on tensors of logits or probabilities (adjust,
calibration, estimators, running). The methods in `shiftbench.methods.prior` build on
them (the label shift adapter's network and its training live there, beside LSA);
nothing here is a registered method.
"""

from .adjust import adjust_logits
from .calibration import CALIBRATIONS, Calibrator, fit_calibrator
from .estimators import bbse_prior, bbse_weights, confusion_matrix, mlls_em, predicted_distribution
from .estimators import rlls_prior, rlls_weights
from .running import RunningPrior

__all__ = ["CALIBRATIONS", "Calibrator", "RunningPrior", "adjust_logits", "bbse_prior", "bbse_weights", "confusion_matrix",
           "fit_calibrator", "mlls_em", "predicted_distribution", "rlls_prior", "rlls_weights"]
