"""Names of benchmarks and datasets: they become file and folder names, so they are names, never paths."""

from __future__ import annotations

import re

from .errors import UserError
from .params import short_repr

NAME_RULE = "lowercase letters, digits, '_', '.' and '-', starting with a letter or digit, at most 100 characters"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")


def is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.fullmatch(value) is not None


def check_name(value: object, what: str, *, source: str | None = None, field: str | None = None) -> str:
    """value when it is a name, else a UserError saying what a name is."""
    if not is_name(value):
        raise UserError(f"{what} must be a name ({NAME_RULE}), got {short_repr(value)}", source=source, field=field)
    return value
