"""BatchNorm with the source statistics mixed with the current input's, as MEMO runs BatchNorm networks.

mu = w mu_s + (1 - w) mu_x and var = w var_s + (1 - w) var_x, with w = N / (N + 1) for a prior
strength N (MEMO's reading of Schneider et al. 2020 with a test batch of one). The input's
statistics are measured as BatchNorm's running update measures them (unbiased variance) and
enter as constants: no gradient flows through them, as in MEMO's patched BatchNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PriorBatchNorm(nn.Module):
    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, source_weight: float):
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("the prior is the source running statistics, and this layer has none")
        self.bn, self.source_weight = bn, source_weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            dims = [0] + list(range(2, x.dim()))
            mean_x = x.mean(dim=dims)
            var_x = x.var(dim=dims, unbiased=x.numel() // x.shape[1] > 1)
            w = self.source_weight
            mean = w * self.bn.running_mean + (1 - w) * mean_x
            var = w * self.bn.running_var + (1 - w) * var_x
        return F.batch_norm(x, mean, var, self.bn.weight, self.bn.bias, training=False, eps=self.bn.eps)


def install_prior_bn(module: nn.Module, source_weight: float) -> None:
    """Replace every BatchNorm below module by a PriorBatchNorm around it."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, PriorBatchNorm(child, source_weight))
        else:
            install_prior_bn(child, source_weight)
