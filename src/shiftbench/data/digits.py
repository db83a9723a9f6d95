"""The built-in dataset: scikit-learn's 1,797 real 8x8 handwritten digits, no download.

Each digit is upsampled (bilinear) to `digit_size` px and centred on a black
`canvas` px image; the model sees the centred `window`, so realistic
translations have real (black) canvas to move into. Three channels (grey
replicated) so colour shifts have somewhere to go.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..core.imageset import ImageSet
from .common import Fraction, Seed, Side
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def build_digit_images(digit_size: int = 24, canvas: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.images, dtype=torch.float32)[:, None] / 16.0  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    images = torch.zeros(len(x), 3, canvas, canvas, dtype=torch.uint8)
    off = (canvas - digit_size) // 2
    images[:, :, off : off + digit_size, off : off + digit_size] = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    return images, torch.tensor(raw.target, dtype=torch.int64)


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
