"""Digital corruptions (CIFAR-10-C / ImageNet-C): contrast, elastic, pixelate, JPEG, saturate."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .corruption import register_corruption, to_uint8
from .image_ops import gaussian_filter, in_hsv, pil_box_resize


@register_corruption("contrast", cifar=(0.75, 0.5, 0.4, 0.3, 0.15), imagenet=(0.4, 0.3, 0.2, 0.1, 0.05))
def contrast(x, c, g):
    """Scale each channel around its own mean by c."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * c + mean


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
    out_xy = torch.stack([cols, rows], -1).double().reshape(n, -1, 2) - shift[:, None]
    src_xy = torch.linalg.solve(lin[:, None], out_xy[..., None]).squeeze(-1).reshape(n, h, w, 2)
    scale = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], device=dev, dtype=torch.float64)
    grid = (src_xy * scale - 1).to(x.dtype)
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


@register_corruption("jpeg_compression", cifar=(80, 65, 58, 50, 40), imagenet=(25, 18, 15, 10, 7))
def jpeg_compression(x, quality, g):
    """JPEG encode / decode at the given quality (libjpeg through torchvision.io, on the CPU)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    images = list(to_uint8(x).cpu())
    decoded = decode_jpeg(encode_jpeg(images, quality=int(quality)))
    return torch.stack(decoded).to(device=x.device, dtype=x.dtype) / 255


@register_corruption(
    "saturate",
    cifar=((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
    imagenet=((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)),
)
def saturate(x, p, g):
    """Saturation S * scale + shift in HSV (skimage), clipped.

    Grey pixels have hue 0, so shift tints them red, as in the originals; a 1-channel image
    goes through RGB and back to luma."""
    scale, shift = p

    def edit(hsv):
        h, s, v = hsv.unbind(1)
        return torch.stack([h, (s * scale + shift).clamp(0, 1), v], 1)

    return in_hsv(x, edit)
