"""Weather corruptions (CIFAR-10-C / ImageNet-C): snow, frost (and a generated frost), fog, brightness, spatter."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from .corruption import levels_to_uint8, on_uint8, register_corruption
from .frost_photos import frost_crops
from .hsv_levels import pinned_channels
from .image_ops import (bicubic_upsample, box3, colour, correlate3x3, gaussian_filter, grey, motion_blur,
                        next_power_of_two, plasma_fractal, small_gaussian_filter, uniform, zoom_centre_crop,
                        zoom_crop_size)


@register_corruption(
    "snow",
    cifar=((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
           (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    imagenet=((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
              (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)),
)
def snow(x, p, g):
    """Falling snow: thresholded noise flakes, motion-blurred, added over a brightened image.

    Flakes are N(mu, sigma) noise zoomed, thresholded, 8-bit, motion-blurred along
    U(-135, -45) degrees, added twice (as is and rotated 180 degrees) to an image brightened
    towards 1.5 * grey + 0.5 with weight 1 - blend.

    The originals blurred the flakes with ImageMagick; we use our own kernel version of
    ImageMagick's motion blur (image_ops.motion_blur).
    """
    mu, sigma, zoom, threshold, radius, blur_sigma, blend = p
    n, c, h, w = x.shape
    # the zoom shows only the centre of the noise layer: draw just that part
    crop = (zoom_crop_size(h, zoom), zoom_crop_size(w, zoom))
    flakes = torch.randn((n, 1, *crop), generator=g, device=x.device).mul_(sigma).add_(mu)
    flakes = zoom_centre_crop(flakes, (h, w), zoom)
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes)
    flakes = torch.floor(flakes.clamp(0, 1) * 255) / 255
    angle = torch.rand(n, generator=g, device=x.device) * 90 - 135
    flakes = torch.round(motion_blur(flakes, radius, blur_sigma, angle) * 255) / 255
    x = blend * x + (1 - blend) * torch.maximum(x, grey(x) * 1.5 + 0.5)
    return x + flakes + flakes.flip(-1, -2)


@register_corruption(
    "frost",
    # (image weight, frost weight, shrink of the photos before cropping): the CIFAR-10-C recipe
    # shrinks them to 0.2, the ImageNet-C recipe crops them as they are
    cifar=((1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2), (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)),
    imagenet=((1, 0.4, 1), (0.8, 0.6, 1), (0.7, 0.7, 1), (0.65, 0.7, 1), (0.6, 0.75, 1)),
)
def frost(x, p, g):
    """image_weight * x + frost_weight * a random crop of a published frost photograph.

    As the published generators (frost_photos.frost_crops): one of their first five frost
    photos per image, shrunk to 0.2 for the CIFAR-10-C table, a random crop of the image's
    size. Needs the photos on disk (`shiftbench data fetch imagenet-c-frost`); without them it
    stops with an error, it never falls back to frost_generated.
    """
    image_weight, frost_weight, scale = p
    n, c, h, w = x.shape
    layer = frost_crops(n, h, w, scale, g, x.device).to(x.dtype) / 255
    layer = grey(layer) if c == 1 else layer
    return torch.add(x * image_weight, layer, alpha=frost_weight)


@on_uint8("frost")
def frost_uint8(images, p, g):
    """The published float64 blend, truncated, read from a table of every (pixel, frost) pair of levels."""
    image_weight, frost_weight, scale = p
    n, c, h, w = images.shape
    layer = frost_crops(n, h, w, scale, g, images.device)
    if c == 1:
        out = grey(layer.to(torch.float64)).mul_(frost_weight).add_(images.to(torch.float64) * image_weight)
        return levels_to_uint8(out)
    table = _blend_levels(float(image_weight), float(frost_weight)).to(images.device)
    pairs = images.to(torch.int32).mul_(256).add_(layer)
    return table.index_select(0, pairs.view(-1)).view(images.shape)


@functools.lru_cache(maxsize=16)
def _blend_levels(image_weight: float, frost_weight: float) -> torch.Tensor:
    """uint8 (256 * 256,): np.uint8(np.clip(image_weight * x + frost_weight * frost, 0, 255)) at
    x * 256 + frost, in float64 as the published code (float32 would truncate ~1% of pairs differently)."""
    levels = torch.arange(256, dtype=torch.float64)
    out = (levels[:, None] * image_weight) + (levels[None, :] * frost_weight)
    return out.clamp_(0, 255).to(torch.uint8).view(-1)


FROST_TINT = (0.86, 0.93, 1.0)


def _frost_grey(n: int, h: int, w: int, g: torch.Generator, device) -> torch.Tensor:
    """The procedural frost layer (n, 1, h, w) before its rescaling and tint: ridged
    multi-octave value noise (thin bright crystal veins where smooth noise crosses its middle)
    and fine grain."""
    veins = torch.zeros(n, 1, h, w, device=device)
    amp, total = 1.0, 0.0
    for cells in (3, 6, 12, 24):
        v = uniform((n, 1, cells + 1, cells + 1), g, device)
        ridge = bicubic_upsample(v, (h, w)).mul_(2).sub_(1).abs_().neg_().add_(1).clamp_(0, 1)
        ridge.mul_(ridge).mul_(ridge).mul_(ridge)  # ** 8 by squaring: pow is several times slower
        veins.add_(ridge, alpha=amp)
        total += amp
        amp *= 0.7
    grain = small_gaussian_filter(uniform((n, 1, h, w), g, device), 0.5)
    return grain.mul_(0.15).add_(veins, alpha=0.85 / total)


@register_corruption(
    "frost_generated",
    cifar=((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    imagenet=((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
)
def frost_generated(x, p, g):
    """image_weight * x + frost_weight * a procedural frost texture (no files needed).

    Not the published frost: a texture of ridged value noise (_frost_grey) drawn per image at a
    scale proportional to the image size, rescaled to [0.2, 1], pale blue, with the published
    weights. It brightens images about half as much as the published photographs, so
    accuracies under it are not comparable with published frost numbers.
    """
    image_weight, frost_weight = p
    n, c, h, w = x.shape
    layer = _weighted_frost(n, h, w, frost_weight, g, x.device)
    return torch.addcmul(x * image_weight, layer, colour(FROST_TINT, c, x.device))


@on_uint8("frost_generated")
def frost_generated_uint8(images, p, g):
    # the float version on 0..255 values: one fresh tensor, no round trip
    image_weight, frost_weight = p
    n, c, h, w = images.shape
    layer = _weighted_frost(n, h, w, 255 * frost_weight, g, images.device)
    out = images.to(torch.float32).mul_(image_weight)
    return levels_to_uint8(out.addcmul_(layer, colour(FROST_TINT, c, images.device)))


def _weighted_frost(n: int, h: int, w: int, weight: float, g: torch.Generator, device) -> torch.Tensor:
    """The frost layer rescaled to [0.2, 1] and times weight (n, 1, h, w), before its pale blue
    tint: the rescaling and the weight folded into one scale and offset."""
    tex = _frost_grey(n, h, w, g, device)
    lo, hi = tex.amin(dim=(2, 3), keepdim=True), tex.amax(dim=(2, 3), keepdim=True)
    scale = 0.8 * weight / (hi - lo).clamp_min(1e-6)
    return tex.mul_(scale).add_(0.2 * weight - lo * scale)


@register_corruption(
    "fog",
    cifar=((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    imagenet=((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4)),
    block_values=1 << 20,  # plasma's eight levels of small steps per block: ~15% faster than 2^19 at 224 px
)
def fog(x, p, g):
    """Add amount * a plasma fractal (diamond-square, roughness `decay`), rescale by max / (max + amount).

    The fractal map is the next power of two above the image size (32 for CIFAR, 256 for
    ImageNet, as in the originals), cropped to the image; one map per image.
    """
    amount, decay = p
    plasma = _fog_plasma(x.shape, decay, g, x.device)
    top = x.amax(dim=(1, 2, 3), keepdim=True)
    return torch.add(x, plasma, alpha=amount).mul_(top / (top + amount))


@on_uint8("fog")
def fog_uint8(images, p, g):
    # the float version on 0..255 values: no float round trip
    amount, decay = p
    plasma = _fog_plasma(images.shape, decay, g, images.device)
    top = images.amax(dim=(1, 2, 3), keepdim=True).float().div_(255)
    return levels_to_uint8(images.to(torch.float32).add_(plasma, alpha=255 * amount).mul_(top / (top + amount)))


def _fog_plasma(shape: torch.Size, decay: float, g: torch.Generator, device) -> torch.Tensor:
    """One plasma map per image (n, 1, h, w), cropped from the next power of two above the size."""
    n, _, h, w = shape
    return plasma_fractal(n, next_power_of_two(max(h, w)), decay, g, device)[:, None, :h, :w]


@register_corruption("brightness", cifar=(0.05, 0.1, 0.15, 0.2, 0.3), imagenet=(0.1, 0.2, 0.3, 0.4, 0.5))
def brightness(x, c, g):
    """Add c to V in HSV (skimage), clipped to [0, 1].

    Computed without leaving RGB: with hue and saturation fixed every channel is proportional
    to V, so the channels scale by V' / V (grey pixels, V = 0, become V').
    """
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    return torch.where(v > 0, x * (v_new / v.clamp_min(1e-12)), v_new.expand_as(x))


@on_uint8("brightness")
def brightness_uint8(images, c, g):
    """Each pixel's max and min channel at the published HSV round trip's exact level
    (hsv_levels), the middle one between them: V' / V scales all three in exact arithmetic."""
    return levels_to_uint8(pinned_channels(images, "brightness", c))


