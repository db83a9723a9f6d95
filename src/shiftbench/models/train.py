"""The source model of a benchmark: trained once and cached by content hash, or loaded from a checkpoint.

The cache key covers everything that decides the weights: the training data's sha256, the
architecture and its parameters, the training recipe, the seed, and the code of the
architecture and recipe. The checkpoint's own sha256 goes into every result record. A
benchmark may instead name a trained checkpoint (`model: {arch: ..., checkpoint: path}`): it
is loaded as is, nothing is trained, and its file's sha256 is the model's identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.code_identity import code_hash
from ..core.errors import UserError, warn
from ..core.files import atomic_write_text, move_aside
from ..core.hashing import config_hash, file_sha256
from ..core.imageset import ImageSet
from ..core.paths import cache_dir, project_root
from .architectures import ARCHITECTURES, build_model
from .checkpoint import load_weights, save_state_dict
from .classifier import Classifier
from .recipes import RECIPES


@dataclass
class SourceModel:
    model: Classifier
    key: str
    checkpoint: Path
    sha256: str
    info: dict[str, Any]


def model_key(train: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int) -> str:
    code = code_hash([ARCHITECTURES.get(arch["arch"]), RECIPES.get(recipe.get("name", "erm"))])
    return config_hash({"data": train.sha256(), "arch": arch, "recipe": recipe, "seed": seed, "code": code},
                       length=24)


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
    if ckpt.exists() or meta.exists():  # a cached model that does not load is set aside and trained again
        heal_cached(ckpt, meta, lambda: build_model(name, train.num_classes, train.images.shape[1], **arch))
    torch.manual_seed(seed)  # before build_model: the initial weights must depend on the seed alone, not on process history
    model = build_model(name, train.num_classes, train.images.shape[1], **arch)
    if not (ckpt.exists() and meta.exists()):
        fit = RECIPES.get(recipe.get("name", "erm"), field="training")
        info = fit(model, train, val, seed=seed, device=device, progress=progress,
                   **{k: v for k, v in recipe.items() if k != "name"})
        model.cpu()
        save_state_dict(model.net.state_dict(), ckpt)
        info.update(key=key, arch=name, arch_params=arch, recipe=recipe, seed=seed, data_sha256=train.sha256())
        atomic_write_text(meta, json.dumps(info, indent=2))
    load_weights(model.net, ckpt)
    model.to(device).eval()
    return SourceModel(model, key, ckpt, file_sha256(ckpt), json.loads(meta.read_text()))


def cached_model(train: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int) -> Path | None:
    """The cache's checkpoint of this model if there is one (nothing is loaded), None for a user's checkpoint."""
    arch = dict(arch)
    name = arch.pop("arch", "small_cnn")
    if arch.pop("checkpoint", None):
        return None
    ckpt = cache_dir() / "models" / f"{model_key(train, {'arch': name, **arch}, recipe, seed)}.pt"
    return ckpt if ckpt.exists() and ckpt.with_suffix(".json").exists() else None


def heal_cached(ckpt: Path, meta: Path, build) -> None:
    """Move a cached checkpoint and its info aside, with a one-line warning, unless both load cleanly
    (into a fresh network from build()); the caller then trains the model again."""
    try:
        if not ckpt.exists() or not meta.exists():
            raise UserError("its weights or its info file is missing")
        load_weights(build().net, ckpt)
        if not isinstance(json.loads(meta.read_text()), dict):
            raise ValueError("the info file is not a JSON object")
    except (UserError, ValueError, OSError) as e:
        moved = [move_aside(p).name for p in (ckpt, meta) if p.exists()]
        warn(f"cached source model {ckpt} cannot be loaded ({str(e)[:300]}); moved aside to "
             f"{', '.join(moved) or 'nothing'}, training it again")


def load_checkpoint(checkpoint: str, name: str, arch: dict[str, Any], train: ImageSet,
                    device: torch.device) -> SourceModel:
    """A user's trained weights; relative paths start at the project root."""
    path = Path(checkpoint).expanduser()
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}", field="model.checkpoint")
    model = build_model(name, train.num_classes, train.images.shape[1], **arch)
    load_weights(model.net, path, what=f"{name} {arch}")
    sha = file_sha256(path)
    key = config_hash({"checkpoint": sha, "arch": {"arch": name, **arch}}, length=24)
    info = {"key": key, "arch": name, "arch_params": arch, "checkpoint": str(path), "trained_by": "user"}
    return SourceModel(model.to(device).eval(), key, path, sha, info)
