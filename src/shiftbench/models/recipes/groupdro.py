"""GroupDRO (Sagawa et al. 2020): minimise the worst group's loss through online group weights.

Every step, each group present in the batch gets its mean loss l_g, the weights
move by exponentiated gradient ascent, q_g <- q_g * exp(eta * l_g) then q /= sum(q),
and the model descends sum_g q_g l_g. Groups come from the training set
(`train_shifts` such as spurious_colour attach (label, colour) groups); a training
set without groups falls back to its labels (class-level DRO), said in the info.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...core.imageset import ImageSet
from .erm import fit_sgd, training_view
from .registry import BatchSize, Epochs, LearningRate, Precision, WeightDecay, register_recipe


def update_group_weights(q: torch.Tensor, group_loss: torch.Tensor, present: torch.Tensor, eta: float) -> torch.Tensor:
    """One exponentiated-gradient ascent step on the simplex; groups absent from the batch keep their weight."""
    q = torch.where(present, q * torch.exp(eta * group_loss), q)
    return q / q.sum()


@register_recipe("groupdro")
def groupdro(model: nn.Module, train: ImageSet, val: ImageSet, *, seed: int, device: torch.device,
             progress: bool = True, epochs: Epochs = 15, lr: LearningRate = 0.05, batch_size: BatchSize = 64,
             weight_decay: WeightDecay = 5e-4, augment: bool = True,
             eta: Annotated[float, Field(gt=0)] = 0.01, precision: Precision = "float64") -> dict[str, Any]:
    """Group-reweighted training: SGD as in erm, loss = q-weighted mean of per-group losses."""
    from ..forward import accuracy

    source = "groups" if train.groups is not None else "labels"
    raw = train.groups if train.groups is not None else train.labels
    names, group_of = torch.unique(raw, return_inverse=True)
    n_groups = len(names)
    q = torch.full((n_groups,), 1.0 / n_groups, device=device)

    def group_weighted_loss(rows, g):
        nonlocal q
        losses = F.cross_entropy(model(training_view(train, rows, g, augment).to(device)),
                                 train.labels[rows].to(device), reduction="none")
        grp = group_of[rows].to(device)
        sums = losses.new_zeros(n_groups).index_add_(0, grp, losses)
        counts = torch.bincount(grp, minlength=n_groups).float()
        group_loss = sums / counts.clamp(min=1)
        q = update_group_weights(q, group_loss.detach(), counts > 0, eta)
        return (q * group_loss).sum()

    fit_sgd(model, train, group_weighted_loss, seed=seed, device=device, progress=progress, epochs=epochs, lr=lr,
            batch_size=batch_size, weight_decay=weight_decay, desc="training source model (groupdro)", precision=precision)
    return {"val_accuracy": accuracy(model, val, device), "epochs": epochs, "groups_from": source,
            "group_weights": {int(k): round(float(v), 4) for k, v in zip(names, q.cpu())}}
