"""RMT (Döbler, Marsden, Yang: Robust Mean Teacher for Continual and Gradual Test-Time Adaptation,
CVPR 2023; code: the test-time-adaptation repository, mariodoebler).

Every module's weight and bias is trained (Adam, lr 1e-3, betas 0.9/0.999), BatchNorm normalises
with the batch; a teacher is an exponential moving average of the student (momentum `ema`
0.999, over every parameter). Setup, on the labelled source training split, drawn in seeded
shuffled batches of `source_batch_size` (200) that cycle through it epoch after epoch:
  * class prototypes: the mean feature (the classifier head's input) per class over the first
    `prototype_samples` (100,000) shuffled source images, the student on batch statistics;
  * a projector Linear(D, 128) - ReLU - Linear(128, 128) (`projection_dim`), trained with the
    student at the same learning rate;
  * warm-up: `warmup_samples` // `source_batch_size` (250) steps of the symmetric cross-entropy
    between student and teacher on source batches, the learning rate rising linearly to lr,
    the teacher following after each step.
Per test batch x with an augmented copy x' (cotta_augment, one draw per batch):
  loss = l_trg (SCE(z, t) + SCE(z', t)) / 2 + l_cont C + l_src CE(source batch)
with z, z' the student's logits on x and x', t the teacher's on x, SCE the symmetric
cross-entropy (losses.py), C the supervised contrastive loss (temperature 0.1) over three views
per image: its nearest source prototype (cosine), its feature and the feature of x', each
projected and L2-normalised; l_trg = l_cont = l_src = 1 (`lambda_*`; l_src = 0 is the
source-free variant). One optimiser step, then the teacher update. The prediction is z + t
(from before the step).

Departures: the source batches come from our seeded generator, not a DataLoader's; prototypes
use our split's images, not the first shuffled 100,000 of the official loader; reset() also
returns the source-batch stream to where the warm-up left it (the repository's iterator
continues; its continual protocol never resets). Cost per image: four forward passes (student on x and x', teacher, a source
image) and one backward pass; setup adds the prototype pass and the warm-up.
"""

from __future__ import annotations

import copy
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...core.hashing import seed_from
from ...core.imageset import ImageSet, centre_crop
from ...models.forward import to_float
from ..base import Method
from ..normalisation.bn_adapt import use_batch_statistics
from ..registry import register_method
from ..snapshot import Snapshot
from .cotta import weights_and_biases
from .cotta_augment import cotta_augment
from .losses import supervised_contrastive, symmetric_cross_entropy


class SourceBatches:
    """Labelled source images in shuffled batches, a new permutation every epoch, the last batch of an epoch short."""

    def __init__(self, train: ImageSet, batch_size: int, generator: torch.Generator, device: torch.device):
        self.train, self.batch_size, self.generator, self.device = train, batch_size, generator, device
        self.order, self.at = torch.empty(0, dtype=torch.long), 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.at >= len(self.order):
            self.order, self.at = torch.randperm(len(self.train), generator=self.generator), 0
        rows = self.order[self.at:self.at + self.batch_size]
        self.at += len(rows)
        images = centre_crop(self.train.images[rows], self.train.window)
        return to_float(images.to(self.device)), self.train.labels[rows].to(self.device)


def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters()):
            t.copy_(momentum * t + (1 - momentum) * s)


