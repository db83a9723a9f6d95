"""SHOT-IM (Liang, Hu, Feng: Do We Really Need to Access the Source Data? Source Hypothesis Transfer for
Unsupervised Domain Adaptation, ICML 2020; official code tim-learn/SHOT), run online: one step per test batch.

Information maximisation on the feature extractor with the classifier (model.head) frozen:
  loss = mean_i H(p_i) - `diversity_weight` * H(mean_i p_i),  H(p) = -sum p log(p + 1e-5),
the 1e-5 as in SHOT's code. SHOT-IM is SHOT without its pseudo-label term. `adapt="features"`
(default) trains every parameter outside the head, as the paper does; "norm" only the norm
layers' affine parameters (the reference LAME code's best SHOT setting). Optimiser: SHOT's
SGD with momentum 0.9, Nesterov, weight decay 1e-3, at its backbone learning rate 1e-3 (SHOT
trains offline with a decaying schedule; online there is no schedule). BatchNorm normalises
with the test batch, as for tent. The prediction is the batch's logits before the step.
Cost per image: one forward and one backward pass (through the whole network).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..base import Method
from ..normalisation.bn_adapt import use_batch_statistics
from ..normalisation.norm_layers import adapted_norm_parameters
from ..optimizers import build_optimizer
from ..registry import register_method
from ..snapshot import Snapshot

EPS = 1e-5


def information_maximisation_loss(logits: torch.Tensor, diversity_weight: float) -> torch.Tensor:
    p = logits.softmax(1)
    conditional = -(p * torch.log(p + EPS)).sum(1).mean(0)
    marginal = p.mean(0)
    return conditional - diversity_weight * -(marginal * torch.log(marginal + EPS)).sum()


@register_method("shot_im")
class ShotIM(Method):
    """Online information maximisation (confident and diverse predictions) on the feature extractor; head frozen."""

    wrappable = True

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
                 weight_decay: Annotated[float, Field(ge=0)] = 1e-3, nesterov: bool = True,
                 steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 diversity_weight: Annotated[float, Field(ge=0)] = 1.0,
                 adapt: Literal["features", "norm"] = "features"):
        self.lr, self.momentum, self.weight_decay, self.nesterov = lr, momentum, weight_decay, nesterov
        self.steps, self.diversity_weight, self.adapt = steps, diversity_weight, adapt

    def setup(self, model, source):
        super().setup(model, source)
        if not hasattr(self.model, "head"):
            raise RuntimeError("shot_im needs a model with a declared classifier (model.head)")
        use_batch_statistics(self.model)
        self.model.requires_grad_(False)
        head = {id(p) for p in self.model.head.parameters()}
        if self.adapt == "features":
            params = [p for p in self.model.parameters() if id(p) not in head]
        else:
            params = [p for p in adapted_norm_parameters(self.model) if id(p) not in head]
        for p in params:
            p.requires_grad_(True)
        self.optimizer = build_optimizer(params, "sgd", self.lr, self.momentum, self.weight_decay, self.nesterov)
        self.initial = Snapshot(self.model, self.optimizer)

    def reset(self):
        self.initial.restore()

    def predict(self, x):
        with torch.enable_grad():
            for _ in range(self.steps):
                logits = self.model(x)
                loss = information_maximisation_loss(logits, self.diversity_weight)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        return logits.detach()
