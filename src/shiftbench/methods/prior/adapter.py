"""The label shift adapter network: a class prior in, deltas for a few source-model parameters out.

Park et al. (ICCV 2023) describe the idea without public code; these are our choices:

* Targets: the affine parameters (weight, bias) of the last `bn_layers` BatchNorm layers and
  the bias of the last Linear layer (the classifier), as additive deltas. Everything else in
  the source model stays frozen. The layers are wrapped (DeltaBatchNorm, DeltaLinear) so the
  original modules and parameters remain in place: bn_adapt and tent still find and adapt them.
* Input: u = log(q + eps) - log(p + eps), eps = 1e-3 (p the source prior), so sharp priors stay finite.
* Network: Linear(K, hidden) - ReLU - Linear(hidden, hidden) - ReLU - Linear(hidden, #deltas);
  its output is g(u) - g(0), so at the source prior (u = 0) every delta is exactly 0 and the
  adapted model *is* the source model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PRIOR_EPS = 1e-3


class DeltaBatchNorm(nn.Module):
    """A BatchNorm whose affine parameters get additive deltas (None: the plain layer)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.bn = bn
        self.delta_weight: torch.Tensor | None = None
        self.delta_bias: torch.Tensor | None = None

    def forward(self, x):
        bn = self.bn
        if self.delta_weight is None:
            return bn(x)
        batch_stats = bn.training or bn.running_mean is None
        return F.batch_norm(x, None if batch_stats else bn.running_mean, None if batch_stats else bn.running_var,
                            bn.weight + self.delta_weight, bn.bias + self.delta_bias,
                            training=batch_stats, momentum=0.0, eps=bn.eps)


class DeltaLinear(nn.Module):
    """A Linear layer whose output gets an additive bias delta."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear
        self.delta_bias: torch.Tensor | None = None

    def forward(self, x):
        out = self.linear(x)
        return out if self.delta_bias is None else out + self.delta_bias


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


def install_delta_layers(model: nn.Module, bn_layers: int) -> list[nn.Module]:
    """Wrap the last `bn_layers` BatchNorms and the last Linear in place; returns the wrappers, in model order."""
    named = list(model.named_modules())
    bns = [n for n, m in named if isinstance(m, nn.modules.batchnorm._BatchNorm)][-bn_layers:] if bn_layers else []
    linears = [n for n, m in named if isinstance(m, nn.Linear)][-1:]
    wrappers = []
    for name in bns + linears:
        module = model.get_submodule(name)
        wrapper = DeltaBatchNorm(module) if isinstance(module, nn.modules.batchnorm._BatchNorm) else DeltaLinear(module)
        _replace(model, name, wrapper)
        wrappers.append(wrapper)
    if not wrappers:
        raise ValueError("the model has neither BatchNorm nor Linear layers for the adapter to act on")
    return wrappers


def delta_sizes(wrappers: list[nn.Module]) -> list[int]:
    sizes = []
    for w in wrappers:
        if isinstance(w, DeltaBatchNorm):
            sizes += [w.bn.num_features, w.bn.num_features]
        else:
            sizes.append(w.linear.out_features)
    return sizes


def set_deltas(wrappers: list[nn.Module], deltas: list[torch.Tensor] | None) -> None:
    """Give each wrapper its deltas (the order of delta_sizes); None removes them all."""
    it = iter(deltas or [])
    for w in wrappers:
        if isinstance(w, DeltaBatchNorm):
            w.delta_weight, w.delta_bias = (None, None) if deltas is None else (next(it), next(it))
        else:
            w.delta_bias = None if deltas is None else next(it)


class PriorAdapter(nn.Module):
    """q -> deltas, with deltas(source prior) == 0 exactly."""

    def __init__(self, source_prior: torch.Tensor, sizes: list[int], hidden: int = 64):
        super().__init__()
        k = len(source_prior)
        self.register_buffer("log_source", (source_prior.double() + PRIOR_EPS).log().float())
        self.sizes = list(sizes)
        self.net = nn.Sequential(nn.Linear(k, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, sum(sizes)))

    def forward(self, prior: torch.Tensor) -> list[torch.Tensor]:
        u = (prior.to(self.log_source).clamp_min(0) + PRIOR_EPS).log() - self.log_source
        out = self.net(u) - self.net(torch.zeros_like(u))
        return list(out.split(self.sizes))
