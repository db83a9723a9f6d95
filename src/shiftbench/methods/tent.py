"""TENT (Wang et al. 2021): minimise prediction entropy, updating only the norm layers' affine parameters."""

import copy
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from .base import Method
from .bn_adapt import use_batch_statistics
from .registry import register_method

NORM_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of softmax(logits), per row."""
    return -(logits.softmax(1) * logits.log_softmax(1)).sum(1)


def norm_affine_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, NORM_LAYERS) for p in (m.weight, m.bias) if p is not None]


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
        use_batch_statistics(self.model)
        self.model.requires_grad_(False)
        params = norm_affine_parameters(self.model)
        for p in params:
            p.requires_grad_(True)
        if self.optimizer_name == "adam":
            self.optimizer = torch.optim.Adam(params, lr=self.lr, betas=(0.9, 0.999))
        else:
            self.optimizer = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        self._initial = copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict())

    def reset(self):
        self.model.load_state_dict(self._initial[0])
        self.optimizer.load_state_dict(self._initial[1])

    def predict(self, x):
        with torch.enable_grad():
            for _ in range(self.steps):
                logits = self.model(x)
                loss = entropy(logits).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
        return logits.detach()
