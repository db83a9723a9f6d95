"""What a source model has that some methods need (Method.requires): BatchNorm layers, a CLIP zero-shot head.

Read from the architecture built on the meta device (no memory, no weights, nothing run), once
per model spec, so validation can say that a method cannot run on a benchmark's model before
anything is loaded: a BatchNorm-only method on a LayerNorm ViT, TPT on a CNN.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from ..core.hashing import canonical_json

# trait -> how a model that lacks it is described
LACKS = {"batchnorm": "has no BatchNorm layer",
         "clip": "is not a CLIP zero-shot model (model: {arch: 'open_clip:MODEL', ...})"}


def traits_of(model: nn.Module) -> frozenset[str]:
    found = set()
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        found.add("batchnorm")
    if callable(getattr(getattr(model, "net", None), "encode_text", None)):
        found.add("clip")
    return frozenset(found)


def model_traits(spec: dict[str, Any], num_classes: int) -> frozenset[str] | None:
    """The traits of the (resolved) model spec's architecture; None when it cannot be built here
    (a user's builder failing on the meta device): then nothing is ruled out."""
    return _traits(canonical_json(spec), num_classes)


@lru_cache(maxsize=64)
def _traits(spec_json: str, num_classes: int) -> frozenset[str] | None:
    import json

    from .train import build_classifier

    try:
        with torch.device("meta"):
            return traits_of(build_classifier(json.loads(spec_json), num_classes, 3))
    except Exception:  # a builder that needs real tensors, or a spec another check rejects: no verdict here
        return None
