"""Train the source model once and cache it under the cache dir, keyed by a content hash.

The key covers everything that decides the weights: the training data's sha256,
the architecture and its parameters, the training recipe, and the seed. The
checkpoint's own sha256 goes into every result record. A benchmark may instead
name a trained checkpoint (`model: {arch: ..., checkpoint: path}`): it is loaded
as is, nothing is trained, and its file's sha256 is the model's identity.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.hashing import config_hash, file_sha256
from ..core.imageset import ImageSet
from ..core.paths import cache_dir
from ..run.store import atomic_write_bytes, atomic_write_text
from .recipes import get_recipe
from .small_cnn import build_model


@dataclass
class SourceModel:
    model: nn.Module
    key: str
    checkpoint: Path
    sha256: str
    info: dict[str, Any]


def model_key(train: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int) -> str:
    return config_hash({"data": train.sha256(), "arch": arch, "recipe": recipe, "seed": seed}, length=24)


def get_source_model(train: ImageSet, val: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int,
                     device: torch.device, progress: bool = True) -> SourceModel:
    """Load the cached checkpoint for this (data, arch, recipe, seed), training it first if missing."""
    arch = dict(arch)
    name = arch.pop("arch", "small_cnn")
    if checkpoint := arch.pop("checkpoint", None):
        return load_checkpoint(checkpoint, name, arch, train, device)
    key = model_key(train, {"arch": name, **arch}, recipe, seed)
    folder = cache_dir() / "models"
    ckpt = folder / f"{key}.pt"
    meta = folder / f"{key}.json"
    torch.manual_seed(seed)  # before build_model: the initial weights must depend on the seed alone, not on process history
    model = build_model(name, train.num_classes, train.images.shape[1], **arch)
    if not (ckpt.exists() and meta.exists()):
        fit = get_recipe(recipe.get("name", "erm"))
        info = fit(model, train, val, seed=seed, device=device, progress=progress,
                   **{k: v for k, v in recipe.items() if k != "name"})
        model.cpu()
        folder.mkdir(parents=True, exist_ok=True)
        save_state_dict(model.state_dict(), ckpt)
        info.update(key=key, arch=name, arch_params=arch, recipe=recipe, seed=seed, data_sha256=train.sha256())
        atomic_write_text(meta, json.dumps(info, indent=2))
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    model.to(device).eval()
    return SourceModel(model, key, ckpt, file_sha256(ckpt), json.loads(meta.read_text()))


def load_checkpoint(checkpoint: str, name: str, arch: dict[str, Any], train: ImageSet,
                    device: torch.device) -> SourceModel:
    """A user's trained weights (a state_dict, or a dict holding one under 'state_dict'), relative paths
    taken from the project root."""
    from ..core.errors import UserError
    from ..core.paths import project_root

    path = Path(checkpoint).expanduser()
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}", field="model.checkpoint")
    model = build_model(name, train.num_classes, train.images.shape[1], **arch)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    except Exception as e:  # unpickling or shape errors: say which file and why, in one line
        raise UserError(f"cannot load {path} into {name} {arch}: {str(e).splitlines()[0]}",
                        field="model.checkpoint") from None
    sha = file_sha256(path)
    key = config_hash({"checkpoint": sha, "arch": {"arch": name, **arch}}, length=24)
    info = {"key": key, "arch": name, "arch_params": arch, "checkpoint": str(path), "trained_by": "user"}
    return SourceModel(model.to(device).eval(), key, path, sha, info)



def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    """torch.save, atomically: a crash never leaves a truncated checkpoint behind."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def evaluate_accuracy(model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 256) -> float:
    from ..evaluate.stream import source_logits

    if len(data) == 0:
        return 0.0
    return (source_logits(model, data, batch_size, device).argmax(1) == data.labels).double().mean().item()


def progress_bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, unit="epoch")
