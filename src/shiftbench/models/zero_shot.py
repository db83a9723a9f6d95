"""Zero-shot classifier heads for contrastive image-text models (CLIP): class names x prompt templates -> weights.

The published recipe (Radford et al. 2021, the CLIP notebook "Prompt Engineering for ImageNet";
open_clip's build_zero_shot_classifier): for each class, the text features of every template
filled with its name, each L2-normalised, averaged over the templates and normalised again.
Logits are the model's logit scale times normalised image features @ those class vectors, so
the head is a linear layer without bias whose rows are logit_scale * class vector.

Templates: `imagenet` (OpenAI's 80 ImageNet templates), `imagenet_simple` (the 7 the CLIP
authors later recommended, also used by TDA on ImageNet/-A/-V2), `cifar` (the 18 of
openai/CLIP data/prompts.md for CIFAR-10/100), or a list of strings with one `{}`.
Class names: a data manifest's `class_names` (readable names; ImageNet's wnids are not), a
list, or the dataset's own class names. Heads are cached on disk by (model weights sha256,
class names, templates): the text tower runs once per model and label set.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..core.errors import UserError
from ..core.files import atomic_write_bytes
from ..core.hashing import config_hash
from ..core.paths import cache_dir

# openai/CLIP data/prompts.md, section CIFAR10 (the same 18 for CIFAR100)
CIFAR_TEMPLATES = (
    "a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
    "a low contrast photo of a {}.", "a high contrast photo of a {}.", "a bad photo of a {}.",
    "a good photo of a {}.", "a photo of a small {}.", "a photo of a big {}.", "a photo of the {}.",
    "a blurry photo of the {}.", "a black and white photo of the {}.", "a low contrast photo of the {}.",
    "a high contrast photo of the {}.", "a bad photo of the {}.", "a good photo of the {}.",
    "a photo of the small {}.", "a photo of the big {}.",
)
TEMPLATE_SETS = ("imagenet", "imagenet_simple", "cifar")


def templates_of(spec: str | Sequence[str]) -> tuple[str, ...]:
    """The prompt templates a `templates:` field names (format strings with one '{}')."""
    if isinstance(spec, str):
        if spec == "cifar":
            return CIFAR_TEMPLATES
        if spec in ("imagenet", "imagenet_simple"):
            from open_clip import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

            chosen = OPENAI_IMAGENET_TEMPLATES if spec == "imagenet" else SIMPLE_IMAGENET_TEMPLATES
            return tuple(t("{}") for t in chosen)
        raise UserError(f"unknown template set '{spec}'; known: {', '.join(TEMPLATE_SETS)}, or a list of "
                        "strings with one '{}'", field="model.templates")
    templates = tuple(spec)
    bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
    if not templates or bad:
        raise UserError(f"templates must be strings with exactly one '{{}}' (the class name); got {bad[:2] or 'none'}",
                        field="model.templates")
    return templates


def class_names_of(spec: str | Sequence[str] | None, dataset_classes: Sequence[str]) -> tuple[str, ...]:
    """Readable class names: a data manifest's `class_names`, a list, or (None) the dataset's own names."""
    if spec is None:
        names = tuple(dataset_classes)
    elif isinstance(spec, str):
        from ..data.manifest import load_manifest

        manifest = load_manifest(spec, field="model.class_names")
        if not manifest.class_names:
            raise UserError(f"the data manifest '{spec}' lists no class_names", source=manifest.source,
                            field="class_names")
        names = tuple(manifest.class_names)
    else:
        names = tuple(spec)
    if dataset_classes and len(names) != len(dataset_classes):
        raise UserError(f"{len(names)} class names for a dataset of {len(dataset_classes)} classes",
                        field="model.class_names")
    if not names:
        raise UserError("no class names to build a zero-shot head from", field="model.class_names")
    return names


@torch.no_grad()
def class_vectors(encode_text: Callable[[list[str]], torch.Tensor], class_names: Sequence[str],
                  templates: Sequence[str]) -> torch.Tensor:
    """(C, D): per class, the normalised text features of its prompts averaged and renormalised."""
    rows = []
    for name in class_names:
        features = F.normalize(encode_text([t.format(name) for t in templates]).float(), dim=-1)
        rows.append(F.normalize(features.mean(0), dim=0))
    return torch.stack(rows)


def head_key(model_sha256: str, class_names: Sequence[str], templates: Sequence[str]) -> str:
    return config_hash({"model": model_sha256, "class_names": list(class_names), "templates": list(templates)},
                       length=24)


def cached_class_vectors(model_sha256: str, class_names: Sequence[str], templates: Sequence[str],
                         make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """class_vectors, computed by make() once per (weights sha256, class names, templates) and kept on disk."""
    path = cache_dir() / "zero_shot" / f"{head_key(model_sha256, class_names, templates)}.pt"
    if path.is_file():
        try:
            got = torch.load(path, map_location="cpu", weights_only=True)["class_vectors"]
            if got.shape[0] == len(class_names):
                return got
        except Exception:  # a damaged cache file is recomputed and overwritten
            pass
    vectors = make().cpu()
    buffer = io.BytesIO()
    torch.save({"class_vectors": vectors}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return vectors
