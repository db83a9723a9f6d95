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
    """A column head per played segment of a sequence: its corruption, with its severity when the
    severities differ along the stream (a gradual one), else 'segment i'. A stream of `cycles`
    plays its segments again: segment i is chain i mod the number of chains."""
    kinds = [chain_corruption(c) for c in segments or []]
    graded = len({k[1] for k in kinds if k}) > 1
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)] if kinds and count % len(kinds) == 0 else None
        out.append((f"{kind[0]} s{kind[1]}" if graded else kind[0]) if kind else f"segment {i + 1}")
    return out


def play_note(mix: bool, label_order: dict[str, Any] | None, cycles: int) -> str:
    """How a sequence scenario's segments reach the method, for the note under its table."""
    if mix:
        how = "The segments' images are shuffled into one stream (mixed domains)"
        how += ", then put in a label-correlated order" if label_order else ""
        return how + "; each column is the error on one segment's images, wherever they fell in the stream."
    how = "Segments are played one after another"
    how += ", each in a label-correlated order" if label_order else ""
    how += f", the whole sequence {cycles} times" if cycles > 1 else ""
    return how + "; the protocol decides whether the method is reset between them."


def record_segments(record: dict[str, Any]) -> list[list[dict[str, Any]]] | None:
    spec = (record.get("cell") or {}).get("spec")
    segments = spec.get("segments") if isinstance(spec, dict) else None
    return segments if isinstance(segments, list) and all(isinstance(c, list) for c in segments) else None


def spec_segments(spec: Any) -> list[list[dict[str, Any]]] | None:
    """The shift chains of a benchmark ScenarioSpec (current definition), as its stream plays them."""
    return spec.stream.played_chains(spec.segment_chains()) if spec is not None else None
