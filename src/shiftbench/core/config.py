"""Reading YAML config files into pydantic models with one-line errors naming file and field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import UserError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> object:
    if not path.exists():
        raise UserError("file not found", source=str(path))
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"malformed YAML{where}: {getattr(e, 'problem', None) or e}", source=str(path)) from None


def parse_model(model: type[M], raw: object, source: str) -> M:
    if not isinstance(raw, dict):
        raise UserError("expected a YAML mapping at the top level", source=source)
    try:
        return model(**raw)
    except ValidationError as e:
        raise validation_errors(model, e, source)[0] from None


def validation_errors(model: type[BaseModel], error: ValidationError, source: str) -> list[UserError]:
    """Every problem pydantic found, each as a one-line UserError naming the field and what is allowed."""
    out = []
    for err in error.errors():
        field = ".".join(str(x) for x in err["loc"]) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; allowed: {', '.join(model.model_fields)}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] != "literal_error":
            msg = f"{msg} (got {err['input']!r})"
        out.append(UserError(" ".join(msg.split()), source=source, field=field))
    return out


def all_problems(model: type[M], raw: object, source: str) -> list[UserError]:
    """Like parse_model, but returns every problem instead of raising the first (empty: valid)."""
    if not isinstance(raw, dict):
        return [UserError("expected a YAML mapping at the top level", source=source)]
    try:
        model(**raw)
    except ValidationError as e:
        return validation_errors(model, e, source)
    return []
