"""UnMix-TNS (Tomar, Vray, Frossard, Thiran: Un-Mixing Test-Time Normalization Statistics, ICLR 2024;
official code devavratTomar/unmixtns), used on its own on the source model.

Chosen over NOTE for the robust normalisation of non-i.i.d. (label-correlated) streams: NOTE's
instance-aware BN is part of the source model's training (its released models are trained with
it), while UnMix-TNS replaces the BatchNorm layers of any trained network at test time.

Each BatchNorm2d becomes K (16) statistics components, initialised around the source running
statistics: mean_k = mu_s + sqrt(a K / (K - 1)) sigma_s eps_k (eps ~ N(0, 1)), var_k = (1 - a)
sigma_s^2, a = `init_spread` 0.5 (K = 1: the source statistics). For a batch, each image's
instance statistics (mean and biased variance over its pixels, per channel) get soft
assignments q_ik = softmax_k(cos(mean_i, mean_k) / 0.07); each component's statistics are
mixed with the image's in proportion q_ik, and the image is normalised with the mixture of
the K mixed components (mean of means; mean of variances plus the variance of the means).
Then every component moves towards the batch: mean_k += m * mean_i q_ik (mean_i - mean_k),
likewise var_k, with m = 1 - (1 - momentum_BN)^(B / 64) for a batch of B (the official
correction of the BN momentum, 0.1, to the batch size). No gradient step. BatchNorm1d layers
keep the source statistics, as in the official code.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...core.hashing import seed_from
from ..base import Method
from ..registry import register_method

TEMPERATURE = 0.07
DEFAULT_BN_MOMENTUM = 0.1  # for a BatchNorm with momentum None (cumulative averaging)


class UnMixTNSNorm(nn.Module):
    def __init__(self, bn: nn.BatchNorm2d, components: int, init_spread: float, reference_batch: int,
                 generator: torch.Generator):
        super().__init__()
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("UnMix-TNS starts from the source running statistics, and this layer has none")
        mu, var = bn.running_mean.detach(), bn.running_var.detach()
        a = init_spread if components > 1 else 0.0
        noise = torch.randn((components, mu.numel()), generator=generator).to(mu)
        spread = math.sqrt(a * components / (components - 1)) if components > 1 else 0.0
        self.register_buffer("means", mu.repeat(components, 1) + spread * var.sqrt() * noise)
        self.register_buffer("vars", (1 - a) * var.repeat(components, 1))
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps
        self.bn_momentum = DEFAULT_BN_MOMENTUM if bn.momentum is None else bn.momentum
        self.reference_batch = reference_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inst_mean = x.mean(dim=[2, 3])  # (B, C)
        inst_var = x.var(dim=[2, 3], unbiased=False)
        with torch.no_grad():
            sim = F.normalize(inst_mean, dim=1) @ F.normalize(self.means, dim=1).t()  # (B, K)
            q = torch.softmax(sim / TEMPERATURE, dim=1).unsqueeze(-1)
        mean_mix = (1 - q) * self.means.unsqueeze(0) + q * inst_mean.unsqueeze(1)  # (B, K, C)
        var_mix = (1 - q) * self.vars.unsqueeze(0) + q * inst_var.unsqueeze(1)
        mean = mean_mix.mean(dim=1)
        var = var_mix.mean(dim=1) + (mean_mix**2).mean(dim=1) - mean**2
        with torch.no_grad():
            m = 1 - (1 - self.bn_momentum) ** (x.shape[0] / self.reference_batch)
            self.means += m * (q * (inst_mean.unsqueeze(1) - self.means.unsqueeze(0))).mean(dim=0)
            self.vars += m * (q * (inst_var.unsqueeze(1) - self.vars.unsqueeze(0))).mean(dim=0)
        b, c = mean.shape
        x = (x - mean.view(b, c, 1, 1)) / torch.sqrt(var.view(b, c, 1, 1) + self.eps)
        if self.weight is not None:
            x = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return x


class SourceStatsNorm1d(nn.Module):
    """BatchNorm1d with the source statistics, whatever the mode (the official UnMixTNS1d)."""

    def __init__(self, bn: nn.BatchNorm1d):
        super().__init__()
        self.bn = bn

    def forward(self, x):
        return F.batch_norm(x, self.bn.running_mean, self.bn.running_var, self.bn.weight, self.bn.bias, False, 0.0,
                            self.bn.eps)


def install_unmix_tns(module: nn.Module, components: int, init_spread: float, reference_batch: int,
                      generator: torch.Generator) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, UnMixTNSNorm(child, components, init_spread, reference_batch, generator))
        elif isinstance(child, nn.BatchNorm1d):
            setattr(module, name, SourceStatsNorm1d(child))
        else:
            install_unmix_tns(child, components, init_spread, reference_batch, generator)


@register_method("unmix_tns")
class UnMixTNS(Method):
    """BatchNorm replaced by K running statistics components that each image is softly assigned to (non-i.i.d. streams)."""

    wrappable = True
    requires = ("batchnorm",)  # changes BatchNorm layers only
    swaps_norm_layers = True

    def __init__(self, components: Annotated[int, Field(ge=1, le=1024)] = 16,
                 init_spread: Annotated[float, Field(ge=0, lt=1)] = 0.5,
                 reference_batch: Annotated[int, Field(ge=1, le=100_000)] = 64):
        self.components, self.init_spread, self.reference_batch = components, init_spread, reference_batch

    def setup(self, model, source):
        super().setup(model, source)
        generator = torch.Generator().manual_seed(seed_from("unmix_tns", source.seed))
        install_unmix_tns(self.model, self.components, self.init_spread, self.reference_batch, generator)
        self.model.eval()
        self._initial = copy.deepcopy(self.model.state_dict())

    def reset(self):
        self.model.load_state_dict(self._initial)

    @torch.no_grad()
    def predict(self, x):
        return self.model(x)
