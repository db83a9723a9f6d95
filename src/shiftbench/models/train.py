"""The source model of a benchmark: trained once and cached by content hash, or loaded from published weights.

The cache key covers everything that decides the weights: the training data's sha256, the
architecture and its parameters, the training recipe, the seed, and the code of the
architecture and recipe. The checkpoint's own sha256 goes into every result record. A
benchmark may instead name weights: a model manifest (`model: {weights: cifar10-resnet20}`)
or a file (`model: {arch: ..., checkpoint: path}`): they are loaded as they are, nothing is
trained, and the file's sha256 is the model's identity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.code_identity import code_hash
from ..core.errors import UserError, warn
from ..core.files import atomic_write_text, move_aside
from ..core.hashing import config_hash, file_sha256
from ..core.imageset import ImageSet
from ..core.paths import cache_dir, project_root
from . import spec as model_spec
from .architectures import ARCHITECTURES, build_model
from .checkpoint import load_weights, save_state_dict
from .classifier import Classifier
from .manifest import load_model_manifest, weights_file
from .recipes import RECIPES


@dataclass
class SourceModel:
    model: Classifier
    key: str
    checkpoint: Path
    sha256: str
    info: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        """What a record says about its model beyond the checkpoint sha256."""
        keys = ("trained_by", "arch", "arch_params", "weights", "url", "license", "published", "checkpoint_file")
        return {"preprocessing": self.model.preprocessing.record(), "head": self.model.head_name,
                **{k: self.info[k] for k in keys if k in self.info}}


def model_key(train: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int) -> str:
    code = code_hash([ARCHITECTURES.get(arch["arch"]), RECIPES.get(recipe.get("name", "erm"))])
    return config_hash({"data": train.sha256(), "arch": arch, "recipe": recipe, "seed": seed, "code": code},
                       length=24)


def build_classifier(spec: dict[str, Any], num_classes: int, in_channels: int,
                     classes: tuple[str, ...] = ()) -> Classifier:
    """The architecture of a (resolved) model spec, its head and preprocessing as the spec says."""
    arch, params, reserved = model_spec.split(spec)
    model = build_model(arch, num_classes, in_channels, classes, **params)
    if "head" in reserved:
        try:
            model = Classifier(model.net, head=reserved["head"], preprocessing=model.preprocessing)
        except AttributeError:
            raise UserError(f"'{arch}' has no layer '{reserved['head']}'", field="model.head") from None
    model.set_preprocessing(model_spec.preprocessing(spec, base=model.preprocessing))
    head = model.head
    if isinstance(head, nn.Linear) and head.out_features != num_classes:
        raise UserError(f"the model's head '{model.head_name}' has {head.out_features} outputs, the benchmark has "
                        f"{num_classes} classes", field="model.head")
    return model


def get_source_model(train: ImageSet, val: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int,
                     device: torch.device, progress: bool = True) -> SourceModel:
    """Load the model's weights (a manifest's or a file's), or the cached checkpoint for this
    (data, arch, recipe, seed), training it first if missing."""
    if arch.get("weights") or arch.get("checkpoint"):
        return load_pretrained(arch, train, device)
    spec = dict(arch)
    name = spec.pop("arch", model_spec.DEFAULT_ARCH)
    backbone = backbone_file(spec["backbone"]) if spec.get("backbone") else None
    key = model_key(train, {"arch": name, **spec, **backbone_identity(backbone)}, recipe, seed)
    folder = cache_dir() / "models"
    ckpt = folder / f"{key}.pt"
    meta = folder / f"{key}.json"
    if ckpt.exists() or meta.exists():  # a cached model that does not load is set aside and trained again
        heal_cached(ckpt, meta, lambda: build_classifier(arch, train.num_classes, train.images.shape[1], train.classes))
    torch.manual_seed(seed)  # before building: the initial weights must depend on the seed alone, not on process history
    model = build_classifier(arch, train.num_classes, train.images.shape[1], train.classes)
    if not (ckpt.exists() and meta.exists()):
        if backbone:
            load_weights(model.net, backbone[0], what=f"{name} (backbone)", field="model.backbone",
                         key_map=arch.get("key_map"), except_prefix=f"{model.head_name}.")
        fit = RECIPES.get(recipe.get("name", "erm"), field="training")
        info = fit(model, train, val, seed=seed, device=device, progress=progress,
                   **{k: v for k, v in recipe.items() if k != "name"})
        model.cpu()
        save_state_dict(model.net.state_dict(), ckpt)
        info.update(key=key, arch=name, arch_params=spec, recipe=recipe, seed=seed, data_sha256=train.sha256(),
                    **backbone_identity(backbone))
        atomic_write_text(meta, json.dumps(info, indent=2))
    load_weights(model.net, ckpt)
    sha = file_sha256(ckpt)
    weights_loaded(model, sha)
    model.to(device).eval()
    info = json.loads(meta.read_text())
    info.setdefault("trained_by", "shiftbench")
    return SourceModel(model, key, ckpt, sha, info)


def backbone_file(name: str) -> tuple[Path, str]:
    """A backbone's weights: a model manifest's file (verified against its sha256) or a file; with its sha256."""
    from ..data.manifest import manifests_dir

    if (manifests_dir() / f"{name}.yaml").is_file():
        return weights_file(*load_model_manifest(name))
    path = Path(name).expanduser()
    path = path if path.is_absolute() else project_root() / path
    if not path.is_file():
        raise UserError(f"backbone file not found: {path} (nor a model manifest '{name}')", field="model.backbone")
    return path, file_sha256(path)


def backbone_identity(backbone: tuple[Path, str] | None) -> dict[str, str]:
    """What enters the cache key and the info of a model trained on a backbone: the backbone file's sha256."""
    return {"backbone_sha256": backbone[1]} if backbone else {}


