"""TPT's augmented views of one test image: the image itself, then random resized crops with random flips.

As torchvision's RandomResizedCrop (scale (0.08, 1), ratio (3/4, 4/3), ten tries, then the
centre crop of the nearest allowed ratio) and RandomHorizontalFlip(0.5), drawn from a
torch.Generator so a cell is reproducible; each crop is resized back to the image's own side
(bilinear, antialiased) and the model's preprocessing takes it from there. TPT applies AugMix
on top only for its fine-grained datasets, not for ImageNet and its variants; that is not done here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def crop_box(h: int, w: int, g: torch.Generator, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(top, left, height, width) of one random resized crop, by torchvision's rule."""
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand((), generator=g).item())
        aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * torch.rand((), generator=g).item())
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augmented_views(image: torch.Tensor, n_views: int, g: torch.Generator) -> torch.Tensor:
    """(n_views, C, H, W): the image (C, H, W) first, then n_views - 1 random resized crops, each flipped with p 0.5."""
    h, w = image.shape[-2:]
    views = [image]
    for _ in range(n_views - 1):
        top, left, ch, cw = crop_box(h, w, g)
        crop = image[None, :, top : top + ch, left : left + cw]
        crop = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)
        if torch.rand((), generator=g).item() < 0.5:
            crop = crop.flip(-1)
        views.append(crop)
    return torch.stack(views)
