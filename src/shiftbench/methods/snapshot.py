"""What a method returns to on reset(): copies of its model's and optimiser's state and of its generator's."""

from __future__ import annotations

import copy

import torch
from torch import nn


class Snapshot:
    """Taken at the end of setup(); restore() puts every part back, in place (so references held
    elsewhere, such as an optimiser's to the model's parameters, stay valid)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 generator: torch.Generator | None = None):
        self.model, self.optimizer, self.generator = model, optimizer, generator
        self.model_state = copy.deepcopy(model.state_dict())
        self.optimizer_state = None if optimizer is None else copy.deepcopy(optimizer.state_dict())
        self.generator_state = None if generator is None else generator.get_state()

    def restore(self, *also: nn.Module) -> None:
        """The snapshot back into the model (and into `also`, modules of the same layout, e.g. a teacher)."""
        for module in (self.model, *also):
            module.load_state_dict(self.model_state)
        if self.optimizer is not None:
            # a copy: load_state_dict keeps Adam's step tensors as given, and the next step would count them up
            self.optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        if self.generator is not None:
            self.generator.set_state(self.generator_state)
