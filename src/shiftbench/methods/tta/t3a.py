"""T3A (Iwasawa, Matsuo: Test-Time Classifier Adjustment Module for Model-Agnostic Domain Generalization, NeurIPS 2021;
official code matsuolab/T3A).

The feature extractor stays frozen (source BatchNorm statistics); only the classifier is
replaced, by class prototypes built from the test stream. Supports start as the rows of the
head's weight matrix, each labelled with the head's own argmax on it and its entropy. Each
batch adds its features z (the head's input) with the head's one-hot pseudo label and entropy;
then for every class only the `filter_k` supports of lowest entropy stay (None keeps all; the
paper picks M from {1, 5, 20, 50, 100, all} on source validation data, we default to 100).
Prediction: logits_k = z . w_k / |w_k|, w_k the sum of class k's L2-normalised supports
(no bias). The head must be a Linear layer (model.head of a shiftbench Classifier).
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..base import Method
from ..registry import register_method
from .losses import entropy


@register_method("t3a")
class T3A(Method):
    """Prototype classifier from the test stream's most confident features (per class, filter size M)."""

    def __init__(self, filter_k: Annotated[int, Field(ge=1, le=100_000)] | None = 100):
        self.filter_k = filter_k

    def setup(self, model, source):
        super().setup(model, source)
        head = getattr(self.model, "head", None)
        if not isinstance(head, nn.Linear):
            raise TypeError("t3a needs a model whose classifier (model.head) is a Linear layer")
        with torch.no_grad():
            supports = head.weight.detach().clone()
            logits = head(supports)
        self.num_classes = logits.shape[1]
        self._initial = (supports, F.one_hot(logits.argmax(1), self.num_classes).float(), entropy(logits))
        self.reset()

    def reset(self):
        self.supports, self.labels, self.entropies = self._initial

    @torch.no_grad()
    def predict(self, x):
        z, logits = self.model.features_and_logits(x)
        self.supports = torch.cat([self.supports, z])
        self.labels = torch.cat([self.labels, F.one_hot(logits.argmax(1), self.num_classes).float()])
        self.entropies = torch.cat([self.entropies, entropy(logits)])
        self._filter()
        weights = F.normalize(self.supports, dim=1).t() @ self.labels
        return z @ F.normalize(weights, dim=0)

    def _filter(self) -> None:
        if self.filter_k is None:
            return
        classes = self.labels.argmax(1)
        keep = []
        for k in range(self.num_classes):
            rows = (classes == k).nonzero().flatten()
            order = torch.sort(self.entropies[rows], stable=True).indices
            keep.append(rows[order][: self.filter_k])
        keep = torch.cat(keep)
        self.supports, self.labels, self.entropies = self.supports[keep], self.labels[keep], self.entropies[keep]
