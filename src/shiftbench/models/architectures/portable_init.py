"""torch's default initialisation of Conv and Linear layers, drawn so that every CPU gets the same bits.

torch draws U(-b, b) as u * (b - -b) + -b, which the AVX2 and AVX512 kernels fuse into one
multiply-add and the generic kernels do not: about half the weights then differ in their last
bit between machines, and training amplifies that into different models. Drawing U(0, 1) (exact:
24 random bits times 2**-24) and mapping it with separate, correctly rounded operations gives the
same distribution, b = 1 / sqrt(fan_in) for weights and biases alike (kaiming_uniform with
a = sqrt(5), torch's default), and the same bits on every CPU.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def portable_uniform_(tensor: torch.Tensor, bound: float) -> torch.Tensor:
    with torch.no_grad():
        return tensor.uniform_(0.0, 1.0).mul_(2.0).sub_(1.0).mul_(bound)


def portable_default_init(module: nn.Module) -> nn.Module:
    """Re-draw every Conv and Linear layer's weight and bias as torch's reset_parameters would, in module order."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            bound = 1.0 / math.sqrt(m.weight[0].numel())
            portable_uniform_(m.weight, bound)
            if m.bias is not None:
                portable_uniform_(m.bias, bound)
    return module
