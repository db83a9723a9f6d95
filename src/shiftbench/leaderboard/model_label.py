"""Which model a number belongs to: a key that groups cells into boards and a label a reader recognises.

A cell's model is its spec (`record["cell"]["model"]`: `arch` and its parameters, maybe a
`checkpoint` file or `weights: <model manifest name>`) and the checkpoint it ran on
(`record["provenance"]["checkpoint_sha256"]`). Models the suite trains itself have one
checkpoint per seed and recipe, so they are grouped by their spec alone; a given checkpoint
(a file or named weights) is one fixed model and its short hash is part of the label.
"""

from __future__ import annotations

from typing import Any

from ..core.hashing import canonical_json

UNKNOWN = "unknown model"
GIVEN = ("weights", "checkpoint")  # spec fields that name fixed weights instead of training them
NAMING = ("weights", "name")  # spec fields whose value is the model's name


def model_spec(record: dict[str, Any]) -> dict[str, Any]:
    spec = (record.get("cell") or {}).get("model")
    return spec if isinstance(spec, dict) else {}


def model_key(spec: dict[str, Any]) -> str:
    """Cells with equal keys ran on the same model definition."""
    return canonical_json(spec) if spec else UNKNOWN


def given_weights(spec: dict[str, Any]) -> bool:
    return any(spec.get(k) for k in GIVEN)


def _params_text(spec: dict[str, Any]) -> str:
    params = {k: v for k, v in spec.items() if k not in ("arch", "checkpoint", "file", *NAMING)}
    return ", ".join(f"{k} {v}" for k, v in sorted(params.items()))


def model_label(spec: dict[str, Any], checkpoints: set[str] | list[str] = ()) -> str:
    """'cifar_resnet20 · 12fca82f', 'small_cnn (width 16) · trained here', or the spec's own name.

    checkpoints: the distinct checkpoint sha256 values the board's cells ran on.
    """
    if not spec:
        return UNKNOWN
    shas = sorted({c for c in checkpoints if c})
    name = next((str(spec[k]) for k in NAMING if spec.get(k)), None)
    if name is None:
        arch = str(spec.get("arch", "small_cnn"))
        params = _params_text(spec)
        name = f"{arch} ({params})" if params else arch
    if given_weights(spec):
        return f"{name} · {shas[0][:8]}" if len(shas) == 1 else f"{name} · {len(shas)} checkpoints" if shas else name
    return f"{name} · trained here"
