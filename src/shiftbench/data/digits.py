"""The built-in dataset: scikit-learn's 1,797 real 8x8 handwritten digits, no download.

Each digit is upsampled (bilinear) to `digit_size` px and centred on a black
`canvas` px image; the model sees the centred `window`, so realistic
translations have real (black) canvas to move into. Three channels (grey
replicated) so colour shifts have somewhere to go.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from ..core.imageset import ImageSet
from .common import Fraction, Seed, Side
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def bilinear_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Bilinear resampling (align_corners=False, edges clamped) as integers: for each output position the
    two input indices and their weights, which sum to the returned denominator 2 * n_out."""
    denom = 2 * n_out
    pos = torch.clamp((2 * torch.arange(n_out) + 1) * n_in - n_out, min=0)  # source coordinate times denom
    lo, w_hi = pos // denom, pos % denom
    return lo, torch.clamp(lo + 1, max=n_in - 1), denom - w_hi, w_hi, denom


def upsample_exact(levels: torch.Tensor, max_level: int, size: int) -> torch.Tensor:
    """Integer images (N, C, h, w) with values 0..max_level, bilinearly resized to size x size and mapped to
    uint8 0..255 in exact integer arithmetic, rounding half to even. Float interpolation lands on many exact
    halves here and rounds them by the CPU's kernels (fused multiply-add or not), which made the data set,
    and every number trained on it, differ between machines."""
    lo_y, hi_y, wlo_y, whi_y, dy = bilinear_taps(levels.shape[-2], size)
    lo_x, hi_x, wlo_x, whi_x, dx = bilinear_taps(levels.shape[-1], size)
    v = levels.long()
    rows = v[..., lo_y, :] * wlo_y[:, None] + v[..., hi_y, :] * whi_y[:, None]
    full = rows[..., lo_x] * wlo_x + rows[..., hi_x] * whi_x
    den = max_level * dy * dx
    q, r = torch.div(255 * full, den, rounding_mode="floor"), (255 * full) % den
    q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1))).long()
    return q.to(torch.uint8)


def raw_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits as integer levels 0..16 (N, 8, 8) and their labels, as sklearn's load_digits gives
    them. Read from the csv that scikit-learn ships (importing sklearn.datasets takes seconds; that file
    is all load_digits reads), through load_digits where the file is not where it is expected."""
    spec = importlib.util.find_spec("sklearn")
    shipped = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if shipped is not None and shipped.is_file():
        table = np.loadtxt(shipped, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    raw = load_digits()
    return raw.images, raw.target


def build_digit_images(digit_size: int = 24, canvas: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    pixels, target = raw_digits()
    levels = torch.tensor(pixels, dtype=torch.int64)[:, None]  # (N, 1, 8, 8), integer levels 0..16
    images = torch.zeros(len(levels), 3, canvas, canvas, dtype=torch.uint8)
    off = (canvas - digit_size) // 2
    images[:, :, off : off + digit_size, off : off + digit_size] = upsample_exact(levels, 16, digit_size)
    return images, torch.tensor(target, dtype=torch.int64)


@register_loader("digits", random_test_order=True)
def load_digits_splits(manifest: Manifest, data_dir: Path | None = None, *, digit_size: Side = 24, canvas: Side = 32,
                       window: Side | None = 28, val_fraction: Fraction = 0.15, test_fraction: Fraction = 0.3,
                       split_seed: Seed = 0) -> DatasetSplits:
    p = dict(digit_size=digit_size, canvas=canvas, window=window, val_fraction=val_fraction,
             test_fraction=test_fraction, split_seed=split_seed)
    images, labels = build_digit_images(p["digit_size"], p["canvas"])
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(p["split_seed"]))
    n_test = round(len(labels) * p["test_fraction"])
    n_val = round(len(labels) * p["val_fraction"])
    parts = {"test": perm[:n_test], "source_val": perm[n_test : n_test + n_val], "source_train": perm[n_test + n_val :]}
    classes = tuple(str(i) for i in range(10))
    sets = {k: ImageSet(images[idx], labels[idx], classes, window=p["window"]) for k, idx in parts.items()}
    return DatasetSplits(manifest.name, **sets)
