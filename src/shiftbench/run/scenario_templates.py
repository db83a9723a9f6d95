"""Scenario templates, expanded before a benchmark is parsed (so a '{b}' may stand for a number).

  matrix          one scenario per combination of the values: '{c}' in the name, shift
                  parameters and stream settings takes each value in turn
  segment_matrix  one segment per combination, in order (the first key varies slowest): the
                  scenario's `shifts` is the template of each segment's chain, e.g. the 15
                  corruptions one after another in three lines

A value that is exactly '{c}' becomes the matrix value itself (a number stays a number); inside
a longer string it is formatted in. Both may be used together; a name left with a '{...}' that
no matrix fills is an error.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_templates(raw: Any) -> list[Any]:
    """A scenario as written -> the scenarios it stands for (itself when it is no template, or a
    malformed one, which parsing then reports)."""
    if not isinstance(raw, dict):
        return [raw]
    bindings = _combinations(raw.get("matrix"))
    if bindings is None:
        out = [raw]  # no matrix, or a malformed one that parsing reports
    else:
        template = {k: v for k, v in raw.items() if k != "matrix"}
        out = [_substitute(template, b) for b in bindings]
    out = [_segments(s) for s in out]
    for s in out:
        name = s.get("name")
        if isinstance(name, str) and PLACEHOLDER.search(name):
            raise ValueError(f"scenario '{name}': '{PLACEHOLDER.search(name).group(0)}' names no matrix key")
    return out


def _combinations(matrix: Any) -> list[dict[str, Any]] | None:
    if not matrix or not isinstance(matrix, dict) or not all(isinstance(v, list) for v in matrix.values()):
        return None
    return [dict(zip(matrix, combo)) for combo in itertools.product(*matrix.values())]


def _segments(raw: dict[str, Any]) -> dict[str, Any]:
    bindings = _combinations(raw.get("segment_matrix"))
    if bindings is None:
        return raw  # nothing to expand, or a malformed one that parsing reports
    if raw.get("segments") is not None or not raw.get("shifts"):
        raise ValueError(f"scenario '{raw.get('name')}': segment_matrix makes the segments from `shifts`; "
                         "give shifts and no segments")
    rest = {k: v for k, v in raw.items() if k not in ("segment_matrix", "shifts")}
    return rest | {"segments": [_substitute(raw.get("shifts", []), b) for b in bindings]}


def _substitute(value: Any, binding: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in binding:
            return binding[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(binding[m.group(1)]) if m.group(1) in binding else m.group(0), value)
    if isinstance(value, list):
        return [_substitute(v, binding) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, binding) for k, v in value.items()}
    return value
