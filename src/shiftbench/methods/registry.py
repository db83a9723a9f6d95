"""Methods by name, by import path (`pkg.module:Class`) or by the `shiftbench.methods` entry-point group."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.params import validate_params
from .base import Method

METHODS: dict[str, type[Method]] = {}
ENTRY_POINT_GROUP = "shiftbench.methods"


def register_method(name: str):
    """Class decorator: makes a Method subclass available under `name`."""

    def wrap(cls):
        if not (inspect.isclass(cls) and issubclass(cls, Method)):
            raise TypeError(f"@register_method('{name}') needs a Method subclass")
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method '{name}' registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def _load_builtin() -> None:
    """Import every module of this package once; each method file registers itself."""

    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name not in ("base", "registry"):
            importlib.import_module(f"{__package__}.{mod.name}")


def _entry_point_methods() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def all_methods() -> dict[str, type[Method]]:
    _load_builtin()
    found = dict(METHODS)
    for name, ep in _entry_point_methods().items():
        found.setdefault(name, ep)
    return dict(sorted(found.items()))


def resolve_method(spec: str, *, source: str | None = None) -> type[Method]:
    """A built-in name, an installed plugin's entry-point name, or 'pkg.module:Class'."""
    _load_builtin()
    if spec in METHODS:
        return METHODS[spec]
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as e:
            raise UserError(f"cannot import module '{e.name}' for method '{spec}'", source=source, field="method") from None
        except AttributeError:
            raise UserError(f"module '{module_name}' has no attribute '{attr}'", source=source, field="method") from None
        if not (inspect.isclass(obj) and issubclass(obj, Method)):
            raise UserError(f"'{spec}' is not a shiftbench Method subclass", source=source, field="method")
        return obj
    eps = _entry_point_methods()
    if spec in eps:
        obj = eps[spec].load()
        if not (inspect.isclass(obj) and issubclass(obj, Method)):
            raise UserError(f"entry point '{spec}' is not a Method subclass", source=source, field="method")
        return obj
    known = ", ".join(sorted(set(METHODS) | set(eps)))
    raise UserError(f"unknown method '{spec}'; known: {known}, or an import path 'pkg.module:Class'",
                    source=source, field="method")


def check_method(spec: str, params: dict[str, Any] | None, *, source: str | None = None) -> dict[str, Any]:
    cls = resolve_method(spec, source=source)
    return validate_params(cls, params, source=source, what=f"method '{spec}'")


def create_method(spec: str, params: dict[str, Any] | None = None) -> Method:
    cls = resolve_method(spec)
    return cls(**validate_params(cls, params, what=f"method '{spec}'"))
