"""A model that lives in a notebook, made loadable from files like any other source model.

`save_user_model(module)` wraps the module in a `Classifier` (its head: the last nn.Linear
unless named) and writes, under `<cache>/models/user/<identity>/`:
  state.pt    the module's state dict (weights only): the checkpoint every record's
              `checkpoint_sha256` is the sha256 of
  module.pt   the module's structure, pickled with cloudpickle so a class defined in a
              notebook (`__main__`) is stored by value and any process can rebuild it
identity = sha256 of the state dict (core/hashing.tensor_sha256 over its tensors, keys in
order). It returns a model spec, `{arch: "shiftbench.api.user_model:saved_module", file:
..., module_sha256: ..., head: ..., checkpoint: .../state.pt, ...}`, that `get_source_model`
loads in any process (a Ray worker, a pool worker): the registry finds the builder below by
its import path, the builder unpickles module.pt after checking its sha256, and the
checkpoint is loaded into it with weights_only=True.

Unpickling runs code, so the builder only opens module files inside this cache folder whose
sha256 matches the spec.
"""

from __future__ import annotations

import copy
import hashlib
import io
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import nn

from ..core.errors import UserError
from ..core.files import atomic_write_bytes
from ..core.hashing import canonical_json, file_sha256, tensor_sha256
from ..core.paths import cache_dir
from ..models.checkpoint import save_state_dict
from ..models.classifier import Classifier

ARCH = "shiftbench.api.user_model:saved_module"


def user_models_dir() -> Path:
    return cache_dir() / "models" / "user"


def state_identity(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict: its tensors (bytes, shapes, dtypes) in key order, and the keys."""
    keys = list(state)
    return hashlib.sha256((tensor_sha256(*[state[k] for k in keys]) + canonical_json(keys)).encode()).hexdigest()


def last_linear(net: nn.Module) -> str:
    names = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise UserError("the model has no nn.Linear layer to use as its classifier head; name one with head=",
                        field="head")
    return names[-1]


def _channels(value: Any) -> list[float] | None:
    if value is None:
        return None
    return [float(v) for v in torch.as_tensor(value, dtype=torch.float64).flatten().tolist()]


def save_user_model(module: nn.Module, *, head: str | None = None, mean: Any = None, std: Any = None,
                    name: str | None = None) -> dict[str, Any]:
    """Write the module's weights and structure to the model cache; returns the model spec that loads them.

    module: takes images in [0, 1] after `mean`/`std` preprocessing (none by default) and returns logits;
    a `Classifier` brings its own head, mean and std.
    """
    import cloudpickle

    if isinstance(module, Classifier):
        head = head or module.head_name
        mean = module.mean.flatten().tolist() if mean is None and module.mean is not None else mean
        std = module.std.flatten().tolist() if std is None and module.std is not None else std
        module = module.net
    if not isinstance(module, nn.Module):
        raise UserError(f"expected a torch nn.Module, got {type(module).__name__}", field="model")
    net = copy.deepcopy(module).cpu().eval()
    head = head or last_linear(net)
    try:
        net.get_submodule(head)
    except AttributeError:
        raise UserError(f"the model has no submodule '{head}'", field="head") from None
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    identity = state_identity(state)
    folder = user_models_dir() / identity
    folder.mkdir(parents=True, exist_ok=True)
    state_path, module_path = folder / "state.pt", folder / "module.pt"
    if not state_path.exists():
        save_state_dict(state, state_path)
    if not module_path.exists():
        buffer = io.BytesIO()
        torch.save(net, buffer, pickle_module=cloudpickle)
        atomic_write_bytes(module_path, buffer.getvalue())
    return {"arch": ARCH, "name": name or type(module).__name__, "file": str(module_path),
            "module_sha256": file_sha256(module_path), "head": head, "mean": _channels(mean), "std": _channels(std),
            "checkpoint": str(state_path)}


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def saved_module(num_classes: int, in_channels: int, *, file: str, module_sha256: Sha256, name: str = "") -> nn.Module:
    """The builder for a saved user module (an architecture named by import path). The model spec's
    `head`, `mean` and `std` wrap it like any other network (models/spec.py)."""
    path = Path(file)
    root = user_models_dir().resolve()
    if root not in path.resolve().parents:
        raise UserError(f"a saved user model must lie in {root} (the model cache), not {path}", field="model.file")
    if not path.is_file():
        raise UserError(f"saved user model not found: {path} (the model cache was cleared? save it again)",
                        field="model.file")
    if file_sha256(path) != module_sha256:
        raise UserError(f"{path} does not have the sha256 the model spec names; refusing to unpickle it",
                        field="model.module_sha256")
    net = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(net, nn.Module):
        raise UserError(f"{path} does not hold an nn.Module", field="model.file")
    return net
