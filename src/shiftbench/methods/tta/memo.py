"""MEMO (Zhang, Levine, Finn: MEMO: Test Time Robustness via Adaptation and Augmentation, NeurIPS 2022;
official code zhangmarvin/memo).

Episodic by nature: every image is handled on its own, starting from the source model. For
each image, `steps` (1) SGD steps (lr 0.005, no momentum, every parameter) on the marginal
entropy H(mean_b softmax(f(x_b))) of `augmentations` (32) AugMix views x_b (augmix.py); then
the adapted model predicts the image itself, and the next image starts again from the source
model. The views' random draws are seeded by (cell seed, the image's bytes), so an image's
prediction depends on nothing else: the protocol, the batch and the stream order never change
MEMO's numbers (the law test).
BatchNorm: as MEMO does for BatchNorm networks, the statistics are the source running ones
mixed with the current input's, weight N/(N+1) on the source with `prior_strength` N = 16
(the views' batch when adapting, the single image when predicting; normalisation/prior_bn.py). None keeps
the source statistics.
Settings: 32 views, lr 0.005 (the paper's CIFAR-10 ones); prior 16 (its ImageNet BatchNorm
ResNet-50 one). Cost per image: 32 forward and backward passes of the views, one forward pass.
"""

from __future__ import annotations

import copy
import math
from typing import Annotated

import torch
from pydantic import Field

from ...core.hashing import seed_from, tensor_sha256
from ..base import Method
from ..normalisation.prior_bn import install_prior_bn
from ..registry import register_method
from .augmix import augmix_views


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean of softmax(logits) over the rows, computed in log space as MEMO does."""
    log_p = logits - logits.logsumexp(dim=-1, keepdim=True)
    avg = log_p.logsumexp(dim=0) - math.log(logits.shape[0])
    avg = avg.clamp(min=torch.finfo(avg.dtype).min)
    return -(avg * avg.exp()).sum(dim=-1)


@register_method("memo")
class MEMO(Method):
    """Per image: one SGD step on the marginal entropy of its AugMix views, predict, restore the source model."""

    swaps_norm_layers = True

    def __init__(self, augmentations: Annotated[int, Field(ge=1, le=256)] = 32,
                 lr: Annotated[float, Field(ge=0)] = 0.005, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 prior_strength: Annotated[float, Field(ge=0)] | None = 16.0):
        self.augmentations, self.lr, self.steps, self.prior_strength = augmentations, lr, steps, prior_strength

    def setup(self, model, source):
        super().setup(model, source)
        if self.prior_strength is not None:
            install_prior_bn(self.model, self.prior_strength / (self.prior_strength + 1))
        self.model.eval()
        self.model.requires_grad_(True)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr)
        self._initial = copy.deepcopy(self.model.state_dict())

    def reset(self):
        self.model.load_state_dict(self._initial)

    def predict(self, x):
        out = []
        for image in x:
            self.model.load_state_dict(self._initial)
            generator = torch.Generator().manual_seed(seed_from("memo", self.source.seed, tensor_sha256(image)))
            for _ in range(self.steps):
                views = augmix_views(image, self.augmentations, generator)
                with torch.enable_grad():
                    loss = marginal_entropy(self.model(views))
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                self.optimizer.step()
            with torch.no_grad():
                out.append(self.model(image.unsqueeze(0)))
        self.model.load_state_dict(self._initial)
        return torch.cat(out)
