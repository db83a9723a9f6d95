"""`timm:<name>`: a model of PyTorch Image Models, an optional extra (`pip install 'shiftbench[timm]'`).

Built with pretrained=False (never a download): the weights come from a checkpoint file or
a model manifest. A name may carry timm's pretrained tag (`timm:vit_small_patch14_dinov2.lvd142m`):
the tag chooses the pretrained_cfg, hence the preprocessing, as in timm. The head is the layer timm's pretrained_cfg names as `classifier`;
preprocessing defaults to that cfg's mean, std, input size, crop_pct (resize =
floor(input size / crop_pct), as timm's evaluation transform) and interpolation.
"""

from __future__ import annotations

import math

from ...core.lazy import import_extra
from ..classifier import Classifier, last_linear
from ..preprocessing import Preprocessing
from .registry import register_family

def _timm():
    return import_extra("timm", "timm", field="model.arch")


def model_names() -> list[str]:
    """Architectures, and architectures with a pretrained tag (vit_small_patch14_dinov2.lvd142m): a tag picks
    which pretrained_cfg, and so which preprocessing, the model gets."""
    timm = _timm()
    return sorted(set(timm.list_models()) | set(timm.list_pretrained()))


def make(name: str):
    timm = _timm()

    def build(num_classes: int, in_channels: int) -> Classifier:
        net = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_channels)
        cfg = dict(getattr(net, "pretrained_cfg", None) or {})
        size = cfg.get("input_size", (3, 224, 224))[-1]
        crop_pct = cfg.get("crop_pct") or 1.0
        interpolation = cfg.get("interpolation") if cfg.get("interpolation") in ("bilinear", "bicubic") else "bilinear"
        prep = Preprocessing(mean=list(cfg.get("mean", (0.485, 0.456, 0.406))),
                             std=list(cfg.get("std", (0.229, 0.224, 0.225))), input_size=size,
                             resize=math.floor(size / crop_pct), interpolation=interpolation)
        return Classifier(net, head=last_linear(net, (cfg.get("classifier") or "", "")), preprocessing=prep)

    build.__doc__ = f"timm model {name} (weights from a file or manifest, never downloaded)"
    build.__code_depends_on__ = (timm.create_model, timm.models.model_entrypoint(name))
    return build


register_family("timm", make, model_names, "timm:<name>",
                "a PyTorch Image Models architecture, e.g. timm:resnet18 (needs the [timm] extra)")
