"""The `model:` mapping of a benchmark: an architecture with its parameters, where its weights come from, its preprocessing.

  arch          a registered architecture, a family member (torchvision:resnet50), or an import path
  weights       a model manifest: fills arch, its parameters, key_map and preprocessing
  checkpoint    a weights file (relative paths start at the project root); with neither,
                the suite trains the model (training recipe) and caches it
  backbone      a model manifest or a file holding every weight but the head's: loaded, then
                the training recipe fits the rest (linear_probe: the head on frozen features)
  key_map       {old prefix: new prefix} renames of the checkpoint's keys
  head          the classifier layer's name, when the architecture's default is not it
  mean, std, input_size, resize, interpolation   preprocessing (models/preprocessing.py)
every other field is a parameter of the architecture. `resolve` fills a manifest's fields in
(what is written wins for preprocessing; a different arch or parameter is an error), so the
resolved mapping, which enters every cell's key, holds everything that decides the model.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..core.errors import UserError
from ..core.params import short_repr
from .architectures import check_arch_params
from .manifest import load_model_manifest
from .preprocessing import FIELDS as PREPROCESSING
from .preprocessing import Preprocessing

SOURCES = ("weights", "checkpoint")
RESERVED = ("arch", *SOURCES, "backbone", "key_map", "head", *PREPROCESSING)
DEFAULT_ARCH = "small_cnn"


def split(spec: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(arch, architecture parameters, the reserved fields other than arch)."""
    spec = dict(spec)
    arch = spec.pop("arch", DEFAULT_ARCH)
    reserved = {k: spec.pop(k) for k in RESERVED if k in spec}
    return arch, spec, reserved


def preprocessing_overrides(reserved: dict[str, Any]) -> dict[str, Any]:
    return {k: reserved[k] for k in PREPROCESSING if k in reserved}


def resolve(model: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """The model mapping with a manifest's fields filled in, every field checked."""
    if not isinstance(model, dict):
        raise UserError(f"must be a mapping, got {short_repr(model)}", source=source, field="model")
    spec = dict(model)
    if all(spec.get(k) is not None for k in SOURCES):
        raise UserError("give weights (a model manifest) or checkpoint (a file), not both", source=source,
                        field="model.checkpoint")
    if spec.get("backbone") is not None and any(spec.get(k) is not None for k in SOURCES):
        raise UserError("a backbone is trained on (its head fitted); give it without weights or checkpoint",
                        source=source, field="model.backbone")
    for key in (*SOURCES, "backbone"):
        if key in spec and not isinstance(spec[key], str):
            raise UserError(f"must be a {'manifest name' if key == 'weights' else 'file path'}, got "
                            f"{short_repr(spec[key])}", source=source, field=f"model.{key}")
    if spec.get("weights"):
        _, card = load_model_manifest(spec["weights"], referrer=source)
        if spec.setdefault("arch", card.arch) != card.arch:
            raise UserError(f"'{spec['arch']}' but the weights '{spec['weights']}' are for '{card.arch}'",
                            source=source, field="model.arch")
        for k, v in card.params.items():
            if spec.setdefault(k, v) != v:
                raise UserError(f"{short_repr(spec[k])} but the weights '{spec['weights']}' have {k} = {short_repr(v)}",
                                source=source, field=f"model.{k}")
        if card.key_map:
            spec.setdefault("key_map", card.key_map)
        for k, v in card.preprocessing.model_dump(exclude_unset=True).items():
            spec.setdefault(k, v)
    arch, params, reserved = split(spec)
    check_arch_params(arch, params, source=source)
    key_map = reserved.get("key_map", {})
    if not isinstance(key_map, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in key_map.items()):
        raise UserError(f"must map checkpoint key prefixes to new ones, got {short_repr(key_map)}", source=source,
                        field="model.key_map")
    if "head" in reserved and not isinstance(reserved["head"], str):
        raise UserError(f"must be a layer name, got {short_repr(reserved['head'])}", source=source, field="model.head")
    preprocessing(spec, source=source)
    return spec


def preprocessing(spec: dict[str, Any], *, base: Preprocessing | None = None, source: str | None = None) -> Preprocessing:
    """`base` (the architecture's own) with the spec's preprocessing fields written over it."""
    overrides = preprocessing_overrides(split(spec)[2])
    try:
        return (base or Preprocessing()).with_(**overrides)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(map(str, err["loc"]))
        raise UserError(f"{err['msg']} (got {short_repr(err.get('input'))})", source=source,
                        field=f"model.{loc}" if loc else "model") from None
