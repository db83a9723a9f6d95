"""RoTTA (Yuan, Xie, Li: Robust Test-Time Adaptation in Dynamic Scenarios, CVPR 2023; official code BIT-DA/RoTTA).

Every BatchNorm becomes a robust BN (normalisation/robust_bn.py, alpha 0.05); a teacher is a copy of the
student. Per test image, in stream order: the teacher (eval mode: the stored global
statistics, no update) predicts the batch; each image enters the category-balanced memory
(rotta_memory.py, capacity 64) with the teacher's pseudo label and entropy; after every
`update_every` (64) images, one update on the memory's contents:
  the teacher (train mode: its robust BN statistics move) labels the memory images, the
  student (train mode) sees a strong augmentation of them (cotta_augment.py), and an Adam
  step (lr 1e-3) on the norm layers' affine parameters lowers
  mean_i w(age_i) * CE(softmax(teacher_i), student_i), w(a) = exp(-a) / (1 + exp(-a))
  (time-aware reweighting, age in units of the capacity); then the teacher's parameters move
  to (1 - nu) teacher + nu student, nu = 0.001.
The prediction is the teacher's, from before the batch's updates. Parameters as in the
paper's CIFAR setting (the official configs/adapter/rotta.yaml); the paper's batch is 64.
"""

from __future__ import annotations

import copy
from typing import Annotated

import torch
from pydantic import Field

from ...core.hashing import seed_from
from ..base import Method
from ..normalisation.robust_bn import RobustBatchNorm, install_robust_bn
from ..registry import register_method
from ..snapshot import Snapshot
from .cotta_augment import cotta_augment
from .rotta_memory import CategoryBalancedMemory


def timeliness_weight(ages: torch.Tensor) -> torch.Tensor:
    return torch.exp(-ages) / (1 + torch.exp(-ages))


@register_method("rotta")
class RoTTA(Method):
    """Robust BN, category-balanced memory with timeliness, mean teacher with time-aware reweighting."""

    swaps_norm_layers = True

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, memory_size: Annotated[int, Field(ge=1, le=10_000)] = 64,
                 update_every: Annotated[int, Field(ge=1, le=10_000)] = 64, nu: Annotated[float, Field(ge=0, le=1)] = 0.001,
                 bn_alpha: Annotated[float, Field(ge=0, le=1)] = 0.05, lambda_t: Annotated[float, Field(ge=0)] = 1.0,
                 lambda_u: Annotated[float, Field(ge=0)] = 1.0):
        self.lr, self.memory_size, self.update_every, self.nu = lr, memory_size, update_every, nu
        self.bn_alpha, self.lambda_t, self.lambda_u = bn_alpha, lambda_t, lambda_u

    def setup(self, model, source):
        super().setup(model, source)
        self.model.requires_grad_(False)
        install_robust_bn(self.model, self.bn_alpha)
        params = [p for m in self.model.modules() if isinstance(m, RobustBatchNorm)
                  for p in (m.weight, m.bias) if p is not None]
        for p in params:
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(params, lr=self.lr, betas=(0.9, 0.999))
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.num_classes = source.num_classes
        self.generator = torch.Generator().manual_seed(seed_from("rotta", source.seed))
        self.initial = Snapshot(self.model, self.optimizer, self.generator)
        self.reset()

    def reset(self):
        self.initial.restore(self.teacher)
        self.memory = CategoryBalancedMemory(self.memory_size, self.num_classes, self.lambda_t, self.lambda_u)
        self.seen = 0

    def predict(self, x):
        with torch.no_grad():
            self.model.eval()
            self.teacher.eval()
            logits = self.teacher(x)
            probs = logits.softmax(1)
            labels = probs.argmax(1).tolist()
            entropies = (-(probs * torch.log(probs + 1e-6)).sum(1)).tolist()
        for i in range(x.shape[0]):
            self.memory.add(x[i], labels[i], entropies[i])
            self.seen += 1
            if self.seen % self.update_every == 0:
                self._update()
        return logits

    def _update(self) -> None:
        self.model.train()
        self.teacher.train()
        images, ages = self.memory.contents()
        if images:
            batch = torch.stack(images)
            strong = cotta_augment(batch, self.generator)
            with torch.no_grad():
                target = self.teacher(batch)
            with torch.enable_grad():
                student = self.model(strong)
                weights = timeliness_weight(torch.tensor(ages, dtype=torch.float32, device=batch.device))
                loss = (-(target.softmax(1) * student.log_softmax(1)).sum(1) * weights).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.model.parameters()):
                t.copy_((1 - self.nu) * t + self.nu * s)
