"""The CIFAR ResNets of He et al. 2016 (section 4.2): 3 stages of n basic blocks, 16/32/64 channels, depth 6n+2.

Option-A shortcuts: where a block halves the resolution and doubles the channels, the
shortcut is the identity subsampled by 2 in each direction with the new channels zero-padded
(no parameters). Parameter names follow the public akamaster/pytorch_resnet_cifar10
checkpoints (conv1, bn1, layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}, linear), so they load
strictly. Those checkpoints expect inputs normalised with the ImageNet mean and std.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..classifier import Classifier
from .registry import register_architecture

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin  # option A: zero channels for the shortcut
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and self.pad == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        widths, cin = (16, 32, 64), 16
        for i, w in enumerate(widths, start=1):
            blocks = [BasicBlock(cin if b == 0 else w, w, 2 if (b == 0 and i > 1) else 1) for b in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = w
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


@register_architecture("cifar_resnet")
def cifar_resnet(num_classes: int, in_channels: int, depth: Literal[20, 32, 44, 56, 110] = 20) -> Classifier:
    """CIFAR ResNet-20/32/44/56/110 (option-A shortcuts), inputs normalised with the ImageNet mean and std."""
    return Classifier(CifarResNet(depth, num_classes, in_channels), head="linear", mean=IMAGENET_MEAN,
                      std=IMAGENET_STD)
