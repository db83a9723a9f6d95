"""The suite's own small CNN, trained by the suite (the built-in digits benchmarks use it)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import nn

from ..classifier import Classifier
from .portable_init import portable_default_init
from .registry import register_architecture


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
        portable_default_init(self)  # the same initial weights on every CPU, so trained models agree too

    def forward(self, x):
        return self.head(self.features(x))


@register_architecture("small_cnn")
def small_cnn(num_classes: int, in_channels: int, width: Annotated[int, Field(ge=1, le=1024)] = 32) -> Classifier:
    """SmallCNN on inputs scaled to [-1, 1]."""
    return Classifier(SmallCNN(num_classes, in_channels, width), head="head", mean=0.5, std=0.5)
