"""What the CLIP methods need of a source model: its CLIP network, normalised image features, prompt text features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.architectures.open_clip_models import CLIPZeroShot
from ...models.classifier import Classifier

NEEDS = "a CLIP zero-shot model (model: {arch: 'open_clip:MODEL', weights: ...})"


def clip_network(model: nn.Module) -> CLIPZeroShot:
    net = getattr(model, "net", None)
    if not isinstance(model, Classifier) or not isinstance(net, CLIPZeroShot):
        raise TypeError(f"this method needs {NEEDS}, got {type(net or model).__name__}")
    return net


def image_features(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """L2-normalised image embeddings of images in [0, 1] (the model's own preprocessing applied)."""
    return clip_network(model).image_features(model.preprocess(x))


def text_features_from_embeddings(clip: nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's encode_text from token embeddings (C, L, W) instead of token ids, L2-normalised: the
    text tower TPT's prompt context is fed through. `tokens` (C, L) locate each prompt's end token."""
    x = embeddings + clip.positional_embedding.to(embeddings.dtype)
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    projection = clip.text_projection
    x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    return F.normalize(x, dim=-1)
