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
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; allowed: {', '.join(model.model_fields)}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] != "literal_error":
            msg = f"{msg} (got {err['input']!r})"
        raise UserError(msg, source=source, field=field) from None
