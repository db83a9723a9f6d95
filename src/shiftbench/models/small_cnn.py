"""Source architectures. Models take float images in [0, 1] and return logits."""

from __future__ import annotations

import torch
from torch import nn

from ..core.errors import UserError


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Five 3x3 conv-BN-ReLU blocks, two max-pools, global average pooling, a linear head."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: int = 32):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn(in_channels, w), conv_bn(w, w), nn.MaxPool2d(2),
            conv_bn(w, 2 * w), conv_bn(2 * w, 2 * w), nn.MaxPool2d(2),
            conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - 0.5) / 0.5))


ARCHITECTURES = {"small_cnn": SmallCNN}


def build_model(arch: str, num_classes: int, in_channels: int, **params) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise UserError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}", field="model.arch")
    return ARCHITECTURES[arch](num_classes=num_classes, in_channels=in_channels, **params)