def _inner_boundary(mask: torch.Tensor) -> torch.Tensor:
    """Pixels of the mask with a 4-neighbour outside it (where Canny finds the edges of a thresholded layer)."""
    cross = F.pad(mask.float(), (1, 1, 1, 1), value=1.0)
    eroded = torch.minimum(torch.minimum(cross[..., :-2, 1:-1], cross[..., 2:, 1:-1]),
                           torch.minimum(cross[..., 1:-1, :-2], cross[..., 1:-1, 2:]))
    return mask & (eroded < 0.5)


def _distance_to(edges: torch.Tensor, cap: float) -> torch.Tensor:
    """Chamfer (1, sqrt 2) distance to the nearest edge pixel, capped (cv2.distanceTransform + THRESH_TRUNC).

    Relaxes d = min(d, axial neighbours + 1, diagonal neighbours + sqrt 2) until nothing changes
    (at most ceil(cap) + 1 rounds: longer paths are over the cap). The 3x3 minimums are taken
    separably (the diagonal minimum is the vertical minimum of the horizontal one), in place
    in a padded buffer.
    """
    big = 1e6
    padded = torch.full((*edges.shape[:-2], edges.shape[-2] + 2, edges.shape[-1] + 2), big, device=edges.device)
    d = padded[..., 1:-1, 1:-1]
    d.masked_fill_(edges, 0.0)
    for _ in range(int(math.ceil(cap)) + 1):
        across = torch.minimum(padded[..., :, :-2], padded[..., :, 2:])  # left / right, every row
        diagonal = torch.minimum(across[..., :-2, :], across[..., 2:, :]).add_(math.sqrt(2))
        axial = torch.minimum(padded[..., :-2, 1:-1], padded[..., 2:, 1:-1])
        axial = torch.minimum(axial, across[..., 1:-1, :], out=axial).add_(1)
        step = torch.minimum(axial, diagonal, out=axial)
        if float(step.sub(d).amin()) >= 0:  # (a bool compare and any() costs 5x more)
            break
        torch.minimum(d, step, out=d)
    return d.clamp(max=cap)


