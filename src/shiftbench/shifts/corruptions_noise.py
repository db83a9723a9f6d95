"""Noise corruptions (CIFAR-10-C / ImageNet-C): Gaussian, shot, impulse, speckle."""

from __future__ import annotations

import torch

from .corruption import register_corruption


@register_corruption(
    "gaussian_noise",
    cifar=(0.04, 0.06, 0.08, 0.09, 0.10),
    imagenet=(0.08, 0.12, 0.18, 0.26, 0.38),
)
def gaussian_noise(x, sigma, g):
    """Additive Gaussian noise with standard deviation sigma, independent per value."""
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
    """Salt-and-pepper noise (skimage 's&p'): a fraction `amount` of values set to 0 or 1, half each."""
    u = torch.rand(x.shape, generator=g, device=x.device)  # u < amount: hit; below amount / 2: salt
    return torch.where(u < amount, (u < amount / 2).to(x.dtype), x)


@register_corruption(
    "speckle_noise",
    cifar=(0.06, 0.10, 0.12, 0.16, 0.20),
    imagenet=(0.15, 0.20, 0.35, 0.45, 0.60),
)
def speckle_noise(x, sigma, g):
    """Multiplicative noise x + x * N(0, sigma)."""
    return x + x * sigma * torch.randn(x.shape, generator=g, device=x.device)
