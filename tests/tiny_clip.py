"""A tiny open_clip model with random weights, saved as a model manifest's weights file (for the CLIP tests)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

open_clip = pytest.importorskip("open_clip", reason="open_clip is not installed (the [clip] extra)")

from shiftbench.core.hashing import file_sha256  # noqa: E402

# ViT image tower on 24 px images, a one-block text tower; the real tokenizer (vocabulary 49,408)
TINY_CONFIG = {"embed_dim": 16,
               "vision_cfg": {"image_size": 24, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
               "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def tiny_clip(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    clip = open_clip.CLIP(**TINY_CONFIG).eval()
    with torch.no_grad():  # random weights scaled so that image features, predictions and entropies vary
        clip.token_embedding.weight.normal_(0, 1)  # (at init every image gets nearly the same feature)
        for block in clip.visual.transformer.resblocks:
            block.attn.in_proj_weight.mul_(5)
            block.attn.out_proj.weight.mul_(5)
        clip.visual.class_embedding.mul_(0.1)
        clip.logit_scale.fill_(math.log(100))  # exp = 100, the literal TDA's code and the CLIP notebook use
    return clip


def tiny_clip_manifest(project: Path, weights: Path, name: str = "tiny-clip",
                       templates: list[str] | str = ("a photo of a {}.", "a {}"), seed: int = 0) -> torch.nn.Module:
    """Save a tiny CLIP's state dict at `weights` and write data_manifests/NAME.yaml for it (file:// URL, sha256)."""
    clip = tiny_clip(seed)
    torch.save(clip.state_dict(), weights)
    manifest = {"name": name, "kind": "model", "license": "MIT",
                "files": [{"path": f"{name}.pt", "url": weights.as_uri(), "sha256": file_sha256(weights)}],
                "model": {"arch": "open_clip:tiny",
                          "params": {"pretrained": "random", "config": TINY_CONFIG,
                                     "templates": templates if isinstance(templates, str) else list(templates)},
                          "preprocessing": {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD), "input_size": 24,
                                            "resize": 24, "interpolation": "bicubic"}}}
    (project / "data_manifests" / f"{name}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return clip


def direct_zero_shot_logits(clip, images: torch.Tensor, class_names, templates) -> torch.Tensor:
    """The published recipe, written out with open_clip's own pieces: images already at the input size."""
    tokenizer = open_clip.SimpleTokenizer(context_length=TINY_CONFIG["text_cfg"]["context_length"])
    with torch.no_grad():
        weights = open_clip.build_zero_shot_classifier(clip, tokenizer, class_names, templates, device="cpu")
        mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
        features = clip.encode_image((images - mean) / std, normalize=True)
        return clip.logit_scale.exp() * features @ weights
