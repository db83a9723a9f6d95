"""Reading YAML config files into pydantic models with one-line errors naming file and field.

Config files (submissions, benchmarks, data manifests) may come from strangers, so reading
one is bounded: at most MAX_CONFIG_BYTES of UTF-8 text from a regular file, no YAML aliases
(`&a` / `*a`: nested aliases expand a few hundred bytes into billions of nodes wherever the
value is walked or printed), no key given twice in one mapping, and every value an error
message echoes is cut to a short repr.
"""

from __future__ import annotations

import copy
import os
import stat
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import UserError
from .params import short_repr

M = TypeVar("M", bound=BaseModel)

MAX_CONFIG_BYTES = 1 << 20


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases and without repeated keys."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"YAML aliases (*{event.anchor}) are not allowed; "
                                                          "write the value out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if repeated:
                raise yaml.constructor.ConstructorError(None, None, f"key {short_repr(key)} is given twice",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml_text(text: str) -> object:
    return copy.deepcopy(_parsed(text))  # a copy: callers may change what they get


@lru_cache(maxsize=1024)
def _parsed(text: str) -> object:
    """One parse per distinct text: building a site re-reads each data manifest hundreds of times (a
    benchmark's every corruption_file shift checks its dataset), and PyYAML's pure-Python parser
    made that most of a warm run."""
    return yaml.load(text, Loader=ConfigLoader)  # ConfigLoader is a SafeLoader


def read_text_file(path: Path, *, limit: int = MAX_CONFIG_BYTES, what: str = "file") -> str:
    """A small regular file's UTF-8 text, or a one-line UserError naming it."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError("file not found", source=str(path)) from None
    except OSError as e:
        raise UserError(f"cannot read ({e.strerror})", source=str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"is a folder, not a {what}", source=str(path))
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
        raise UserError(f"is not a regular file, so not a {what}", source=str(path))
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise UserError(f"cannot read ({e.strerror})", source=str(path)) from None
    if len(data) > limit:
        raise UserError(f"larger than {limit // 1024} KiB; a {what} is a few KiB", source=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"not UTF-8 text (byte {e.start} is {data[e.start]:#04x})", source=str(path)) from None


def read_yaml(path: Path) -> object:
    text = read_text_file(path, what="YAML file")
    try:
        return load_yaml_text(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"malformed YAML{where}: {problem}", source=str(path)) from None
    except RecursionError:
        raise UserError("malformed YAML: nested too deeply", source=str(path)) from None


def parse_model(model: type[M], raw: object, source: str) -> M:
    if not isinstance(raw, dict):
        raise UserError("expected a YAML mapping at the top level", source=source)
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise validation_errors(model, e, source)[0] from None


def _loc_part(part: object) -> str:
    text = str(part) if isinstance(part, (str, int)) else short_repr(part)
    return text if len(text) <= 80 else short_repr(text)


def validation_errors(model: type[BaseModel], error: ValidationError, source: str) -> list[UserError]:
    """Every problem pydantic found, each as a one-line UserError naming the field and what is allowed."""
    out = []
    for err in error.errors():
        field = ".".join(map(_loc_part, err["loc"])) or None
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; allowed: {', '.join(model.model_fields)}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        elif "input" in err and err["type"] != "literal_error":
            msg = f"{msg} (got {short_repr(err['input'])})"
        out.append(UserError(" ".join(msg.split()), source=source, field=field))
    return out


def all_problems(model: type[M], raw: object, source: str) -> list[UserError]:
    """Like parse_model, but returns every problem instead of raising the first (empty: valid)."""
    if not isinstance(raw, dict):
        return [UserError("expected a YAML mapping at the top level", source=source)]
    try:
        model.model_validate(raw)
    except ValidationError as e:
        return validation_errors(model, e, source)[:20]
    return []
