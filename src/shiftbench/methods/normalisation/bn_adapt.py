"""BN-adapt (test-time normalisation): normalise with the current test batch's statistics."""

import torch
from torch import nn

from ..base import Method
from ..registry import register_method


def use_batch_statistics(model: nn.Module) -> None:
    """Put every BatchNorm in training mode with running statistics off, so it normalises with the batch."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None


@register_method("bn_adapt")
class BNAdapt(Method):
    """Replace source BN running statistics by those of each test batch (Schneider et al. 2020, N = 0)."""

    wrappable = True
    requires = ("batchnorm",)  # changes BatchNorm layers only

    def __init__(self):
        pass

    def setup(self, model, source):
        super().setup(model, source)
        self.model.eval()
        use_batch_statistics(self.model)

    @torch.no_grad()
    def predict(self, x):
        return self.model(x)