@register_method("rmt")
class RMT(Method):
    """Robust mean teacher: symmetric cross-entropy to an EMA teacher, contrastive alignment to source prototypes, source replay."""

    def __init__(self, lr: Annotated[float, Field(ge=0)] = 1e-3, steps: Annotated[int, Field(ge=1, le=100)] = 1,
                 ema: Annotated[float, Field(ge=0, le=1)] = 0.999,
                 lambda_ce_src: Annotated[float, Field(ge=0)] = 1.0,
                 lambda_ce_trg: Annotated[float, Field(ge=0)] = 1.0,
                 lambda_cont: Annotated[float, Field(ge=0)] = 1.0,
                 temperature: Annotated[float, Field(gt=0)] = 0.1,
                 projection_dim: Annotated[int, Field(ge=1, le=4096)] = 128,
                 warmup_samples: Annotated[int, Field(ge=0, le=10_000_000)] = 50_000,
                 prototype_samples: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000,
                 source_batch_size: Annotated[int, Field(ge=1, le=4096)] = 200):
        self.lr, self.steps, self.ema = lr, steps, ema
        self.lambda_src, self.lambda_trg, self.lambda_cont = lambda_ce_src, lambda_ce_trg, lambda_cont
        self.temperature, self.projection_dim = temperature, projection_dim
        self.warmup_samples, self.prototype_samples = warmup_samples, prototype_samples
        self.source_batch_size = source_batch_size

    def setup(self, model, source):
        super().setup(model, source)
        if source.train is None:
            raise RuntimeError("rmt needs the source training split (SourceContext.train)")
        use_batch_statistics(self.model)
        self.model.requires_grad_(False)
        params = weights_and_biases(self.model)
        for p in params:
            p.requires_grad_(True)
        self.teacher = copy.deepcopy(self.model).requires_grad_(False)
        self.generator = torch.Generator().manual_seed(seed_from("rmt", source.seed))
        device = next(self.model.parameters()).device
        self.prototypes = self._prototypes(source.train, source.num_classes, device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_from("rmt_projector", source.seed))
            d = self.prototypes.shape[1]
            self.projector = nn.Sequential(nn.Linear(d, self.projection_dim), nn.ReLU(),
                                           nn.Linear(self.projection_dim, self.projection_dim)).to(device)
        self.optimizer = torch.optim.Adam([{"params": params}, {"params": list(self.projector.parameters())}],
                                          lr=self.lr, betas=(0.9, 0.999))
        self.source_batches = SourceBatches(source.train, self.source_batch_size, self.generator, device)
        self._warm_up()
        self.initial = Snapshot(self.model, self.optimizer, self.generator)
        self.initial_teacher = copy.deepcopy(self.teacher.state_dict())
        self.initial_projector = copy.deepcopy(self.projector.state_dict())
        self.initial_source_position = self.source_batches.order, self.source_batches.at

    def reset(self):
        self.initial.restore()
        self.teacher.load_state_dict(self.initial_teacher)
        self.projector.load_state_dict(self.initial_projector)
        self.source_batches.order, self.source_batches.at = self.initial_source_position

    @torch.no_grad()
    def _prototypes(self, train: ImageSet, k: int, device: torch.device) -> torch.Tensor:
        batches = SourceBatches(train, self.source_batch_size, torch.Generator().manual_seed(
            seed_from("rmt_prototypes", self.source.seed)), device)
        features, labels, n = [], [], min(self.prototype_samples, len(train))
        while sum(len(f) for f in features) < n:
            x, y = batches.next()
            features.append(self.model.features_and_logits(x)[0])
            labels.append(y)
        f, y = torch.cat(features)[:n], torch.cat(labels)[:n]
        return torch.stack([f[y == c].mean(0) for c in range(k)])

    def _warm_up(self) -> None:
        steps = self.warmup_samples // self.source_batch_size
        for i in range(steps):
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr * (i + 1) / steps
            x, _ = self.source_batches.next()
            with torch.enable_grad():
                symmetric_cross_entropy(self.model(x), self.teacher(x)).mean(0).backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            ema_update(self.teacher, self.model, self.ema)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def predict(self, x):
        for _ in range(self.steps):
            out = self._step(x)
        return out

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            features, logits = self.model.features_and_logits(x)
            features_aug, logits_aug = self.model.features_and_logits(cotta_augment(x, self.generator))
            target = self.teacher(x)
            with torch.no_grad():
                nearest = F.cosine_similarity(self.prototypes.unsqueeze(1), features.unsqueeze(0), dim=-1).argmax(0)
            views = torch.stack([self.prototypes[nearest], features, features_aug], dim=1)
            views = F.normalize(self.projector(views), p=2, dim=-1)
            loss = (self.lambda_trg * (0.5 * symmetric_cross_entropy(logits, target)
                                       + 0.5 * symmetric_cross_entropy(logits_aug, target)).mean(0)
                    + self.lambda_cont * supervised_contrastive(views, self.temperature))
            if self.lambda_src > 0:
                xs, ys = self.source_batches.next()
                loss = loss + self.lambda_src * F.cross_entropy(self.model(xs), ys.long())
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        ema_update(self.teacher, self.model, self.ema)
        return (logits + target).detach()
