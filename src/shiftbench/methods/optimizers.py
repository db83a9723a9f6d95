"""The optimisers the test-time methods step: Adam (betas 0.9, 0.999) or SGD with momentum, as tent builds them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch

OptimizerName = Literal["adam", "sgd"]


def build_optimizer(params: Iterable[torch.nn.Parameter], name: OptimizerName, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0, nesterov: bool = False) -> torch.optim.Optimizer:
    params = list(params)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    # torch refuses Nesterov without momentum; SHOT's optimiser only asks for it with momentum 0.9
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov and momentum > 0)
