"""`open_clip:<model>`: a CLIP model of open_clip as a zero-shot classifier (an optional extra: `pip install 'shiftbench[clip]'`).

Built as open_clip.CLIP from the model's config (what open_clip.create_model builds for CLIP's
own text transformer; configs with a custom or Hugging Face text tower are refused), with
random weights and open_clip's SimpleTokenizer, never a download. The weights come from a model
manifest or a checkpoint file: a state dict in open_clip's parameter names, or OpenAI's
TorchScript release (its `input_resolution`, `context_length`, `vocab_size` and `attn_mask`
entries are settings and a derived mask, not weights: dropped, as open_clip drops them).
Parameters:
  pretrained    the open_clip pretrained tag the weights are (e.g. openai, laion2b_s34b_b79k):
                recorded, and it picks that tag's preprocessing (mean, std, interpolation)
  quick_gelu    QuickGELU activations, as OpenAI's weights were trained with (open_clip's
                `-quickgelu` model names)
  config        an open_clip model config ({embed_dim, vision_cfg, text_cfg}) for a model
                open_clip does not ship (the tiny test models); the name is then only a label
  class_names   a data manifest whose `class_names` to use, or a list (default: the dataset's)
  templates     imagenet | imagenet_simple | cifar | a list of strings with one '{}'
The head (models/zero_shot.py) is computed from the text tower once the weights are in
(`weights_loaded`), cached by (weights sha256, class names, templates). Preprocessing is the
tag's: resize the shorter side to the image size (bicubic for OpenAI's), centre crop, the tag's
mean and std (OpenAI's by default), inside the model, so shifts act on the benchmark's own images.
"""

from __future__ import annotations

import copy
import importlib.util
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import UserError
from ...core.lazy import import_extra, missing_extra
from ..classifier import Classifier
from ..preprocessing import Preprocessing
from ..zero_shot import cached_class_vectors, class_names_of, class_vectors, templates_of
from .registry import register_family

def _open_clip():
    return import_extra("open_clip", "clip", field="model.arch")


class ZeroShotHead(nn.Module):
    """logits = features @ weight.T: rows are logit_scale * the class vectors. Not saved in state
    dicts: it is computed from the text tower, never stored with the weights."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_classes, dim), persistent=False)
        self.ready = False

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.ready:
            raise RuntimeError("the zero-shot head is built once the CLIP weights are loaded (weights_loaded)")
        return features @ self.weight.T.to(features.dtype)


class CLIPZeroShot(nn.Module):
    """The open_clip model (`clip`, its own parameter names) and a zero-shot head on its normalised image features."""

    checkpoint_prefix = "clip."  # published files hold the CLIP model's own state dict
    # entries of TorchScript releases that are settings or derived masks, not weights (open_clip drops them too)
    ignored_checkpoint_keys = ("input_resolution", "context_length", "vocab_size", "attn_mask")

    def __init__(self, clip: nn.Module, tokenizer, class_names: Sequence[str], templates: Sequence[str]):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.class_names = tuple(class_names)
        self.templates = tuple(templates)
        dim = clip.text_projection.shape[-1] if isinstance(clip.text_projection, torch.Tensor) else \
            clip.text_projection.out_features
        self.head = ZeroShotHead(len(self.class_names), dim)

    def __deepcopy__(self, memo):
        """Every cell adapts its own copy of the model; the tokenizer (read-only BPE tables, about 1.5 s to
        copy on a CPU) is shared by the copies."""
        memo[id(self.tokenizer)] = self.tokenizer
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        clone.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return clone

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings of preprocessed images."""
        if x.shape[1] == 1:  # grey images: the three channels CLIP expects
            x = x.expand(-1, 3, -1, -1)
        return F.normalize(self.clip.encode_image(x), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        device = self.clip.logit_scale.device
        return self.clip.encode_text(self.tokenizer(texts).to(device))

    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().detach()

    def weights_loaded(self, sha256: str) -> None:
        """Compute the head from the text tower now in place (or read it from the cache)."""
        vectors = cached_class_vectors(sha256, self.class_names, self.templates,
                                       lambda: class_vectors(self.encode_text, self.class_names, self.templates))
        with torch.no_grad():
            self.head.weight.copy_(self.logit_scale() * vectors.to(self.head.weight.device))
        self.head.ready = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.image_features(x))


def tag_preprocessing(open_clip, name: str, pretrained: str, image_size: int) -> Preprocessing:
    """open_clip's evaluation transform for this model and tag as our Preprocessing (resize the shorter side, centre crop)."""
    from open_clip.transform import PreprocessCfg, merge_preprocess_dict

    cfg = merge_preprocess_dict(PreprocessCfg(), open_clip.get_pretrained_cfg(name, pretrained) if pretrained else {})
    if cfg.get("resize_mode", "shortest") != "shortest":
        raise UserError(f"open_clip:{name} / {pretrained} resizes by '{cfg['resize_mode']}', which shiftbench's "
                        "preprocessing (shorter side + centre crop) does not do", field="model.pretrained")
    interpolation = cfg["interpolation"] if cfg["interpolation"] in ("bilinear", "bicubic") else "bicubic"
    return Preprocessing(mean=list(cfg["mean"]), std=list(cfg["std"]), input_size=image_size, resize=image_size,
                         interpolation=interpolation)


def make(name: str):
    if importlib.util.find_spec("open_clip") is None:  # said when the benchmark is checked, without importing it
        raise UserError(missing_extra("open_clip", "clip"), field="model.arch")

    def build(num_classes: int, classes: tuple[str, ...] = (), pretrained: str = "", quick_gelu: bool = False,
              config: dict[str, Any] | None = None, class_names: str | list[str] | None = None,
              templates: str | list[str] = "imagenet") -> Classifier:
        open_clip = _open_clip()
        names = class_names_of(class_names, classes or [str(k) for k in range(num_classes)])
        if config is None:
            if name not in open_clip.list_models():
                raise UserError(f"open_clip has no model config '{name}' (open_clip.list_models()); give `config` "
                                "for a model of your own", field="model.arch")
            config = open_clip.get_model_config(name)
        config = dict(config)
        text = config.get("text_cfg", {})
        if config.pop("custom_text", False) or {"hf_model_name", "hf_tokenizer_name"} & set(text) \
                or "multimodal_cfg" in config:
            raise UserError(f"open_clip:{name} has a custom or Hugging Face text tower; only CLIP's own text "
                            "transformer is supported", field="model.arch")
        quick_gelu = quick_gelu or bool(config.pop("quick_gelu", False))
        try:  # what open_clip.create_model builds for such a config, without moving it to a device
            clip = open_clip.CLIP(**config, quick_gelu=quick_gelu)
        except (TypeError, ValueError, KeyError, AssertionError) as e:
            raise UserError(f"not an open_clip model config ({type(e).__name__}: {e})", field="model.config") from None
        tokenizer = open_clip.SimpleTokenizer(context_length=config.get("text_cfg", {}).get("context_length", 77))
        size = clip.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        prep = tag_preprocessing(open_clip, name, pretrained, int(size))
        return Classifier(CLIPZeroShot(clip, tokenizer, names, templates_of(templates)), head="head",
                          preprocessing=prep)

    build.__doc__ = f"open_clip model {name} with a zero-shot head (weights from a file or manifest, never downloaded)"
    build.__code_depends_on__ = lambda: (_open_clip().CLIP,)
    return build


register_family("open_clip", make, lambda: None, "open_clip:<model>",
                "an open_clip CLIP model as a zero-shot classifier, e.g. open_clip:ViT-B-32 (needs the [clip] extra)")
