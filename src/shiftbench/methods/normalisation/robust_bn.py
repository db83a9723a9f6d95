"""RoTTA's robust batch normalisation (Yuan, Xie, Li: Robust Test-Time Adaptation in Dynamic Scenarios, CVPR 2023).

Global statistics that start at the source running statistics. In training mode a forward
pass moves them by an exponential moving average towards the batch's statistics,
mu <- (1 - alpha) mu + alpha mu_batch (variance likewise, biased), and normalises with the
moved values (gradients flow through the batch part); in eval mode it normalises with the
stored values and changes nothing. alpha = 0.05 in the paper.
"""

from __future__ import annotations

import torch
from torch import nn


class RobustBatchNorm(nn.Module):
    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, alpha: float):
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("robust BN starts from the source running statistics, and this layer has none")
        self.alpha, self.eps = alpha, bn.eps
        self.register_buffer("mean", bn.running_mean.detach().clone())
        self.register_buffer("var", bn.running_var.detach().clone())
        self.weight, self.bias = bn.weight, bn.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0] + list(range(2, x.dim()))
        if self.training:
            var_b, mean_b = torch.var_mean(x, dim=dims, unbiased=False)
            mean = (1 - self.alpha) * self.mean + self.alpha * mean_b
            var = (1 - self.alpha) * self.var + self.alpha * var_b
            self.mean.copy_(mean.detach())
            self.var.copy_(var.detach())
        else:
            mean, var = self.mean, self.var
        shape = [1, -1] + [1] * (x.dim() - 2)
        x = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.weight is not None:
            x = x * self.weight.view(shape) + self.bias.view(shape)
        return x


def install_robust_bn(module: nn.Module, alpha: float) -> None:
    """Replace every BatchNorm below module by a RobustBatchNorm sharing its affine parameters."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, RobustBatchNorm(child, alpha))
        else:
            install_robust_bn(child, alpha)
