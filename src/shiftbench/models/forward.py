"""Running a model over an ImageSet: the one forward loop every stage calls (methods, training, the workspace)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..core.imageset import ImageSet, centre_crop
from ..core.spill import staged


def batches(n: int, batch_size: int) -> Iterable[slice]:
    for i in range(0, n, batch_size):
        yield slice(i, min(i + batch_size, n))


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1], the input every model and method receives."""
    return images_uint8.float().div_(255)


@torch.no_grad()
def forward(model: nn.Module, data: ImageSet, batch_size: int, device: torch.device) -> torch.Tensor:
    """The model's logits (in eval mode) for every row of data, in order, on the CPU; each image
    centre-cropped to the window the model sees."""
    model.eval()
    images = staged(data.images, device)
    return torch.cat([model(to_float(centre_crop(images[s].to(device), data.window))).cpu()
                      for s in batches(len(data), batch_size)])


def accuracy(model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 256) -> float:
    """Top-1 accuracy of the model on data (0 for an empty set)."""
    if len(data) == 0:
        return 0.0
    return (forward(model, data, batch_size, device).argmax(1) == data.labels).double().mean().item()
