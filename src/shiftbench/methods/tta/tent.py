"""TENT (Wang et al. 2021): minimise prediction entropy, updating only the norm layers' affine parameters."""

from typing import Annotated, Literal

import torch
from pydantic import Field

from ..base import Method
from ..normalisation.norm_layers import adapt_norm_affine
from ..optimizers import build_optimizer
from ..registry import register_method
from ..snapshot import Snapshot
from .losses import entropy


@register_method("tent")
class Tent(Method):
    """Each batch: forward, entropy loss, `steps` optimiser steps on norm affine parameters; BN uses batch stats."""

    wrappable = True

    def __init__(self, lr: Annotated[float, Field(gt=0)] = 1e-3, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 optimizer: Literal["adam", "sgd"] = "adam", momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9):
        self.lr, self.steps, self.optimizer_name, self.momentum = lr, steps, optimizer, momentum

    def setup(self, model, source):
        super().setup(model, source)
        self.model.eval()
        self.optimizer = build_optimizer(adapt_norm_affine(self.model), self.optimizer_name, self.lr, self.momentum)
        self.initial = Snapshot(self.model, self.optimizer)

    def reset(self):
        self.initial.restore()

    def predict(self, x):
        with torch.enable_grad():
            for _ in range(self.steps):
                logits = self.model(x)
                loss = entropy(logits).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        return logits.detach()
