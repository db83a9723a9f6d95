"""Architectures by name: `model: {arch: NAME, ...params}` in a benchmark builds one.

A builder is fn(num_classes, in_channels, **params) -> nn.Module taking float images in
[0, 1]; its keyword parameters (typed, with defaults) are the `model:` fields it accepts.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ...core.params import validate_params
from ...core.registry import Registry

BUILD_ARGS = ("num_classes", "in_channels")

ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry(
    "architecture", "shiftbench.models.architectures", "shiftbench.architectures", accept=lambda fn: _builder(fn))


def _builder(fn: Any) -> Callable[..., nn.Module]:
    if not callable(fn):
        raise TypeError("is not callable (an architecture is fn(num_classes, in_channels, **params) -> nn.Module)")
    return fn


def register_architecture(name: str):
    """Decorator: fn(num_classes, in_channels, **params) -> nn.Module (a class works too)."""
    return ARCHITECTURES.decorator(name)


def check_arch_params(arch: str, params: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """The builder's parameters, validated and with defaults filled."""
    fn = ARCHITECTURES.get(arch, source=source, field="model.arch")
    return validate_params(fn, params, source=source, what=f"architecture '{arch}'", skip=BUILD_ARGS, field="model")


def build_model(arch: str, num_classes: int, in_channels: int, **params) -> nn.Module:
    fn = ARCHITECTURES.get(arch, field="model.arch")
    return fn(num_classes=num_classes, in_channels=in_channels, **check_arch_params(arch, params))
