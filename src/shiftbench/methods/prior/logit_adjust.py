"""Logit adjustment with the plug-in prior estimate: q = mean calibrated posterior over the target seen so far."""

from ..registry import register_method
from .prior_correction import PriorCorrection, RunningMean


@register_method("logit_adjust")
class LogitAdjust(PriorCorrection):
    """z + log q - log p with q the average predicted distribution (one EM step from p; biased toward p)."""

    def reset(self):
        super().reset()
        self.mean = RunningMean(len(self.source_prior))

    def update(self, probs):
        q = self.mean.add(probs)
        return q / q.sum()
