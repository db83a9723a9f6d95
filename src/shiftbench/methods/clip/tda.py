"""TDA, the training-free dynamic adapter (Karmanov et al., CVPR 2024), on a CLIP zero-shot model.

Test images one at a time; two caches of (normalised image feature, entropy) by predicted class:
  positive: up to `pos_shot` entries per class; a new one is appended while there is room,
            else it replaces the last (highest-entropy) entry if its entropy is lower; the list
            is kept sorted by entropy. Every image enters it.
  negative: the same with `neg_shot` and the probability vector stored too, entered only when
            the image's entropy / log2(C) lies strictly inside `neg_entropy` (the authors' code
            divides a natural-log entropy by log2(C); kept as they wrote it).
The image is cached first, then predicted: zero-shot logits + pos_alpha * A(pos) @ one_hot(classes)
- neg_alpha * A(neg) @ [lower < p < upper], with A = exp(-beta (1 - f . keys)), each cache with its
own beta. Caches persist along the stream and are cleared at reset (episode boundaries).
Defaults: the authors' ImageNet configuration (kdiAAA/TDA configs/imagenet.yaml: positive 3
shots, alpha 2.0, beta 5.0; negative 2 shots, alpha 0.117, beta 1.0, entropy (0.2, 0.5), mask
(0.03, 1.0)) with one view per image, as they run ImageNet. With n_views > 1 the image is
replaced by the mean of its `selection` most confident views (features averaged without
renormalising, logits averaged, entropy of the averaged probabilities) as in their code for
ImageNet-A/-V2/-R/-Sketch, with crop-and-flip views (their AugMix is not ported). Their caches
are float16 on the GPU; here float32. The zero-shot logits use the model's logit scale
(their literal 100 is OpenAI's weights' value).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field

from ..base import Method
from ..registry import register_method
from .clip_model import clip_network, image_features
from .tpt import marginal_entropy, select_confident
from .views import augmented_views

Positive = Annotated[float, Field(ge=0)]
Shots = Annotated[int, Field(ge=1, le=1000)]


def add_to_cache(cache: dict[int, list[tuple]], label: int, item: tuple, capacity: int) -> None:
    """The authors' update: append while there is room, else replace the worst entry if better; sorted by item[1]."""
    entries = cache.setdefault(label, [])
    if len(entries) < capacity:
        entries.append(item)
    elif item[1] < entries[-1][1]:
        entries[-1] = item
    entries.sort(key=lambda e: e[1])


def cache_affinity(feature: torch.Tensor, keys: torch.Tensor, beta: float) -> torch.Tensor:
    return torch.exp(-beta * (1 - feature @ keys.T))


@register_method("tda")
class TDA(Method):
    """Adjust zero-shot logits by a positive and a negative cache of confident past test features (training-free)."""

    requires = ("clip",)

    def __init__(self, pos_shot: Shots = 3, pos_alpha: Positive = 2.0, pos_beta: Positive = 5.0,
                 neg_shot: Shots = 2, neg_alpha: Positive = 0.117, neg_beta: Positive = 1.0,
                 neg_entropy: tuple[float, float] = (0.2, 0.5), neg_mask: tuple[float, float] = (0.03, 1.0),
                 n_views: Annotated[int, Field(ge=1, le=512)] = 1, selection: Annotated[float, Field(gt=0, le=1)] = 0.1):
        self.pos_shot, self.pos_alpha, self.pos_beta = pos_shot, pos_alpha, pos_beta
        self.neg_shot, self.neg_alpha, self.neg_beta = neg_shot, neg_alpha, neg_beta
        self.neg_entropy, self.neg_mask = tuple(neg_entropy), tuple(neg_mask)
        self.n_views, self.selection = n_views, selection

    def setup(self, model, source):
        super().setup(model, source)
        net = clip_network(model)
        self.head = net.head.weight  # logit_scale * class vectors, (C, D)
        self.generator = torch.Generator().manual_seed(source.seed)
        self.generator_start = self.generator.get_state()
        self.reset()

    def reset(self):
        self.positive: dict[int, list[tuple]] = {}
        self.negative: dict[int, list[tuple]] = {}
        self.generator.set_state(self.generator_start)

    def summary(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
        """(feature (D,), zero-shot logits (C,), entropy, probabilities (C,)) of one image, or of its confident views."""
        if self.n_views == 1:
            feature = image_features(self.model, image[None])
            logits = feature @ self.head.T
            entropy = -(logits.softmax(1) * logits.log_softmax(1)).sum()  # their single-view formula, not log-space
            return feature[0], logits[0], float(entropy), logits.softmax(1)[0]
        views = augmented_views(image, self.n_views, self.generator)
        features = image_features(self.model, views)
        logits = features @ self.head.T
        chosen = select_confident(logits, self.selection)
        picked = logits[chosen]
        return (features[chosen].mean(0), picked.mean(0), float(marginal_entropy(picked)),
                picked.softmax(1).mean(0))

    def cache_logits(self, feature: torch.Tensor, cache: dict[int, list[tuple]], beta: float,
                     values_of) -> torch.Tensor:
        items = [(label, item) for label in sorted(cache) for item in cache[label]]
        keys = torch.stack([item[0] for _, item in items])
        values = torch.stack([values_of(label, item) for label, item in items]).to(feature.dtype)
        return cache_affinity(feature, keys, beta) @ values

    @torch.no_grad()
    def predict_one(self, image: torch.Tensor) -> torch.Tensor:
        feature, logits, entropy, probs = self.summary(image)
        label = int(logits.argmax())
        num_classes = logits.shape[0]
        add_to_cache(self.positive, label, (feature, entropy), self.pos_shot)
        if self.neg_entropy[0] < entropy / math.log2(num_classes) < self.neg_entropy[1]:
            add_to_cache(self.negative, label, (feature, entropy, probs), self.neg_shot)
        out = logits.clone()
        out += self.pos_alpha * self.cache_logits(
            feature, self.positive, self.pos_beta, lambda c, _: F.one_hot(torch.tensor(c), num_classes).to(feature.device))
        if self.negative:
            low, high = self.neg_mask
            out -= self.neg_alpha * self.cache_logits(
                feature, self.negative, self.neg_beta, lambda _, item: (item[2] > low) & (item[2] < high))
        return out

    def predict(self, x):
        return torch.stack([self.predict_one(image) for image in x])

    def describe(self):
        return {"positive_entries": sum(map(len, self.positive.values())),
                "negative_entries": sum(map(len, self.negative.values()))}
