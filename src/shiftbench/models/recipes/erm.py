"""ERM, the default recipe, and the minibatch helpers other recipes share."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ...core.imageset import ImageSet, centre_crop
from .registry import BatchSize, Epochs, LearningRate, Precision, WeightDecay, register_recipe


def random_crops(images: torch.Tensor, window: int, g: torch.Generator) -> torch.Tensor:
    """A random window-sized crop of each image (the standard crop augmentation)."""
    from ...shifts.translation import crop_at

    margin = (images.shape[-1] - window) // 2
    n = len(images)
    dy = torch.randint(-margin, margin + 1, (n,), generator=g)
    dx = torch.randint(-margin, margin + 1, (n,), generator=g)
    return crop_at(images, window, dy, dx)


def training_view(train: ImageSet, idx: torch.Tensor, g: torch.Generator, augment: bool) -> torch.Tensor:
    """Float images in [0, 1] at the model's window: a random crop each when augmenting, else the centre."""
    imgs = train.images[idx]
    window = train.window or train.image_size
    if augment and window < train.image_size:
        imgs = random_crops(imgs, window, g)
    return centre_crop(imgs, window).float().div_(255)


def fit_sgd(model: nn.Module, train: ImageSet, loss_of_batch: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
            *, seed: int, device: torch.device, progress: bool, epochs: int, lr: float, batch_size: int,
            weight_decay: float, desc: str, precision: Precision = "float64") -> None:
    """The loop every recipe shares: shuffled minibatches of row indices, SGD with Nesterov momentum 0.9,
    weight decay and a one-cycle learning rate. `loss_of_batch(rows, generator)` is the recipe.

    The model trains in `precision` (its float inputs cast to it on the way in) and ends in float32."""
    from ...core.progress import progress_bar

    g = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, precision)
    model.to(device, dtype).train()
    cast = model.register_forward_pre_hook(
        lambda mod, args: tuple(a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    bar = progress_bar(epochs, desc, progress, unit="epoch")
    try:
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(len(train), generator=g)
            for i in range(0, len(perm), batch_size):
                loss = loss_of_batch(perm[i : i + batch_size], g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            bar.update()
    finally:
        bar.close()
        cast.remove()
        model.float()


@register_recipe("erm")
def erm(model: nn.Module, train: ImageSet, val: ImageSet, *, seed: int, device: torch.device, progress: bool = True,
        epochs: Epochs = 15, lr: LearningRate = 0.05, batch_size: BatchSize = 64, weight_decay: WeightDecay = 5e-4,
        augment: bool = True, precision: Precision = "float64") -> dict[str, Any]:
    """Empirical risk minimisation: SGD with momentum 0.9, one-cycle learning rate, crop augmentation."""
    from ..forward import accuracy

    def cross_entropy(rows, g):
        return F.cross_entropy(model(training_view(train, rows, g, augment).to(device)), train.labels[rows].to(device))

    fit_sgd(model, train, cross_entropy, seed=seed, device=device, progress=progress, epochs=epochs, lr=lr,
            batch_size=batch_size, weight_decay=weight_decay, desc="training source model", precision=precision)
    return {"val_accuracy": accuracy(model, val, device), "epochs": epochs}
