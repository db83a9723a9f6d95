"""CoTTA's test-time augmentation (Wang et al., CVPR 2022), also RoTTA's strong augmentation: one random draw per batch.

In order: clip to [0, 1]; colour jitter (brightness 0.6-1.4, contrast 0.7-1.3, saturation
0.5-1.5, hue +-0.06, gamma 0.7-1.3, applied in a random order); edge-pad by half the side;
random affine (rotation +-15 degrees, translation up to 1/16 of the padded side, scale 0.9-1.1,
bilinear, zero fill); Gaussian blur (5x5, sigma 0.001-0.5); centre crop back to the input size;
horizontal flip with p 0.5; additive Gaussian noise (std 0.005); clip. The `soft` ranges are
the official code's alternative. The whole batch shares one set of parameters, as in the
official code (torchvision transforms applied to a batch tensor). ROID and CMF use the variant
the test-time-adaptation repository (mariodoebler) builds for them: reflection padding and no
blur or noise (`padding="reflect"`, `blur_and_noise=False`).

Parameters are drawn from `generator` (a CPU generator) in exactly the order and with exactly
the calls the official torchvision pipeline makes on torch's global generator, so the same seed
gives the same augmentation as the official code.
"""

from __future__ import annotations

import torch

from ...core.lazy import LazyModule

TF = LazyModule("torchvision.transforms.functional")

STRONG = {"brightness": (0.6, 1.4), "contrast": (0.7, 1.3), "saturation": (0.5, 1.5), "hue": (-0.06, 0.06),
          "gamma": (0.7, 1.3), "degrees": (-15.0, 15.0), "scale": (0.9, 1.1), "blur_sigma": (0.001, 0.5)}
SOFT = {"brightness": (0.8, 1.2), "contrast": (0.85, 1.15), "saturation": (0.75, 1.25), "hue": (-0.03, 0.03),
        "gamma": (0.85, 1.15), "degrees": (-8.0, 8.0), "scale": (0.95, 1.05), "blur_sigma": (0.001, 0.25)}
TRANSLATE = 1 / 16
NOISE_STD = 0.005
FLIP_P = 0.5


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return torch.empty(1).uniform_(low, high, generator=generator).item()


def _jitter(x: torch.Tensor, r: dict, generator: torch.Generator) -> torch.Tensor:
    for i in torch.randperm(5, generator=generator).tolist():
        if i == 0:
            x = TF.adjust_brightness(x, _uniform(*r["brightness"], generator))
        elif i == 1:
            x = TF.adjust_contrast(x, _uniform(*r["contrast"], generator))
        elif i == 2:
            x = TF.adjust_saturation(x, _uniform(*r["saturation"], generator))
        elif i == 3:
            x = TF.adjust_hue(x, _uniform(*r["hue"], generator))
        else:
            gamma = _uniform(*r["gamma"], generator)
            x = TF.adjust_gamma(x.clamp(1e-8, 1.0), gamma)  # gamma after contrast can meet 0 (NaN gradients)
    return x


def cotta_augment(x: torch.Tensor, generator: torch.Generator, soft: bool = False, padding: str = "edge",
                  blur_and_noise: bool = True) -> torch.Tensor:
    """One augmented copy of the batch x (N, C, H, W) in [0, 1], on x's device."""
    r = SOFT if soft else STRONG
    return geometry_and_noise(_jitter(x.clamp(0.0, 1.0), r, generator), r, generator, padding, blur_and_noise)


def geometry_and_noise(x: torch.Tensor, r: dict, generator: torch.Generator, padding: str = "edge",
                       blur_and_noise: bool = True) -> torch.Tensor:
    """Pad, random affine, blur, centre crop, flip, noise, clip: the steps after the colour jitter."""
    h, w = x.shape[-2:]
    x = TF.pad(x, [w // 2], padding_mode=padding)
    ph, pw = x.shape[-2:]
    angle = _uniform(*r["degrees"], generator)
    tx = round(_uniform(-TRANSLATE * pw, TRANSLATE * pw, generator))
    ty = round(_uniform(-TRANSLATE * ph, TRANSLATE * ph, generator))
    scale = _uniform(*r["scale"], generator)
    x = TF.affine(x, angle, [tx, ty], scale, [0.0, 0.0], interpolation=TF.InterpolationMode.BILINEAR,
                  fill=[0.0] * x.shape[-3])
    if blur_and_noise:
        sigma = _uniform(*r["blur_sigma"], generator)
        x = TF.gaussian_blur(x, [5, 5], [sigma, sigma])
    x = TF.center_crop(x, [h, w])
    if torch.rand(1, generator=generator) < FLIP_P:
        x = TF.hflip(x)
    if blur_and_noise:
        x = x + (torch.randn(x.shape, generator=generator) * NOISE_STD).to(x.device)
    return x.clamp(0.0, 1.0)
