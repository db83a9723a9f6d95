"""The published HSV round trip (skimage rgb2hsv, change V or S, hsv2rgb, float64, times 255,
truncated) at a pixel's brightest and darkest channel, which depend on its max V and min m alone.

Both come back as whole levels surprisingly often (a brightness of 0.2 adds exactly 51 levels;
a saturation x1.5 moves every other channel by a whole number), and there the float64 round
trip lands a hair above or below the level: truncation keeps or drops it. Tables over (V, m)
hold the published values, so brightness and saturate can pin those two channels exactly and
interpolate the middle one between them.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def extreme_levels(change: str, a: float, b: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (256 * 256,) tables at V * 256 + m of the published outputs times 255 for the
    channel at V and the channel at m, rounded towards zero to float32 (so truncating them
    gives the published level). change 'brightness': V' = clip(V + a); 'saturate':
    S' = clip(S * a + b)."""
    v = (torch.arange(256, dtype=torch.float64) / 255)[:, None]
    low = (torch.arange(256, dtype=torch.float64) / 255)[None, :]
    delta = v - low  # (entries with m > V are never read)
    s = torch.where(delta == 0, torch.zeros_like(delta), delta / v)
    if change == "brightness":
        v, s = (v + a).clamp(0, 1), s
    else:
        s = (s * a + b).clamp(0, 1)
    top = (v.clamp(0, 1) * 255).expand(256, 256)
    bottom = ((v * (1 - s)).clamp(0, 1) * 255).expand(256, 256)
    return _towards_zero(top).flatten(), _towards_zero(bottom).flatten()


def _towards_zero(x: torch.Tensor) -> torch.Tensor:
    """float64 -> float32 rounded towards zero (a non-negative x truncates to the same whole number)."""
    f = x.float()
    return torch.where(f.double() > x, torch.nextafter(f, torch.zeros_like(f)), f)


def pinned_channels(images: torch.Tensor, change: str, a: float, b: float = 0.0) -> torch.Tensor:
    """float32 (N, 3, H, W) on the 0..255 scale: each pixel's max and min channels at their
    published values (exact after truncation), the middle channel linearly between them by its
    own place between max and min, as the HSV change keeps it (float32 rounding). Grey pixels
    have hue 0 in skimage and come back as (max value, min value, min value)."""
    high8, low8 = images.amax(1, keepdim=True), images.amin(1, keepdim=True)
    at = (high8.to(torch.int32) * 256).add_(low8).view(-1)
    tops, bottoms = extreme_levels(change, float(a), float(b))
    top = tops.to(images.device).index_select(0, at).view(high8.shape)
    bottom = bottoms.to(images.device).index_select(0, at).view(high8.shape)
    spread = high8.to(torch.float32).sub_(low8)
    # torch.lerp gives both ends exactly: start at weight 0, end at weight 1
    weight = images.to(torch.float32).sub_(low8).div_(spread.clamp_min(1))
    out = torch.lerp(bottom, top, weight)
    grey = spread.clamp_max_(1).neg_().add_(1)  # whole numbers: 1 where max = min (compares are slow here)
    out[:, :1].add_(grey.mul_(top.sub_(bottom)))
    return out
