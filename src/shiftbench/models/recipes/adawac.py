"""AdaWAC (Dong, Xie, Ward, ICML 2023): per-sample weights between the supervised loss and augmentation consistency.

Each training sample i holds weights (b_i, 1 - b_i), starting at (1/2, 1/2). A step
draws two random crops of each image, computes the sample's cross-entropy
(mean over the two views) and its consistency loss (mean squared difference of
the penultimate features of the two views, times `consistency`), updates the
weights by online mirror ascent on the simplex,

    b_i <- b_i exp(eta * ce_i),  (1 - b_i) <- (1 - b_i) exp(eta * ac_i),  then renormalise,

and descends mean_i(b_i ce_i + (1 - b_i) ac_i). Samples whose labels the model
cannot fit move towards the label-free consistency loss.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...core.imageset import ImageSet
from .erm import fit_sgd, random_crops
from .registry import BatchSize, Epochs, LearningRate, Precision, WeightDecay, register_recipe


def penultimate(model: nn.Module):
    """A forward hook that keeps the input of `model.head` (the features), or None if there is no head."""
    store: dict[str, torch.Tensor] = {}
    head = getattr(model, "head", None)
    if head is None:
        return store, None
    handle = head.register_forward_hook(lambda mod, inp, out: store.__setitem__("features", inp[0]))
    return store, handle


def mirror_ascent_step(weights: torch.Tensor, ce: torch.Tensor, ac: torch.Tensor, eta: float) -> torch.Tensor:
    """(n, 2) simplex weights over (supervised, consistency) moved towards the larger loss: w * exp(eta * loss), renormalised."""
    w = weights * torch.exp(eta * torch.stack([ce, ac], 1))
    return w / w.sum(1, keepdim=True)


@register_recipe("adawac")
def adawac(model: nn.Module, train: ImageSet, val: ImageSet, *, seed: int, device: torch.device,
           progress: bool = True, epochs: Epochs = 15, lr: LearningRate = 0.05, batch_size: BatchSize = 64,
           weight_decay: WeightDecay = 5e-4, eta: Annotated[float, Field(gt=0)] = 1.0,
           consistency: Annotated[float, Field(ge=0)] = 1.0, precision: Precision = "float64") -> dict[str, Any]:
    """Adaptively weighted augmentation consistency: SGD as in erm on the per-sample mix of CE and consistency."""
    from ..forward import accuracy

    window = train.window or train.image_size
    weights = torch.full((len(train), 2), 0.5, device=device, dtype=getattr(torch, precision))
    store, handle = penultimate(model)

    def weighted_ce_and_consistency(rows, g):
        imgs, y = train.images[rows], train.labels[rows].to(device)
        views = torch.cat([random_crops(imgs, window, g), random_crops(imgs, window, g)])
        logits = model(views.to(device).float().div_(255))
        feats = store.get("features", logits)
        l1, l2 = logits.chunk(2)
        f1, f2 = feats.flatten(1).chunk(2)
        ce = 0.5 * (F.cross_entropy(l1, y, reduction="none") + F.cross_entropy(l2, y, reduction="none"))
        ac = consistency * (f1 - f2).pow(2).mean(1)
        w = mirror_ascent_step(weights[rows.to(device)], ce.detach(), ac.detach(), eta)
        weights[rows.to(device)] = w
        return (w[:, 0] * ce + w[:, 1] * ac).mean()

    try:
        fit_sgd(model, train, weighted_ce_and_consistency, seed=seed, device=device, progress=progress,
                epochs=epochs, lr=lr, batch_size=batch_size, weight_decay=weight_decay,
                desc="training source model (adawac)", precision=precision)
    finally:
        if handle is not None:
            handle.remove()
    b = weights[:, 0].cpu()
    return {"val_accuracy": accuracy(model, val, device), "epochs": epochs,
            "mean_supervised_weight": round(float(b.mean()), 4),
            "fraction_towards_consistency": round(float((b < 0.5).double().mean()), 4)}
