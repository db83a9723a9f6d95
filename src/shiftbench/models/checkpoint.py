"""Checkpoint files: saved atomically, loaded with weights_only=True into a network, named in every error."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from ..core.errors import UserError
from ..core.files import atomic_write_bytes


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    """torch.save, atomically: a crash never leaves a truncated checkpoint behind."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_weights(net: nn.Module, path: Path, *, what: str = "", field: str = "model.checkpoint") -> None:
    """Load a state dict (or a dict holding one under 'state_dict') into net, strictly; `what` names net in errors.

    Strict except for BatchNorm's `num_batches_tracked` counters, which older checkpoints lack
    and which never change an output.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        state = strip_prefix(state)
        missing, unexpected = net.load_state_dict(state, strict=False)
    except Exception as e:  # unpickling or shape errors: say which file and why, in one line
        raise UserError(f"cannot load {path} into {what or type(net).__name__}: {str(e).splitlines()[0]}",
                        field=field) from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise UserError(f"cannot load {path} into {what or type(net).__name__}: "
                        f"missing keys {missing[:3]}, unexpected keys {list(unexpected)[:3]}", field=field)


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the 'module.' (DataParallel) or 'model.' prefix that every key carries."""
    for prefix in ("module.", "model."):
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state
