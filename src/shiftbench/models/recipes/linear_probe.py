"""Linear probe: a frozen backbone and a linear head fitted on its features of the source training split.

The backbone comes with the model (`model: {arch: ..., backbone: FILE_OR_MANIFEST}`: every
weight but the head's, e.g. DINOv2 or a CLIP image tower through timm names). Features are the
head's input on the centred training images, computed once; the head minimises the mean
cross-entropy + weight_decay / 2 * ||W||^2 (bias not decayed), a strictly convex problem,
solved to convergence by full-batch L-BFGS from zero: the optimum is unique, so the head does
not depend on the seed or the order of the images (what scikit-learn's multinomial
LogisticRegression with C = 1 / (N * weight_decay) finds too). The model is then cached like
every trained source model, by (data, architecture and backbone sha256, recipe, seed).
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ...core.imageset import ImageSet, centre_crop
from .registry import BatchSize, register_recipe


@torch.no_grad()
def source_features(model: nn.Module, data: ImageSet, device: torch.device, batch_size: int) -> torch.Tensor:
    """The head's input for every image (centred window, eval mode), (N, D) float32 on the device."""
    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = centre_crop(data.images[i : i + batch_size], data.window).to(device).float().div_(255)
        out.append(model.features_and_logits(x)[0].float())
    return torch.cat(out)


def fit_linear_head(features: torch.Tensor, labels: torch.Tensor, num_classes: int, weight_decay: float,
                    max_iter: int, bias: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (C, D), b (C,)) minimising mean CE + weight_decay / 2 ||W||^2, by L-BFGS from zero (b = 0 without bias)."""
    w = torch.zeros(num_classes, features.shape[1], dtype=torch.float64, device=features.device, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, device=features.device, requires_grad=bias)
    x, y = features.double(), labels.to(features.device)
    opt = torch.optim.LBFGS([w, b] if bias else [w], lr=1, max_iter=max_iter, tolerance_grad=1e-10,
                            tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(x @ w.T + b, y) + weight_decay / 2 * (w * w).sum()
        value.backward()
        return value

    opt.step(loss)
    return w.detach(), b.detach()


@register_recipe("linear_probe")
def linear_probe(model: nn.Module, train: ImageSet, val: ImageSet, *, seed: int, device: torch.device,
                 progress: bool = True, weight_decay: Annotated[float, Field(gt=0, le=10)] = 1e-4,
                 max_iter: Annotated[int, Field(ge=1, le=100_000)] = 1000,
                 batch_size: BatchSize = 256) -> dict[str, Any]:
    """Frozen backbone; the linear head fitted by L-BFGS on the backbone's features of the training split."""
    from ..forward import accuracy

    head = model.head
    if not isinstance(head, nn.Linear):
        raise TypeError(f"linear_probe fits an nn.Linear head; '{model.head_name}' is {type(head).__name__}")
    model.to(device)
    model.requires_grad_(False)
    features = source_features(model, train, device, batch_size)
    w, b = fit_linear_head(features, train.labels, train.num_classes, weight_decay, max_iter, head.bias is not None)
    with torch.no_grad():
        head.weight.copy_(w.to(head.weight.dtype))
        if head.bias is not None:
            head.bias.copy_(b.to(head.bias.dtype))
    return {"val_accuracy": accuracy(model, val, device), "features": int(features.shape[1])}
