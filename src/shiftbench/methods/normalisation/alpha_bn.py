"""alpha-BN (You, Li, Zhao 2021): normalise with a mix of source and test-batch BN statistics."""

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..base import Method
from ..registry import register_method


class MixedStatsBatchNorm(nn.Module):
    """BatchNorm whose statistics are (1-alpha) * source + alpha * current batch, for mean and variance.

    With mixture_variance the variance also gets alpha(1-alpha)(mu_s - mu_t)^2, the
    variance of the two-component mixture (some implementations add it; off by default, as in You et al.).
    """

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, alpha: float, mixture_variance: bool):
        super().__init__()
        self.bn, self.alpha, self.mixture_variance = bn, alpha, mixture_variance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0] + list(range(2, x.dim()))
        mu_t = x.mean(dim=dims)
        var_t = x.var(dim=dims, unbiased=False)
        a = self.alpha
        mu_s, var_s = self.bn.running_mean, self.bn.running_var
        mu = (1 - a) * mu_s + a * mu_t
        var = (1 - a) * var_s + a * var_t
        if self.mixture_variance:
            var = var + a * (1 - a) * (mu_s - mu_t) ** 2
        return F.batch_norm(x, mu, var, self.bn.weight, self.bn.bias, training=False, eps=self.bn.eps)


def mix_batchnorm(module: nn.Module, alpha: float, mixture_variance: bool) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, MixedStatsBatchNorm(child, alpha, mixture_variance))
        else:
            mix_batchnorm(child, alpha, mixture_variance)


@register_method("alpha_bn")
class AlphaBN(Method):
    """mu = (1-alpha) mu_s + alpha mu_t, var likewise; alpha = weight of the test batch."""

    wrappable = True
    requires = ("batchnorm",)  # changes BatchNorm layers only
    swaps_norm_layers = True

    def __init__(self, alpha: Annotated[float, Field(ge=0, le=1)] = 0.1, mixture_variance: bool = False):
        self.alpha = alpha
        self.mixture_variance = mixture_variance

    def setup(self, model, source):
        super().setup(model, source)
        mix_batchnorm(self.model, self.alpha, self.mixture_variance)
        self.model.eval()

    @torch.no_grad()
    def predict(self, x):
        return self.model(x)
