"""Checkpoint files: saved atomically, loaded with weights_only=True into a network, named in every error.

A checkpoint is a state dict, or a dict holding one under `state_dict`, `model`,
`model_state_dict` or `net` (the usual wrappers; the first that is a mapping of tensors
wins), or a TorchScript archive (OpenAI's CLIP releases), whose parameters and buffers are
read with torch.jit.load (TorchScript code, never Python pickles). Keys lose a `module.`
(DataParallel) or `model.` prefix that every key carries, then
`key_map` renames prefixes ({old: new}, longest match first). Loading is strict: the error
names the file and the first missing, unexpected and wrong-shaped keys. Never unpickles
anything but tensors and plain containers (torch.load(weights_only=True)).
"""

from __future__ import annotations

import io
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..core.errors import UserError
from ..core.files import atomic_write_bytes

WRAPPERS = ("state_dict", "model", "model_state_dict", "net")
SHOWN = 3  # keys named per kind of mismatch


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    """torch.save, atomically: a crash never leaves a truncated checkpoint behind."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_state_dict(path: Path, *, key_map: Mapping[str, str] | None = None,
                    field: str = "model.checkpoint") -> dict[str, torch.Tensor]:
    """The file's tensors by parameter name: unwrapped, prefixes stripped, key_map applied."""
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads fine
            warnings.simplefilter("ignore", UserWarning)
            if is_torchscript(path):
                raw = dict(torch.jit.load(str(path), map_location="cpu").state_dict())
            else:
                raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused or failed, or not a torch file at all: one line either way
        imported = imported_names(path, e)
        if imported:
            raise UserError(f"{path} is not a plain weights file: loading it would import and run "
                            f"{', '.join(imported[:3])}; refused (save model.state_dict() instead)", field=field) from None
        first = next((line for line in str(e).splitlines() if line.strip()), "")
        raise UserError(f"{path} is not a readable torch checkpoint (truncated or another format: "
                        f"{type(e).__name__}: {first[:200]})", field=field) from None
    state = unwrap(raw)
    if state is None:
        found = ", ".join(map(str, list(raw)[:6])) if isinstance(raw, dict) else type(raw).__name__
        raise UserError(f"{path} holds no state dict (a mapping of parameter names to tensors, plain or under "
                        f"{'/'.join(WRAPPERS)}); found {found}", field=field)
    return rename(strip_prefix(state), key_map or {})


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding compiled code and constants, which torch.load(weights_only) refuses."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except OSError:
        return False
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def imported_names(path: Path, error: Exception) -> list[str]:
    """What a refused pickle would import ('module.name'), from torch's message or a static scan of
    a plain pickle file's opcodes (nothing is executed); [] when it imports nothing."""
    found = [line.split("GLOBAL", 1)[1].strip().split()[0] for line in str(error).splitlines() if "GLOBAL " in line]
    if found:
        return found
    try:
        data = path.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(data)):
            return []
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(arg)
            elif op.name in ("GLOBAL", "INST"):
                found.append(arg.replace(" ", "."))
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle at all
        return found
    return found


def unwrap(obj: Any) -> dict[str, torch.Tensor] | None:
    if _is_state(obj):
        return dict(obj)
    if isinstance(obj, Mapping):
        for key in WRAPPERS:
            if _is_state(obj.get(key)):
                return dict(obj[key])
    return None


def _is_state(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the 'module.' (DataParallel) or 'model.' prefix that every key carries."""
    for prefix in ("module.", "model."):
        if state and all(isinstance(k, str) and k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def rename(state: dict[str, torch.Tensor], key_map: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """Each key starting with an `old` prefix of key_map gets `new` instead (the longest old prefix wins)."""
    if not key_map:
        return state
    olds = sorted(key_map, key=len, reverse=True)
    out = {}
    for k, v in state.items():
        old = next((o for o in olds if k.startswith(o)), None)
        out[k if old is None else key_map[old] + k[len(old):]] = v
    return out


def as_checkpointed(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A network may say that published checkpoints hold one submodule's parameters
    (`checkpoint_prefix`, e.g. "clip." for a CLIP model inside a zero-shot classifier: added when
    no key has it) and which entries of published files mean nothing to it (`ignored_checkpoint_keys`)."""
    prefix = getattr(net, "checkpoint_prefix", "")
    ignored = set(getattr(net, "ignored_checkpoint_keys", ()))
    state = {k: v for k, v in state.items() if k not in ignored}
    if prefix and not any(k.startswith(prefix) for k in state):
        state = {prefix + k: v for k, v in state.items()}
    return state


def load_weights(net: nn.Module, path: Path, *, what: str = "", field: str = "model.checkpoint",
                 key_map: Mapping[str, str] | None = None, except_prefix: str | None = None) -> None:
    """Load the checkpoint at path into net, strictly; `what` names net in errors.

    Strict except for BatchNorm's `num_batches_tracked` counters, which older checkpoints lack
    and which never change an output. `except_prefix` (a backbone's head, "head."): the file's
    keys under it are dropped and the network's are not required (they keep their values).
    """
    state = as_checkpointed(net, read_state_dict(path, key_map=key_map, field=field))
    own = net.state_dict()
    if except_prefix:
        state = {k: v for k, v in state.items() if not k.startswith(except_prefix)}
        own = {k: v for k, v in own.items() if not k.startswith(except_prefix)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f"{label} {items[:SHOWN]}{f' (+{len(items) - SHOWN} more)' if len(items) > SHOWN else ''}"
                 for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                      ("wrong shapes (file vs model)", shapes)) if items]
        raise UserError(f"cannot load {path} into {what or type(net).__name__}: {'; '.join(parts)}", field=field)
    net.load_state_dict({k: v for k, v in state.items()}, strict=False)
