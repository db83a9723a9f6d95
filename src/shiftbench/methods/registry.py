"""Methods by name: `@register_method(name)` built-ins, the `shiftbench.methods` entry-point group,
or an import path `pkg.module:Class` in a submission.

Parameters are checked here, before any work starts: the class's typed `__init__` keywords,
and for a composite method (one that wraps another, `wraps_base = True`) its `base` (a
registered method that the composite accepts) and `base_params` (checked against the base's
own parameters, defaults filled).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..core.errors import UserError
from ..core.params import validate_params
from ..core.registry import Registry
from .base import Method


def _method_class(obj: Any) -> type[Method]:
    if not (inspect.isclass(obj) and issubclass(obj, Method)):
        raise TypeError("is not a shiftbench Method subclass")
    return obj


METHODS: Registry[type[Method]] = Registry("method", "shiftbench.methods", "shiftbench.methods", accept=_method_class)


def register_method(name: str):
    """Class decorator: makes a Method subclass available under `name`."""

    def wrap(cls):
        _method_class(cls)
        cls.name = name
        return METHODS.add(name, cls)

    return wrap


def resolve_method(spec: str, *, source: str | None = None) -> type[Method]:
    return METHODS.get(spec, source=source, field="method")


def check_method(spec: str, params: dict[str, Any] | None, *, source: str | None = None,
                 field: str = "params") -> dict[str, Any]:
    """The method's parameters, validated (nested base parameters too) and with defaults filled."""
    cls = resolve_method(spec, source=source)
    checked = validate_params(cls, params, source=source, what=f"method '{spec}'", field=field)
    if cls.wraps_base:
        base_name = checked.get("base", cls.fixed_base)
        base = resolve_method(base_name, source=source)
        problem = cls.base_problem(base)
        if problem:
            allowed = ", ".join(n for n, c in METHODS.entries().items() if not cls.base_problem(c))
            raise UserError(f"'{base_name}' cannot be the base of '{spec}': {problem}; allowed: {allowed}",
                            source=source, field=f"{field}.base")
        checked["base_params"] = check_method(base_name, checked.get("base_params"), source=source,
                                              field=f"{field}.base_params")
    return checked


def create_method(spec: str, params: dict[str, Any] | None = None) -> Method:
    return resolve_method(spec)(**check_method(spec, params))


def method_classes(spec: str, params: dict[str, Any]) -> list[type[Method]]:
    """The classes whose code a cell of this method runs: the method and, for a composite, its base (recursively)."""
    cls = resolve_method(spec)
    if cls.wraps_base:
        base = params.get("base", cls.fixed_base)
        return [cls, *method_classes(base, params.get("base_params") or {})]
    return [cls]