def weights_loaded(model: Classifier, sha256: str) -> None:
    """A network whose head is computed from its weights (a CLIP zero-shot head, from the text tower)
    defines weights_loaded(sha256) and builds it now; sha256 (the weights file's) keys its cache."""
    hook = getattr(model.net, "weights_loaded", None)
    if callable(hook):
        hook(sha256)


def cached_model(train: ImageSet, arch: dict[str, Any], recipe: dict[str, Any], seed: int) -> Path | None:
    """The cache's checkpoint of this model if there is one (nothing is loaded), None for a user's checkpoint."""
    if arch.get("weights") or arch.get("checkpoint"):
        return None
    spec = dict(arch)
    name = spec.pop("arch", model_spec.DEFAULT_ARCH)
    backbone = backbone_file(spec["backbone"]) if spec.get("backbone") else None
    key = model_key(train, {"arch": name, **spec, **backbone_identity(backbone)}, recipe, seed)
    ckpt = cache_dir() / "models" / f"{key}.pt"
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


def load_pretrained(spec: dict[str, Any], train: ImageSet, device: torch.device) -> SourceModel:
    """Weights named by a model manifest (verified against its sha256) or a file; nothing is trained."""
    spec = model_spec.resolve(spec)  # a benchmark's spec is resolved already; a script's may not be
    arch, params, reserved = model_spec.split(spec)
    info: dict[str, Any] = {"arch": arch, "arch_params": params}
    if reserved.get("weights"):
        manifest, card = load_model_manifest(reserved["weights"])
        path, sha = weights_file(manifest, card)
        if card.num_classes is not None and card.num_classes != train.num_classes:
            raise UserError(f"the weights '{manifest.name}' predict {card.num_classes} classes, the dataset has "
                            f"{train.num_classes}", field="model.weights")
        entry = next(f for f in manifest.files if path.name == Path(f.path).name)
        info.update(trained_by="published", weights=manifest.name, url=entry.url, license=manifest.license,
                    published=card.published.model_dump() if card.published else None)
        field = "model.weights"
    else:
        path = Path(reserved["checkpoint"]).expanduser()
        path = path if path.is_absolute() else project_root() / path
        if not path.is_file():
            raise UserError(f"checkpoint file not found: {path}", field="model.checkpoint")
        sha = file_sha256(path)
        info["trained_by"] = "user"
        field = "model.checkpoint"
    model = build_classifier(spec, train.num_classes, train.images.shape[1], train.classes)
    load_weights(model.net, path, what=f"{arch} {params}" if params else arch, field=field,
                 key_map=reserved.get("key_map"))
    weights_loaded(model, sha)
    key = config_hash({"checkpoint": sha, "model": spec}, length=24)
    info.update(key=key, checkpoint=str(path), checkpoint_file=path.name)
    return SourceModel(model.to(device).eval(), key, path, sha, info)
