"""Noise corruptions (CIFAR-10-C / ImageNet-C): Gaussian, shot, impulse, speckle.

Each has the float definition and an 8-bit version the registered shift runs (same output
distribution, fewer passes over memory). Gaussian, shot and speckle noise spend their time
drawing a random number per value, which torch's CPU generators do serially, so their blocks
run on several threads at once; impulse noise draws only for the values it hits.
"""

from __future__ import annotations

import functools
import math

import torch

from .corruption import THREADED_BLOCK, levels_to_uint8, on_uint8, register_corruption, to_uint8
from .level_sampling import alias_table, sample_levels


@register_corruption(
    "gaussian_noise",
    cifar=(0.04, 0.06, 0.08, 0.09, 0.10),
    imagenet=(0.08, 0.12, 0.18, 0.26, 0.38),
    threaded=True,
    block_values=THREADED_BLOCK,
)
def gaussian_noise(x, sigma, g):
    """Additive Gaussian noise with standard deviation sigma, independent per value."""
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device)


@on_uint8("gaussian_noise")
def gaussian_noise_uint8(images, sigma, g):
    noise = torch.randn(images.shape, generator=g, device=images.device)
    return levels_to_uint8(noise.mul_(255 * sigma).add_(images))


@register_corruption("shot_noise", cifar=(500, 250, 100, 75, 50), imagenet=(60, 25, 12, 5, 3), threaded=True,
                     block_values=THREADED_BLOCK)
def shot_noise(x, c, g):
    """Poisson photon noise: Poisson(x * c) / c."""
    return torch.poisson(x * c, generator=g) / c


@functools.lru_cache(maxsize=16)
def shot_noise_levels(c: float) -> torch.Tensor:
    """P[i, j]: probability that shot noise turns 8-bit level i into level j, computed in
    float64 as the published generators do (rate (i / 255) * c, Poisson count / c truncated to
    8 bits). Counts of c or more all come out as 255, so the Poisson mass beyond c goes there."""
    rate = (torch.arange(256, dtype=torch.float64) / 255 * c)[:, None]
    k = torch.arange(int(c) + 2, dtype=torch.float64)
    pmf = torch.exp(torch.xlogy(k, rate) - rate - torch.lgamma(k + 1))
    level = to_uint8(k / c).long()
    probs = torch.zeros(256, 256, dtype=torch.float64).index_add_(1, level, pmf)
    probs[:, 255] += (1 - pmf.sum(1)).clamp_min(0)
    return probs


@functools.lru_cache(maxsize=16)
def _shot_noise_table(c: float) -> torch.Tensor:
    return alias_table(shot_noise_levels(c))


@on_uint8("shot_noise")
def shot_noise_uint8(images, c, g):
    return sample_levels(images, _shot_noise_table(float(c)), g)


@register_corruption(
    "impulse_noise",
    cifar=(0.01, 0.02, 0.03, 0.05, 0.07),
    imagenet=(0.03, 0.06, 0.09, 0.17, 0.27),
)
def impulse_noise(x, amount, g):
    """Salt-and-pepper noise (skimage 's&p'): a fraction `amount` of values set to 0 or 1, half each."""
    u = torch.rand(x.shape, generator=g, device=x.device)  # u < amount: hit; below amount / 2: salt
    return torch.where(u < amount, (u < amount / 2).to(x.dtype), x)


def bernoulli_positions(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    """Indices of the successes among n independent Bernoulli(p) trials, drawn as the geometric
    gaps between successes: about n * p random numbers instead of n."""
    if p <= 0 or n == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    if p >= 1:
        return torch.arange(n, device=device)
    log_miss = math.log1p(-p)
    parts, last = [], -1
    while last < n - 1:
        expected = (n - 1 - last) * p
        u = torch.rand(int(expected + 6 * math.sqrt(expected) + 16), generator=g, device=device)
        # inverse CDF of Geometric(p) on {1, 2, ...}: P(gap > k) = (1 - p)^k
        gaps = u.neg_().add_(1).log_().div_(log_miss).floor_().add_(1).long()  # (log1p_ is not vectorised)
        positions = gaps.cumsum_(0).add_(last)
        parts.append(positions)
        last = int(positions[-1])
    positions = torch.cat(parts)  # increasing
    return positions[: int(torch.searchsorted(positions, n))]


@on_uint8("impulse_noise")
def impulse_noise_uint8(images, amount, g):
    out = images.clone()
    flat = out.view(-1)
    hits = bernoulli_positions(flat.numel(), amount, g, images.device)
    salt = torch.randint(0, 2, hits.shape, generator=g, device=images.device, dtype=torch.uint8)
    flat.scatter_(0, hits, salt.mul_(255))
    return out


@register_corruption(
    "speckle_noise",
    cifar=(0.06, 0.10, 0.12, 0.16, 0.20),
    imagenet=(0.15, 0.20, 0.35, 0.45, 0.60),
    threaded=True,
    block_values=THREADED_BLOCK,
)
def speckle_noise(x, sigma, g):
    """Multiplicative noise x + x * N(0, sigma)."""
    return x + x * sigma * torch.randn(x.shape, generator=g, device=x.device)


@on_uint8("speckle_noise")
def speckle_noise_uint8(images, sigma, g):
    noise = torch.randn(images.shape, generator=g, device=images.device)
    return levels_to_uint8(noise.mul_(sigma).add_(1).mul_(images))
