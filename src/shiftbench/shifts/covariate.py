"""Covariate corruptions (ImageNet-C / CIFAR-10-C), batched torch implementations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .corruption import register_corruption


@register_corruption(
    "gaussian_noise",
    cifar=(0.04, 0.06, 0.08, 0.09, 0.10),
    imagenet=(0.08, 0.12, 0.18, 0.26, 0.38),
)
def gaussian_noise(x, sigma, g):
    """Additive Gaussian noise with standard deviation sigma."""
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device)


@register_corruption("shot_noise", cifar=(500, 250, 100, 75, 50), imagenet=(60, 25, 12, 5, 3))
def shot_noise(x, c, g):
    """Poisson photon noise: Poisson(x * c) / c."""
    return torch.poisson(x * c, generator=g) / c


@register_corruption(
    "impulse_noise",
    cifar=(0.01, 0.02, 0.03, 0.05, 0.07),
    imagenet=(0.03, 0.06, 0.09, 0.17, 0.27),
)
def impulse_noise(x, amount, g):
    """Salt-and-pepper noise on a fraction `amount` of values, half salt, half pepper."""
    u = torch.rand(x.shape, generator=g, device=x.device)
    salt = torch.rand(x.shape, generator=g, device=x.device) < 0.5
    hit = u < amount
    return torch.where(hit & salt, torch.ones_like(x), torch.where(hit, torch.zeros_like(x), x))


@register_corruption("contrast", cifar=(0.75, 0.5, 0.4, 0.3, 0.15), imagenet=(0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(x, c, g):
    """Scale each image around its mean by c."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


@register_corruption("gaussian_blur", cifar=(0.4, 0.6, 0.7, 0.8, 1.0), imagenet=(1, 2, 3, 4, 6))
def gaussian_blur(x, sigma, g):
    """Separable Gaussian blur with standard deviation sigma (truncated at 4 sigma, reflect padding)."""
    radius = max(1, int(4 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad = min(radius, x.shape[-1] - 1)
    k = k[radius - pad : radius + pad + 1]
    y = F.pad(x, (pad, pad, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, pad, pad), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@register_corruption("pixelate", cifar=(0.95, 0.9, 0.85, 0.75, 0.65), imagenet=(0.6, 0.5, 0.4, 0.3, 0.25))
def pixelate(x, factor, g):
    """Box-downsample to factor x size, then box-upsample back (PIL BOX in the originals)."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * factor)), max(1, int(w * factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")
