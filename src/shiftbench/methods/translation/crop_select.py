"""Robust Inference by Crop Selection (after Shifman & Weiss 2024, "Lost in Translation").

The model sees a window x window crop; this method picks where, as the argmax
of a score that depends only on the crop's own pixels, so that when the image
moves by d the chosen crop moves with it and the model sees the same pixels.

Score (our choice; the paper's exact score is not public): the Gaussian-weighted
energy of the crop,

    score(crop) = sum_{y,x} K[y, x] * sum_c (255 * crop[c, y, x])^2,
    K[y, x] = g[y] * g[x],  g[t] = round(1000 * exp(-(t - centre)^2 / (2 sigma^2))),  sigma = sigma_frac * window,

a low-pass of the energy image read at the crop's centre. Pixel values and K
are integers and the sums stay below 2^53, so the scores are exact in float64
whatever the summation order: equal crops get bit-identical scores.

realistic mode: the allowed crops are those within `margin` px (per axis) of the
centred one. The guarantee breaks only where the argmax lies within d of the
border of that square, so a larger margin gives more consistency; the crops it
allows lie further from where the model was trained to look, which may cost
accuracy. The margin is clipped to the room the image has around the window.
circular mode: the score is computed for every wrapped crop of the window and
the window is rolled so that the argmax crop starts at the origin (the rolled
window is that crop, its high-energy centre in the middle). This makes the
input, and so the prediction, identical under every integer circular shift
(exact ties between distinct positions are broken by scan order, the one case
where that can fail).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from ...core.imageset import centre_crop
from ..base import Method
from ..registry import register_method


def gaussian_weights(window: int, sigma: float, device: torch.device) -> torch.Tensor:
    """Integer 1-D Gaussian weights (window,), peak 1000, centred on the window; K = outer(g, g)."""
    r = torch.arange(window, dtype=torch.float64, device=device) - (window - 1) / 2
    return torch.round(1000 * torch.exp(-r * r / (2 * sigma * sigma)))


def window_scores(energy: torch.Tensor, g: torch.Tensor, positions: int, circular: bool = False) -> torch.Tensor:
    """score[i, j] = sum_{a,b} g[a] g[b] energy[i + a, j + b] for the first `positions` rows and columns.

    As band matrices, score = B @ energy @ B^T (B[i, i + a] = g[a]); with circular=True
    the band wraps around the image. Exact: every product and sum is an integer below 2^53.
    """
    w, size = len(g), energy.shape[-1]
    k = torch.arange(size, device=g.device)
    a = k[None, :] - torch.arange(positions, device=g.device)[:, None]  # (positions, size): k - i
    if circular:
        a = a % size
    band = torch.where((a >= 0) & (a < w), g[a.clamp(0, w - 1)], torch.zeros((), dtype=g.dtype, device=g.device))
    return band @ energy @ band.T


def pixel_energy(x: torch.Tensor) -> torch.Tensor:
    """sum_c (255 x)^2 as exact integers in float64, (B, H, W); x holds uint8 values / 255."""
    return torch.round(x.double() * 255).pow(2).sum(1)


def crops_at(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, window: int) -> torch.Tensor:
    """Crop image i at (top[i], left[i]), size window, on x's device."""
    ar = torch.arange(window, device=x.device)
    rows = (top[:, None] + ar)[:, :, None]
    cols = (left[:, None] + ar)[:, None, :]
    idx = torch.arange(len(x), device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2).contiguous()


def roll_each(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """torch.roll of image i by (dy[i], dx[i]) on x's device."""
    h, w = x.shape[-2:]
    rows = ((torch.arange(h, device=x.device)[None, :] - dy[:, None]) % h)[:, :, None]
    cols = ((torch.arange(w, device=x.device)[None, :] - dx[:, None]) % w)[:, None, :]
    idx = torch.arange(len(x), device=x.device)[:, None, None]
    return x.permute(0, 2, 3, 1)[idx, rows, cols].permute(0, 3, 1, 2).contiguous()


@register_method("crop_select")
class CropSelect(Method):
    """Predict on the crop that maximises a content score (Gaussian-weighted energy) over the allowed positions."""

    sees_full_image = True

    def __init__(self, margin: Annotated[int, Field(ge=0, le=64)] = 2, mode: Literal["realistic", "circular"] = "realistic",
                 sigma_frac: Annotated[float, Field(gt=0)] = 0.25):
        self.margin, self.mode, self.sigma_frac = margin, mode, sigma_frac
        self.chosen = 0
        self.on_border = 0

    @torch.no_grad()
    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The window-sized input the model gets for each image of x."""
        window = self.window or x.shape[-1]
        g = gaussian_weights(window, self.sigma_frac * window, x.device)
        if self.mode == "circular":
            x = centre_crop(x, window)
            score = window_scores(pixel_energy(x), g, window, circular=True).flatten(1)
            best = score.argmax(1)  # the wrapped crop starting at (i, j) scores best; its centre goes to the middle
            dy, dx = -(best // window), -(best % window)
            return roll_each(x, dy, dx)
        room = (x.shape[-1] - window) // 2
        m = min(self.margin, room)
        if m == 0:
            return centre_crop(x, window)
        base = room - m
        energy = pixel_energy(x[:, :, base : base + window + 2 * m, base : base + window + 2 * m])
        score = window_scores(energy, g, 2 * m + 1).flatten(1)  # (B, (2m+1)^2), position (i, j) = top-left base + (i, j)
        best = score.argmax(1)
        i, j = best // (2 * m + 1), best % (2 * m + 1)
        self.last_on_border = (i == 0) | (i == 2 * m) | (j == 0) | (j == 2 * m)  # where the guarantee may break
        self.chosen += len(x)
        self.on_border += int(self.last_on_border.sum())
        return crops_at(x, base + i, base + j, window)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.select(x))

    def describe(self):
        info = {"mode": self.mode, "margin": self.margin}
        if self.chosen:
            info["argmax_on_border"] = self.on_border / self.chosen
        return info

