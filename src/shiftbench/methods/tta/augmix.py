"""MEMO's AugMix views of one image (Zhang, Levine, Finn 2022, after Hendrycks et al. 2020), on tensors.

One view: random crop with 4 px zero padding and a horizontal flip with p 0.5 give x0; three
chains of 1-3 operations each (uniform among autocontrast, equalize, rotate, solarize, shear x,
shear y, translate x, translate y, posterize; severity 1, as MEMO's CIFAR code calls them) start
from x0; the view is m x0 + (1 - m) sum_i w_i chain_i, w ~ Dirichlet(1, 1, 1), m ~ Beta(1, 1).
Operation strengths follow MEMO's code at severity 1 (rotate by an integer number of degrees
below 3, solarize above 256 minus at most 25 levels, shear up to 0.03, translate by 0 or 1 px,
posterize to 4 bits); geometric ones fill with grey 128 and sample bilinearly as PIL does (output
pixel centres mapped through the affine map). The operations work on uint8 images, as PIL's do;
mixing is in [0, 1], which equals MEMO's mixing of normalised images because the weights sum to 1.
All draws come from `generator`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...core.lazy import LazyModule

TF = LazyModule("torchvision.transforms.functional")

WIDTH = 3
MAX_DEPTH = 3
PAD = 4
FILL = 128.0


def _u(low: float, high: float, g: torch.Generator) -> float:
    return low + (high - low) * torch.rand(1, generator=g).item()


def _level(g: torch.Generator) -> float:
    return _u(0.1, 1.0, g)  # MEMO's rand_lvl(1): severity 1


def _sign(g: torch.Generator) -> float:
    return -1.0 if torch.rand(1, generator=g).item() > 0.5 else 1.0


def pil_affine(img: torch.Tensor, coeffs: tuple[float, ...]) -> torch.Tensor:
    """PIL's Image.transform(AFFINE, (a, b, c, d, e, f), BILINEAR, fillcolor=128) on a uint8 (C, H, W) image:
    output pixel centre (x, y) samples the input at (a x + b y + c, d x + e y + f)."""
    _, h, w = img.shape
    a, b, cc, d, e, f = coeffs
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5, torch.arange(w, dtype=torch.float32) + 0.5,
                            indexing="ij")
    u = a * xs + b * ys + cc
    v = d * xs + e * ys + f
    grid = torch.stack([u / w * 2 - 1, v / h * 2 - 1], dim=-1).unsqueeze(0).to(img.device)
    src = torch.cat([img.float(), torch.ones(1, h, w, device=img.device)]).unsqueeze(0)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    inside = out[-1:]
    out = out[:-1] + (1 - inside) * FILL
    return out.round().clamp(0, 255).to(torch.uint8)


def _rotate(img, g):
    degrees = int(_level(g) * 30 / 10) * _sign(g)
    angle = -math.radians(degrees)
    cx, cy = img.shape[2] / 2, img.shape[1] / 2
    a, b, d, e = math.cos(angle), math.sin(angle), -math.sin(angle), math.cos(angle)
    return pil_affine(img, (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy))


def _solarize(img, g):
    return TF.solarize(img, 256 - int(_level(g) * 256 / 10))


def _shear_x(img, g):
    return pil_affine(img, (1, _level(g) * 0.3 / 10 * _sign(g), 0, 0, 1, 0))


def _shear_y(img, g):
    return pil_affine(img, (1, 0, 0, _level(g) * 0.3 / 10 * _sign(g), 1, 0))


def _translate_x(img, g):
    return pil_affine(img, (1, 0, int(_level(g) * (img.shape[2] / 3) / 10) * _sign(g), 0, 1, 0))


def _translate_y(img, g):
    return pil_affine(img, (1, 0, 0, 0, 1, int(_level(g) * (img.shape[1] / 3) / 10) * _sign(g)))


def _posterize(img, g):
    return TF.posterize(img, 4 - int(_level(g) * 4 / 10))


OPERATIONS = (lambda img, g: TF.autocontrast(img), lambda img, g: TF.equalize(img), _rotate, _solarize, _shear_x,
              _shear_y, _translate_x, _translate_y, _posterize)


def augmix_view(image: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One AugMix view of a float (C, H, W) image in [0, 1]."""
    c, h, w = image.shape
    x = (image * 255).round().clamp(0, 255).to(torch.uint8)
    x = F.pad(x, (PAD, PAD, PAD, PAD))
    top, left = (int(torch.randint(0, 2 * PAD + 1, (1,), generator=g)) for _ in range(2))
    x = x[:, top : top + h, left : left + w]
    if torch.rand(1, generator=g).item() < 0.5:
        x = x.flip(-1)
    weights = -torch.log(torch.rand(WIDTH, generator=g).clamp_min(1e-12))  # Dirichlet(1, 1, 1) by normalised Exp(1)
    weights = weights / weights.sum()
    m = torch.rand(1, generator=g).item()  # Beta(1, 1)
    mix = torch.zeros(c, h, w, device=image.device)
    for i in range(WIDTH):
        chain = x
        for _ in range(int(torch.randint(1, MAX_DEPTH + 1, (1,), generator=g))):
            chain = OPERATIONS[int(torch.randint(0, len(OPERATIONS), (1,), generator=g))](chain, g)
        mix += weights[i].item() * chain.float() / 255
    return m * x.float() / 255 + (1 - m) * mix


def augmix_views(image: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """n independent AugMix views of a float (C, H, W) image: (n, C, H, W)."""
    return torch.stack([augmix_view(image, g) for _ in range(n)])
