"""A module imported on first use: torchvision's transforms and scikit-learn cost seconds to import
(torchvision pulls in torch._dynamo), and every method module is imported whenever a method is
looked up, so importing them at the top made every `shiftbench` command pay for them."""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


def missing_extra(module: str, extra: str) -> str:
    return f"{module} is not installed; install the extra: pip install 'shiftbench[{extra}]'"


def import_extra(module: str, extra: str, field: str | None = None) -> ModuleType:
    """An optional dependency, or one UserError saying which extra installs it."""
    from .errors import UserError

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(missing_extra(module, extra), field=field) from None
