"""What a covariate scenario is, for the paper layout: which corruption at which severity, or which segments.

Read from the resolved shift chains a record carries (`record["cell"]["spec"]["segments"]`),
else from the benchmark's current definition, else from a name like 'fog-s3'.
"""

from __future__ import annotations

import re
from typing import Any

SEVERITY_IN_NAME = re.compile(r"^(?P<kind>.+)-s(?P<severity>\d+)$")


def _rated(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in chain if isinstance(s, dict) and isinstance(s.get("severity"), int)
            and not isinstance(s.get("severity"), bool)]


def chain_corruption(chain: list[dict[str, Any]]) -> tuple[str, int] | None:
    """(corruption, severity) of a chain with exactly one severity-carrying shift; a corruption read
    from a file names itself in its `corruption` parameter."""
    rated = _rated(chain)
    if len(rated) != 1:
        return None
    spec = rated[0]
    return str(spec.get("corruption") or spec.get("shift")), int(spec["severity"])


def corruption_of(name: str, segments: list[list[dict[str, Any]]] | None = None) -> tuple[str, int] | None:
    """(corruption, severity) of a one-segment covariate scenario; None for sequences and other chains."""
    if segments is not None:
        return chain_corruption(segments[0]) if len(segments) == 1 else None
    m = SEVERITY_IN_NAME.match(str(name))
    return (m["kind"], int(m["severity"])) if m else None


def segment_labels(segments: list[list[dict[str, Any]]] | None, count: int) -> list[str]:
    """A column head per segment of a sequence: its corruption (and severity), else 'segment i'."""
    out = []
    for i in range(count):
        kind = chain_corruption(segments[i]) if segments and i < len(segments) else None
        out.append(f"{kind[0]}" if kind else f"segment {i + 1}")
    return out


def record_segments(record: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
    spec = (record.get("cell") or {}).get("spec")
    segments = spec.get("segments") if isinstance(spec, dict) else None
    return segments if isinstance(segments, list) and all(isinstance(c, list) for c in segments) else None


def spec_segments(spec: Any) -> list[list[dict[str, Any]]] | None:
    """The shift chains of a benchmark ScenarioSpec (current definition)."""
    return spec.segment_chains() if spec is not None else None
