"""Training recipes for the source model, by name; every module in this package registers its own."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from ...core.errors import UserError

RECIPES: dict[str, Callable[..., dict[str, Any]]] = {}


def register_recipe(name: str):
    """Decorator: fn(model, train, val, *, seed, device, progress, **params) -> info dict."""

    def wrap(fn):
        RECIPES[name] = fn
        return fn

    return wrap


def load_builtin_recipes() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def get_recipe(name: str) -> Callable[..., dict[str, Any]]:
    load_builtin_recipes()
    if name not in RECIPES:
        raise UserError(f"unknown training recipe '{name}'; known: {', '.join(sorted(RECIPES))}", field="training")
    return RECIPES[name]
