"""Architectures by name: `model: {arch: NAME, ...params}` in a benchmark builds one.

A builder is fn(num_classes, in_channels, **params) -> Classifier (or a plain nn.Module,
which is wrapped with its last nn.Linear as the head and no preprocessing) taking float
images in [0, 1]; its keyword parameters (typed, with defaults) are the `model:` fields it
accepts. It may leave out num_classes / in_channels if it does not need them (a user's
`build()`), and may ask for `classes`, the dataset's class names (a zero-shot head's labels). Families answer names with a prefix (`torchvision:resnet50`, `timm:NAME`,
`import:pkg.module:build`) through the same registry.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from ...core.errors import UserError
from ...core.params import short_repr, validate_params
from ...core.registry import Registry
from ..classifier import Classifier, last_linear

BUILD_ARGS = ("num_classes", "in_channels", "classes")

ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry(
    "architecture", "shiftbench.models.architectures", "shiftbench.architectures", accept=lambda fn: _builder(fn))


def _builder(fn: Any) -> Callable[..., nn.Module]:
    if not callable(fn):
        raise TypeError("is not callable (an architecture is fn(num_classes, in_channels, **params) -> nn.Module)")
    return fn


def register_architecture(name: str):
    """Decorator: fn(num_classes, in_channels, **params) -> nn.Module (a class works too)."""
    return ARCHITECTURES.decorator(name)


def register_family(prefix: str, make: Callable[[str], Callable[..., nn.Module]],
                    names: Callable[[], list[str] | None], pattern: str, doc: str) -> None:
    """Architectures named `prefix:REST`: make(REST) -> a builder; names() -> the RESTs known (None: any)."""
    ARCHITECTURES.add_family(prefix, make, names, pattern, doc)


def check_arch_params(arch: str, params: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """The builder's parameters, validated and with defaults filled."""
    fn = ARCHITECTURES.get(arch, source=source, field="model.arch")
    return validate_params(fn, params, source=source, what=f"architecture '{arch}'", skip=BUILD_ARGS, field="model")


def build_model(arch: str, num_classes: int, in_channels: int, classes: tuple[str, ...] = (), **params) -> Classifier:
    fn = ARCHITECTURES.get(arch, field="model.arch")
    params = check_arch_params(arch, params)
    try:
        accepted = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        accepted = {}
    anything = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    # a **kwargs builder gets num_classes and in_channels as before; classes only when it names them
    given = {k: v for k, v in zip(BUILD_ARGS, (num_classes, in_channels, tuple(classes)))
             if k in accepted or (anything and k != "classes")}
    try:
        out = fn(**given, **params)
    except UserError:
        raise
    except Exception as e:  # a user's builder failing: say which, in one line
        raise UserError(f"building architecture '{arch}' failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                        field="model.arch") from None
    if isinstance(out, Classifier):
        return out
    if not isinstance(out, nn.Module):
        raise UserError(f"architecture '{arch}' returned {short_repr(out)}, not an nn.Module", field="model.arch")
    try:
        return Classifier(out, head=last_linear(out))
    except LookupError:
        raise UserError(f"architecture '{arch}' has no nn.Linear layer to serve as the classifier head; "
                        "name it with model.head", field="model.head") from None
