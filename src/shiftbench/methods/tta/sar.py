"""SAR (Niu et al.: Towards Stable Test-Time Adaptation in Dynamic Wild World, ICLR 2023; official code mr-eggplant/SAR).

Sharpness-aware, reliable entropy minimisation on the norm layers' affine parameters
(BatchNorm on batch statistics). Per batch:
  1. entropies H of the batch; the reliable samples are those with H < E0 = 0.4 ln K;
  2. gradient g of their mean entropy; the parameters move to theta + rho g / ||g|| (SAM's
     ascent step, rho 0.05, ||.|| over all adapted parameters together);
  3. there, the entropies of the same samples again, filtered again by H < E0; the gradient of
     their mean, taken at the perturbed point, drives an SGD step (lr 2.5e-4, momentum 0.9)
     from theta;
  4. model recovery: e <- 0.9 e + 0.1 (the step-3 mean entropy), starting at the first value;
     when e falls below the threshold the model and optimiser return to their initial state
     and e is forgotten.
The prediction is step 1's logits. Empty selections still move the parameters by SGD momentum,
as in the official code.

Recovery threshold: the paper's 0.2 is for 1000 classes, where a collapsed model's entropy is
near 0 and a healthy one's well above 0.2; a confident 10-class model sits below 0.2 on most
batches and would be reset on almost every one. With `recovery_scale="classes"` (default) the
threshold is recovery_threshold * ln K / ln 1000 (0.067 for 10 classes); "absolute" uses it
as written. The official code also keeps the old average after a reset (the line after
`self.reset()` in SAR.forward stores it back), so it keeps resetting until the average climbs
back; here a reset forgets it, which is what the official reset() means to do.
`skip_last_norm` replaces the official "skip layer4" (normalisation/norm_layers.py); 0 adapts every layer,
which is also what the official code does on the CIFAR ResNets. With rho 0, no filter
(entropy_margin None) and no recovery (threshold 0), SAR is tent with SGD (the law test).
Cost per image: two forward and two backward passes.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from pydantic import Field

from ..base import Method
from ..normalisation.norm_layers import adapt_norm_affine
from ..registry import register_method
from ..snapshot import Snapshot
from .losses import entropy

EMA_MOMENTUM = 0.9
REFERENCE_CLASSES = 1000  # the number of classes the paper's recovery threshold was set for


@register_method("sar")
class SAR(Method):
    """Reliable entropy minimisation with a sharpness-aware (SAM) step and model recovery."""

    wrappable = True

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 2.5e-4, momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
                 steps: Annotated[int, Field(ge=1, le=100)] = 1, rho: Annotated[float, Field(ge=0)] = 0.05,
                 entropy_margin: Annotated[float, Field(gt=0)] | None = 0.4,
                 recovery_threshold: Annotated[float, Field(ge=0)] = 0.2,
                 recovery_scale: Literal["classes", "absolute"] = "classes",
                 skip_last_norm: Annotated[float, Field(ge=0, lt=1)] = 0.0):
        self.lr, self.momentum, self.steps, self.rho = lr, momentum, steps, rho
        self.entropy_margin, self.skip_last_norm = entropy_margin, skip_last_norm
        self.recovery_threshold, self.recovery_scale = recovery_threshold, recovery_scale

    def setup(self, model, source):
        super().setup(model, source)
        self.params = adapt_norm_affine(self.model, self.skip_last_norm)
        self.optimizer = torch.optim.SGD(self.params, lr=self.lr, momentum=self.momentum)
        ln_k = math.log(source.num_classes)
        self.e0 = None if self.entropy_margin is None else self.entropy_margin * ln_k
        scale = ln_k / math.log(REFERENCE_CLASSES) if self.recovery_scale == "classes" else 1.0
        self.recover_below = self.recovery_threshold * scale
        self.initial = Snapshot(self.model, self.optimizer)
        self.average = None
        self.recoveries = self.seen = self.updated_on = 0  # diagnostics for the cell record, over the whole stream

    def reset(self):
        self.initial.restore()
        self.average = None

    def predict(self, x):
        for _ in range(self.steps):
            logits = self._step(x)
            if self.average is not None and self.average < self.recover_below:
                self.reset()
                self.recoveries += 1
        return logits

    def _reliable(self, ent: torch.Tensor) -> torch.Tensor:
        return ent if self.e0 is None else ent[ent < self.e0]

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            self.optimizer.zero_grad(set_to_none=True)
            logits = self.model(x)
            ent = entropy(logits)
            first = ent < self.e0 if self.e0 is not None else torch.ones_like(ent, dtype=torch.bool)
            ent[first].mean(0).backward()
            self._ascend()
            second = self._reliable(entropy(self.model(x))[first])
            self.seen += len(ent)
            self.updated_on += len(second)
            loss = second.mean(0)
            if not math.isnan(loss.item()):
                value = loss.item()
                self.average = value if self.average is None else EMA_MOMENTUM * self.average + (1 - EMA_MOMENTUM) * value
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        self._descend()
        return logits.detach()

    @torch.no_grad()
    def _ascend(self) -> None:
        """SAM's first step: theta <- theta + rho g / (||g|| + 1e-12), remembering theta."""
        with_grad = [p for p in self.params if p.grad is not None]
        norm = torch.norm(torch.stack([p.grad.norm(p=2) for p in with_grad]), p=2)
        scale = self.rho / (norm + 1e-12)
        self._theta = [p.detach().clone() for p in self.params]
        for p in with_grad:
            p.add_(p.grad * scale.to(p))

    @torch.no_grad()
    def _descend(self) -> None:
        """SAM's second step: back to theta, then the SGD step with the gradient taken at the perturbed point."""
        for p, theta in zip(self.params, self._theta):
            p.copy_(theta)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def describe(self):
        return {"recoveries": self.recoveries, "samples_seen": self.seen, "samples_in_updates": self.updated_on}
