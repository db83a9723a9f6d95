"""Digital corruptions (CIFAR-10-C / ImageNet-C): contrast, elastic, pixelate, JPEG, saturate."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .corruption import THREADED_BLOCK, levels_to_uint8, on_uint8, register_corruption, to_uint8
from .hsv_levels import pinned_channels
from .image_ops import LUMA, gaussian_filter, pil_box_resize, pil_box_resize_uint8


@register_corruption("contrast", cifar=(0.75, 0.5, 0.4, 0.3, 0.15), imagenet=(0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(x, c, g):
    """Scale each channel around its own mean by c."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return torch.add(mean * (1 - c), x, alpha=c)


@on_uint8("contrast")
def contrast_uint8(images, c, g):
    y = images.to(torch.float32)
    mean = y.mean(dim=(2, 3), keepdim=True)
    return levels_to_uint8(y.mul_(c).add_(mean.mul_(1 - c)))


def _pixel_grid(n: int, h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1).expand(n, h, w)
    cols = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w).expand(n, h, w)
    return rows, cols


@register_corruption(
    "elastic_transform",
    cifar=((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    imagenet=((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02)),
)
def elastic_transform(x, p, g):
    """Random affine warp, then a smooth random displacement field (Simard et al.), as the originals.

    (alpha, sigma, affine) are fractions of the image side. The affine moves three points around
    the centre by U(-affine, affine) px (cv2.warpAffine, bilinear, reflect-101 border); the
    field is U(-1, 1) per pixel, Gaussian-smoothed with sigma (truncate 3, reflect), times alpha,
    and the image is resampled bilinearly at (row + dy, col + dx) with reflect boundary.
    (ImageNet-C multiplied by 244 on 224 px images; we multiply by the actual side.)
    """
    n, c, h, w = x.shape
    side = min(h, w)
    alpha, sigma, affine = (v * side for v in p)
    dev = x.device

    cx, cy, s = w // 2, h // 2, side // 3
    src = torch.tensor([[cx + s, cy + s], [cx + s, cy - s], [cx - s, cy - s]], dtype=torch.float64, device=dev)
    dst = src + (torch.rand((n, 3, 2), generator=g, device=dev, dtype=torch.float64) * 2 - 1) * affine
    mt = torch.linalg.solve(torch.cat([src, torch.ones(3, 1, dtype=src.dtype, device=dev)], 1).expand(n, 3, 3), dst)
    lin, shift = mt[:, :2, :].transpose(1, 2), mt[:, 2, :]  # dst = lin @ src + shift
    rows, cols = _pixel_grid(n, h, w, dev)
    inv = torch.linalg.inv(lin)  # cv2.warpAffine samples the source at lin^-1 (p - shift)
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=dev, dtype=torch.float64)
    a = (inv * scale[:, None]).float()  # straight to grid_sample's [-1, 1] coordinates
    b = (-(inv @ shift[..., None]).squeeze(-1) * scale - 1).float()
    grid = (cols[..., None] * a[:, None, None, :, 0] + rows[..., None] * a[:, None, None, :, 1]
            + b[:, None, None, :])
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    if alpha > 0:
        noise = torch.rand((n, 2, h, w), generator=g, device=dev) * 2 - 1
        field = gaussian_filter(noise, sigma, mode="reflect", truncate=3.0) * alpha
        dx, dy = field[:, 0], field[:, 1]
        grid = torch.stack([(2 * (cols + dx) + 1) / w - 1, (2 * (rows + dy) + 1) / h - 1], -1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return x


@register_corruption("pixelate", cifar=(0.95, 0.9, 0.85, 0.75, 0.65), imagenet=(0.6, 0.5, 0.4, 0.3, 0.25))
def pixelate(x, factor, g):
    """Pillow BOX resize to int(side * factor), then BOX resize back, on 8-bit values (Pillow's rounding)."""
    h, w = x.shape[-2:]
    y = pil_box_resize(torch.round(x * 255), (max(1, int(h * factor)), max(1, int(w * factor))))
    return pil_box_resize(y, (h, w)) / 255


@on_uint8("pixelate")
def pixelate_uint8(images, factor, g):
    h, w = images.shape[-2:]
    small = pil_box_resize_uint8(images, (max(1, int(h * factor)), max(1, int(w * factor))))
    return pil_box_resize_uint8(small, (h, w))


# libjpeg works with the GIL released, so blocks on separate threads overlap
@register_corruption("jpeg_compression", cifar=(80, 65, 58, 50, 40), imagenet=(25, 18, 15, 10, 7), threaded=True,
                     block_values=THREADED_BLOCK)
def jpeg_compression(x, quality, g):
    """JPEG encode / decode at the given quality (libjpeg through torchvision.io, on the CPU)."""
    return jpeg_compression_uint8(to_uint8(x), quality, g).to(x.dtype) / 255


@on_uint8("jpeg_compression")
def jpeg_compression_uint8(images, quality, g):
    from torchvision.io import decode_jpeg, encode_jpeg

    decoded = decode_jpeg(encode_jpeg(list(images.cpu()), quality=int(quality)))
    return torch.stack(decoded).to(images.device)


@register_corruption(
    "saturate",
    cifar=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    imagenet=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
)
def saturate(x, p, g):
    """Saturation S * scale + shift in HSV (skimage), clipped.

    Computed without leaving RGB: each channel is V * (1 - S * w(hue)), so a new saturation S'
    moves it to V - (V - channel) * S' / S. Grey pixels have hue 0 (skimage), so a positive
    shift tints them red: (V, V(1 - S'), V(1 - S')). A 1-channel image is treated as grey
    and returns the luma of that result.
    """
    scale, shift = p
    v = x.amax(1, keepdim=True)
    s = torch.where(v > 0, (v - x.amin(1, keepdim=True)) / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * scale + shift).clamp(0, 1)
    coloured = v - (v - x) * (s_new / s.clamp_min(1e-12))
    red = torch.tensor([1.0, 0.0, 0.0], device=x.device).view(1, 3, 1, 1) if x.shape[1] == 3 else None
    grey = v * (1 - s_new * (1 - red)) if red is not None else v * (1 - s_new * (1 - LUMA[0]))
    return torch.where(s > 0, coloured, grey)


@on_uint8("saturate")
def saturate_uint8(images, p, g):
    """saturate on 0..255 values, without a per-value select. RGB: each pixel's max and min
    channel at the published HSV round trip's exact level (hsv_levels), the middle one between
    them. One channel: grey V - (V - channel) * S'/S = V loses V * S' (S' = the clipped
    shift) times the non-red share of the luma."""
    scale, shift = p
    if images.shape[1] == 3:
        return levels_to_uint8(pinned_channels(images, "saturate", scale, shift))
    v = images.amax(1, keepdim=True).to(torch.float32)
    low = images.amin(1, keepdim=True).to(torch.float32)
    spread = v - low
    s = spread.div(v.clamp_min(1))
    ratio = (s * scale + shift).clamp_(0, 1).div_(s.clamp_min(1e-12))
    is_grey = spread.clamp_max_(1).neg_().add_(1)  # whole numbers: 1 where V = min, else 0
    grey_loss = is_grey.mul_(v).mul_(min(max(shift, 0.0), 1.0))
    not_red = torch.tensor([0.0, 1.0, 1.0] if images.shape[1] == 3 else [1 - LUMA[0]], device=images.device)
    y = torch.sub(v, images.to(torch.float32)).mul_(ratio).neg_().add_(v)
    return levels_to_uint8(y.sub_(grey_loss * not_red.view(1, -1, 1, 1)))