def _equalize_hist(v: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist per image on integer values 0..255 (N, 1, H, W)."""
    n = v.shape[0]
    flat = v.reshape(n, -1).long()
    hist = torch.zeros(n, 256, device=v.device).scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float32))
    cdf = hist.cumsum(1)
    total = cdf[:, -1:]
    first = hist.gather(1, (hist > 0).float().argmax(1, keepdim=True))  # count of the lowest value present
    scale = 255 / (total - first).clamp_min(1)
    lut = torch.round((cdf - first) * scale).clamp(0, 255)
    lut = torch.where(total == first, torch.arange(256, device=v.device, dtype=lut.dtype).expand(n, -1), lut)
    return lut.gather(1, flat).view_as(v)


EMBOSS = ((-2.0, -1.0, 0.0), (-1.0, 1.0, 1.0), (0.0, 1.0, 2.0))


@register_corruption(
    "spatter",
    cifar=((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
           (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
    imagenet=((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
              (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)),
)
def spatter(x, p, g):
    """Water drops (mode 0) or mud (mode 1) from a blurred, thresholded N(loc, scale) layer.

    Parameters (loc, scale, sigma, threshold, intensity, mode) are the originals'. Water follows
    the originals' recipe in torch: edges of the liquid layer, distance to them capped at 20,
    3x3 blur, histogram equalisation, emboss, 3x3 blur, times the layer, normalised, times
    intensity, in pale turquoise. Departs in two details:
    the edges are the liquid mask's inner boundary instead of cv2.Canny, and the distance is a
    3x3 chamfer distance instead of cv2's 5x5 mask. Mud: brown where the re-blurred mask >= 0.8.
    """
    loc, scale, sigma, threshold, intensity, mud = p
    n, c, h, w = x.shape
    liquid = torch.randn((n, 1, h, w), generator=g, device=x.device) * scale + loc
    liquid = gaussian_filter(liquid, sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        m = gaussian_filter((liquid > threshold).float(), intensity)
        m = torch.where(m < 0.8, torch.zeros_like(m), m)
        return x * (1 - m) + colour((63 / 255, 42 / 255, 20 / 255), c, x.device) * m
    level = torch.floor(liquid.clamp(0, 1) * 255)
    dist = _distance_to(_inner_boundary(level > 0), 20.0)
    dist = _equalize_hist(torch.floor(box3(dist)))
    dist = box3(correlate3x3(dist, EMBOSS, "mirror").round().clamp(0, 255))
    m = liquid * dist
    m = m / m.amax(dim=(2, 3), keepdim=True).clamp_min(1e-12) * intensity
    return x + m * colour((175 / 255, 238 / 255, 238 / 255), c, x.device)
