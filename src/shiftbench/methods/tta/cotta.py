"""CoTTA (Wang, Fink, Van Gool, Dai: Continual Test-Time Domain Adaptation, CVPR 2022; official code qinenergy/cotta).

Per batch (every module's weight and bias are trained; BatchNorm normalises with the batch):
  1. the student's logits z_s = f_theta(x);
  2. the anchor (a frozen copy of the source model, also on batch statistics) gives its
     confidence: the batch mean of max softmax. Below `confidence_threshold` (0.92) the
     teacher's target is the mean of its logits over `augmentations` (32) augmented copies of
     the batch (cotta_augment.py), else its logits on x;
  3. the student takes an optimiser step (Adam, lr 1e-3) on the cross-entropy between the
     teacher's softmax and its own: -sum softmax(z_t) log softmax(z_s);
  4. the teacher moves to ema * teacher + (1 - ema) * student, ema = 0.999;
  5. stochastic restore: each weight element returns to its source value with probability
     `restore` (0.01).
The prediction is the teacher's target of step 2 (from before this batch's update).

As in the official code: the confidence test is on the batch mean (the paper writes it per
image); reset also resets the teacher to the source model. Departure: when the anchor is
confident we skip the augmented copies and their random draws (the official code computes and
discards them), so from such a batch on the random stream differs from the official one.
With augmentations 0, restore 0 and ema 0 CoTTA is self-training on the model's own soft
predictions (the law test). Cost per image: 35 forward passes and one backward pass.
"""

from __future__ import annotations

import copy
from typing import Annotated

import torch
from pydantic import Field

from ...core.hashing import seed_from
from ..base import Method
from ..normalisation.bn_adapt import use_batch_statistics
from ..optimizers import OptimizerName, build_optimizer
from ..registry import register_method
from ..snapshot import Snapshot
from .cotta_augment import cotta_augment


def weights_and_biases(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Every module's own parameters named weight or bias, in module order (what the official code trains)."""
    return [p for m in model.modules() for n, p in m.named_parameters(recurse=False) if n in ("weight", "bias")]


@register_method("cotta")
class CoTTA(Method):
    """Mean teacher with augmentation-averaged targets when the source model is unsure, and stochastic restore."""

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, optimizer: OptimizerName = "adam",
                 momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 ema: Annotated[float, Field(ge=0, le=1)] = 0.999,
                 restore: Annotated[float, Field(ge=0, le=1)] = 0.01,
                 confidence_threshold: Annotated[float, Field(ge=0, le=1)] = 0.92,
                 augmentations: Annotated[int, Field(ge=0, le=256)] = 32, soft_augment: bool = False):
        self.lr, self.optimizer_name, self.momentum, self.steps = lr, optimizer, momentum, steps
        self.ema, self.restore, self.threshold = ema, restore, confidence_threshold
        self.augmentations, self.soft_augment = augmentations, soft_augment

    def setup(self, model, source):
        super().setup(model, source)
        use_batch_statistics(self.model)
        self.model.requires_grad_(False)
        self.params = weights_and_biases(self.model)
        for p in self.params:
            p.requires_grad_(True)
        self.optimizer = build_optimizer(self.params, self.optimizer_name, self.lr, self.momentum)
        self.source_params = [p.detach().clone() for p in self.params]
        self.anchor = copy.deepcopy(self.model).requires_grad_(False)
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.generator = torch.Generator().manual_seed(seed_from("cotta", source.seed))
        self.initial = Snapshot(self.model, self.optimizer, self.generator)

    def reset(self):
        self.initial.restore(self.teacher)

    def predict(self, x):
        for _ in range(self.steps):
            target = self._step(x)
        return target

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            logits = self.model(x)
        with torch.no_grad():
            confidence = self.anchor(x).softmax(1).max(1).values.mean()
            target = self.teacher(x)
            if self.augmentations and confidence < self.threshold:
                target = torch.stack([self.teacher(cotta_augment(x, self.generator, self.soft_augment))
                                      for _ in range(self.augmentations)]).mean(0)
        with torch.enable_grad():
            loss = -(target.softmax(1) * logits.log_softmax(1)).sum(1).mean(0)
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters()):
                t.copy_(self.ema * t + (1 - self.ema) * s)
            if self.restore > 0:
                for p, p0 in zip(self.params, self.source_params):
                    mask = (torch.rand(p.shape, generator=self.generator) < self.restore).to(p.device)
                    p.copy_(torch.where(mask, p0, p))
        return target
