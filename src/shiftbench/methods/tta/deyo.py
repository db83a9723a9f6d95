"""DeYO (Lee et al.: Entropy is not Enough for Test-Time Adaptation: From the Perspective of Disentangled Factors,
ICLR 2024; official code Jhyun17/DeYO).

Entropy minimisation on the norm layers' affine parameters (BatchNorm on batch statistics),
one SGD step per batch (lr 2.5e-4, momentum 0.9) on the samples that pass two filters:
  entropy:  H(x) < `entropy_margin` * ln K (0.5 ln K);
  PLPD:     p_c(x) - p_c(x') > `plpd_threshold` (0.2), where c = argmax p(x) and x' is x with
            its patches shuffled: the image cut into a `patch_grid` x `patch_grid` grid (4 x 4),
            the patches permuted at random per image (the prediction on x' comes from a
            no-grad forward pass of the same model, on the selected images only);
each weighted by exp(-(H(x) - E0)) + exp(PLPD(x)), E0 = `weight_margin` * ln K (0.4 ln K),
either term switchable. No step when nothing is selected. The sizes are the paper's; the
optimiser is the official ImageNet ResNet-50 one. `skip_last_norm` replaces the official
"skip layer4" (normalisation/norm_layers.py). With both filters off (None) and no weights DeYO is tent with
SGD (the law test). Cost per image: two forward passes (the second on the entropy-selected
images) and one backward pass.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field

from ...core.hashing import seed_from
from ...core.lazy import LazyModule
from ..base import Method
from ..normalisation.norm_layers import adapt_norm_affine
from ..registry import register_method
from ..snapshot import Snapshot
from .losses import entropy

TF = LazyModule("torchvision.transforms.functional")


def shuffle_patches(x: torch.Tensor, grid: int, generator: torch.Generator) -> torch.Tensor:
    """x with each image's grid x grid patches permuted at random (resized to a multiple of grid and back)."""
    n, c, h, w = x.shape
    side = (w // grid) * grid
    y = x if (h, w) == (side, side) else TF.resize(x, [side, side], antialias=True)
    s = side // grid
    patches = y.reshape(n, c, grid, s, grid, s).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, s, s)
    order = torch.argsort(torch.rand(n, grid * grid, generator=generator), dim=-1).to(x.device)
    patches = patches[torch.arange(n, device=x.device).unsqueeze(-1), order]
    y = patches.reshape(n, grid, grid, c, s, s).permute(0, 3, 1, 4, 2, 5).reshape(n, c, side, side)
    return y if (h, w) == (side, side) else TF.resize(y, [h, w], antialias=True)


@register_method("deyo")
class DeYO(Method):
    """Entropy minimisation on samples whose prediction depends on shape (PLPD under patch shuffling), weighted."""

    wrappable = True

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 2.5e-4, momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9,
                 steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 entropy_margin: Annotated[float, Field(gt=0)] | None = 0.5,
                 weight_margin: Annotated[float, Field(gt=0)] = 0.4,
                 plpd_threshold: Annotated[float, Field(ge=-1, le=1)] | None = 0.2,
                 reweight_entropy: bool = True, reweight_plpd: bool = True,
                 patch_grid: Annotated[int, Field(ge=1, le=64)] = 4,
                 skip_last_norm: Annotated[float, Field(ge=0, lt=1)] = 0.0):
        self.lr, self.momentum, self.steps = lr, momentum, steps
        self.entropy_margin, self.weight_margin, self.plpd_threshold = entropy_margin, weight_margin, plpd_threshold
        self.reweight_entropy, self.reweight_plpd = reweight_entropy, reweight_plpd
        self.patch_grid, self.skip_last_norm = patch_grid, skip_last_norm

    def setup(self, model, source):
        super().setup(model, source)
        self.params = adapt_norm_affine(self.model, self.skip_last_norm)
        self.optimizer = torch.optim.SGD(self.params, lr=self.lr, momentum=self.momentum)
        ln_k = math.log(source.num_classes)
        self.filter_below = None if self.entropy_margin is None else self.entropy_margin * ln_k
        self.e0 = self.weight_margin * ln_k
        self.generator = torch.Generator().manual_seed(seed_from("deyo", source.seed))
        self.initial = Snapshot(self.model, self.optimizer, self.generator)
        self.seen = self.updated_on = 0  # diagnostics for the cell record, over the whole stream

    def reset(self):
        self.initial.restore()

    def predict(self, x):
        for _ in range(self.steps):
            logits = self._step(x)
        return logits

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            logits = self.model(x)
            self.optimizer.zero_grad(set_to_none=True)
            ent = entropy(logits)
            self.seen += len(ent)
            first = torch.ones_like(ent, dtype=torch.bool) if self.filter_below is None else ent < self.filter_below
            if not first.any():
                return logits.detach()
            ent = ent[first]
            with torch.no_grad():
                shuffled = self.model(shuffle_patches(x[first].detach(), self.patch_grid, self.generator))
            probs = logits[first].softmax(1)
            cls = probs.argmax(1, keepdim=True)
            plpd = (probs.gather(1, cls) - shuffled.softmax(1).gather(1, cls)).reshape(-1).detach()
            second = torch.ones_like(plpd, dtype=torch.bool) if self.plpd_threshold is None else plpd > self.plpd_threshold
            if not second.any():
                return logits.detach()
            ent, plpd = ent[second], plpd[second]
            self.updated_on += len(ent)
            if self.reweight_entropy or self.reweight_plpd:
                coeff = (float(self.reweight_entropy) * (1 / torch.exp(ent.detach() - self.e0))
                         + float(self.reweight_plpd) * (1 / torch.exp(-1.0 * plpd)))
                ent = ent.mul(coeff)
            ent.mean(0).backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return logits.detach()

    def describe(self):
        return {"samples_seen": self.seen, "samples_in_updates": self.updated_on}
