"""Validate keyword parameters against a function's or class's signature with pydantic.

Methods, shifts, loaders, recipes and architectures declare their parameters as plain
keyword arguments with type hints and defaults (scikit-learn style); this module turns that
signature into a pydantic model so that a bad parameter is rejected before any work starts,
with a message naming the parameter and what is allowed.
"""

from __future__ import annotations

import inspect
import reprlib
import types
import typing
from functools import lru_cache
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from .errors import UserError

SKIP = ("self", "data", "seed")

_short = reprlib.Repr()
_short.maxstring = _short.maxother = 120
_short.maxlist = _short.maxdict = _short.maxtuple = _short.maxset = 8
_short.maxlevel = 3


def short_repr(value: Any) -> str:
    """repr(value) cut to a few hundred characters, without ever building the full repr."""
    return _short.repr(value)


@lru_cache(maxsize=None)
def params_model(fn: Callable, skip: tuple[str, ...] = SKIP) -> type[BaseModel]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    hints = typing.get_type_hints(target, include_extras=True)
    fields: dict[str, Any] = {}
    for name, p in inspect.signature(target).parameters.items():
        if name in skip or name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[name] = (annotation, default)
    return create_model(
        f"{getattr(fn, '__name__', 'fn')}Params",
        __config__=ConfigDict(extra="forbid", strict=False, arbitrary_types_allowed=True, allow_inf_nan=False),
        **fields,
    )


def describe_params(fn: Callable, skip: tuple[str, ...] = SKIP) -> dict[str, str]:
    """name -> 'type = default' for --help style listings."""
    out = {}
    for name, f in params_model(fn, skip).model_fields.items():
        ann = type_name(f.annotation)
        out[name] = f"{ann} = {f.default!r}" if not f.is_required() else f"{ann} (required)"
    return out


def type_name(annotation: Any) -> str:
    """'float|None', 'adam|sgd', 'int': what a user may write, not typing's repr ('Optional')."""
    if typing.get_origin(annotation) is typing.Annotated:  # a bounded number: Annotated[float, Field(ge=0)]
        return type_name(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in args)
    if args and typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return "|".join("None" if a is type(None) else type_name(a) for a in args)
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def validate_params(fn: Callable, params: dict[str, Any] | None, *, source: str | None = None, what: str = "",
                    skip: tuple[str, ...] = SKIP, field: str = "params") -> dict[str, Any]:
    """The validated, defaults-filled parameters, or a UserError naming the first bad one."""
    model = params_model(fn, skip)
    if params is not None and not isinstance(params, dict):
        raise UserError(f"parameters of {what} must be a mapping, got {short_repr(params)}", source=source, field=field)
    try:
        checked = model.model_validate(params or {}).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) if len(str(x)) <= 60 else short_repr(str(x)[:60]) for x in err["loc"])
        allowed = ", ".join(model.model_fields) or "none"
        if err["type"] == "extra_forbidden":
            msg = f"unknown parameter '{loc}' for {what}; allowed: {allowed}"
        else:
            msg = f"parameter '{loc}' of {what}: {err['msg']} (got {short_repr(err.get('input'))})"
        raise UserError(msg, source=source, field=".".join(x for x in (field, loc) if x) or None) from None
    for name, value in checked.items():
        if too_large(value):
            raise UserError(f"parameter '{name}' of {what} holds an integer beyond 64 bits", source=source,
                            field=".".join(x for x in (field, name) if x))
    return checked


INT64 = 1 << 63


def too_large(value: Any, depth: int = 0) -> bool:
    """Whether value holds an int that torch and numpy cannot take (|x| >= 2^63)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -INT64 <= value < INT64
    if depth < 8 and isinstance(value, (list, tuple)):
        return any(too_large(v, depth + 1) for v in value)
    if depth < 8 and isinstance(value, dict):
        return any(too_large(v, depth + 1) for v in value.values())
    return False
