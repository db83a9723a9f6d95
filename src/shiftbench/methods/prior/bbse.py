"""BBSE (Lipton et al. 2018): black-box shift estimation by inverting the source confusion matrix."""

import torch

from ..labelshift import bbse_prior, confusion_matrix
from ..registry import register_method
from .prior_correction import Calibration, PriorCorrection, RunningMean


def prediction_rows(probs: torch.Tensor, soft: bool) -> torch.Tensor:
    """What BBSE averages over the target: p(.|x) (soft) or the one-hot argmax (hard)."""
    return probs if soft else torch.nn.functional.one_hot(probs.argmax(1), probs.shape[1]).double()


@register_method("bbse")
class BBSE(PriorCorrection):
    """q = (C^-1 mu) * p; hard uses argmax predictions, soft uses probabilities, for C and mu alike."""

    def __init__(self, calibration: Calibration = "bcts", soft: bool = False):
        super().__init__(calibration)
        self.soft = soft

    def prepare(self):
        self.confusion = confusion_matrix(self.val_probs, self.val_labels, soft=self.soft)

    def reset(self):
        super().reset()
        self.mu = RunningMean(len(self.source_prior))

    def update(self, probs):
        return bbse_prior(self.confusion, self.mu.add(prediction_rows(probs, self.soft)))
