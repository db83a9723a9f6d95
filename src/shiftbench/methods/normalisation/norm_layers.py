"""Which normalisation layers an entropy method adapts, for any network: all of them, or all but the last few.

The reference SAR and DeYO code adapts every norm layer's affine parameters except those of
modules named `layer4` (the last stage of an ImageNet ResNet) or ViT blocks 9-11 and the final
norm. A layer name means nothing in another network (the CIFAR ResNets have no `layer4`, so
on them the reference code adapts every layer), so here the same idea is a number:
`skip_last` is the fraction of the network's norm layers, counted from the output end in
module order, whose parameters stay frozen (they still normalise as the method says).
0 adapts every layer (what the reference code does on the CIFAR ResNets); the reference
choice on an ImageNet ResNet-50 is 10 of 53 BatchNorm layers (0.19), on ViT-B/16 7 of 25
LayerNorms (0.28).
"""

from __future__ import annotations

import math

from torch import nn

from .bn_adapt import use_batch_statistics

NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm, LayerNorm and GroupNorm modules of model, in module order."""
    return [m for m in model.modules() if isinstance(m, NORM_LAYERS)]


def adapted_norm_parameters(model: nn.Module, skip_last: float = 0.0) -> list[nn.Parameter]:
    """The affine parameters of all norm layers but the last floor(skip_last * L) of the L there are."""
    layers = norm_layers(model)
    keep = len(layers) - math.floor(skip_last * len(layers))
    return [p for m in layers[:keep] for p in (m.weight, m.bias) if p is not None]


def adapt_norm_affine(model: nn.Module, skip_last: float = 0.0) -> list[nn.Parameter]:
    """The entropy minimisers' starting state: BatchNorm on test-batch statistics, every parameter
    frozen except the affine parameters of the adapted norm layers, which are returned."""
    use_batch_statistics(model)
    model.requires_grad_(False)
    params = adapted_norm_parameters(model, skip_last)
    for p in params:
        p.requires_grad_(True)
    return params
