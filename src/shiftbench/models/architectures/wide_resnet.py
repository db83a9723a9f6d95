"""Wide ResNets (Zagoruyko & Komodakis 2016), laid out like RobustBench's CIFAR-10 `Standard` WRN-28-10.

Pre-activation blocks: BN-ReLU-conv3x3-BN-ReLU-conv3x3, with a 1x1 convolution on the
shortcut where the width or resolution changes; that shortcut (and the first convolution)
reads the block's pre-activated input. Widths 16, 16k, 32k, 64k; depth 6n + 4; a final
BN-ReLU, global average pooling, a linear head. Parameter names follow RobustBench's model
zoo (conv1, block{1,2,3}.layer.{i}.{bn1,conv1,bn2,conv2,convShortcut}, bn1, fc), so its
checkpoints load strictly. Its CIFAR-10 models take images in [0, 1] without normalisation.
Dropout is not built (RobustBench's checkpoints were trained without it; at test time it
is the identity anyway).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import AfterValidator, Field
from torch import nn

from ..classifier import Classifier
from .registry import register_architecture


class WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        # a projection only where the shape changes; the name is the checkpoints' own
        self.convShortcut = None if cin == cout and stride == 1 else nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        # identity blocks add the raw input; projecting blocks project the pre-activated one
        return out + (x if self.convShortcut is None else self.convShortcut(act))


class Stage(nn.Module):
    def __init__(self, n: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = Stage(n, widths[0], widths[1], 1)
        self.block2 = Stage(n, widths[1], widths[2], 2)
        self.block3 = Stage(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _six_n_plus_4(depth: int) -> int:
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"depth must be 6n + 4 (10, 16, 22, 28, 34, 40, ...), got {depth}")
    return depth


@register_architecture("wide_resnet")
def wide_resnet(num_classes: int, in_channels: int,
                depth: Annotated[int, Field(ge=10, le=1000), AfterValidator(_six_n_plus_4)] = 28,
                widen_factor: Annotated[int, Field(ge=1, le=64)] = 10) -> Classifier:
    """Wide ResNet-depth-k (RobustBench `Standard` layout: WRN-28-10), inputs in [0, 1] without normalisation."""
    return Classifier(WideResNet(depth, widen_factor, num_classes, in_channels), head="fc")
