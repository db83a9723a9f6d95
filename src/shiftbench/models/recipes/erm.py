"""ERM, the default recipe, and the minibatch helpers other recipes share."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...imageset import ImageSet
from . import register_recipe


def random_crops(images: torch.Tensor, window: int, g: torch.Generator) -> torch.Tensor:
    """A random window-sized crop of each image (the standard crop augmentation)."""
    from ...shifts.translation import crop_at

    margin = (images.shape[-1] - window) // 2
    n = len(images)
    dy = torch.randint(-margin, margin + 1, (n,), generator=g)
    dx = torch.randint(-margin, margin + 1, (n,), generator=g)
    return crop_at(images, window, dy, dx)


def batches(train: ImageSet, batch_size: int, g: torch.Generator, augment: bool):
    """Shuffled minibatches of (float images in [0,1] at the model's window, labels, row index)."""
    perm = torch.randperm(len(train), generator=g)
    window = train.window or train.image_size
    for i in range(0, len(perm), batch_size):
        idx = perm[i : i + batch_size]
        imgs = train.images[idx]
        if augment and window < train.image_size:
            imgs = random_crops(imgs, window, g)
        elif window < train.image_size:
            off = (train.image_size - window) // 2
            imgs = imgs[:, :, off : off + window, off : off + window]
        yield imgs.float().div_(255), train.labels[idx], idx


@register_recipe("erm")
def erm(model: nn.Module, train: ImageSet, val: ImageSet, *, seed: int, device: torch.device, progress: bool = True,
        epochs: int = 15, lr: float = 0.05, batch_size: int = 64, weight_decay: float = 5e-4,
        augment: bool = True) -> dict[str, Any]:
    """Empirical risk minimisation: SGD with momentum 0.9, cosine learning rate, crop augmentation."""
    from ..train import evaluate_accuracy, progress_bar

    g = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    bar = progress_bar(epochs, "training source model", progress)
    for _ in range(epochs):
        model.train()
        for x, y, _ in batches(train, batch_size, g, augment):
            loss = F.cross_entropy(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        bar.update()
    bar.close()
    return {"val_accuracy": evaluate_accuracy(model, val, device), "epochs": epochs}
