"""What the file-based loaders share: the seeded source-val hold-out, image geometry, PIL decoding."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from ..core.errors import UserError
from ..core.imageset import ImageSet
from ..core.spill import take_rows
from .registry import DatasetSplits

Fraction = Annotated[float, Field(ge=0, lt=1)]
Side = Annotated[int, Field(ge=1, le=8192)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
Channels = Literal[1, 3]


def source_and_test(name: str, train_images: torch.Tensor, train_labels: torch.Tensor,
                    test_images: torch.Tensor, test_labels: torch.Tensor, classes: tuple[str, ...],
                    params: dict[str, Any]) -> DatasetSplits:
    """Splits from an official train/test pair: source_val is a seeded `val_fraction` of train.

    The test split keeps the official order, so row i of a corrupted copy
    (CIFAR-10-C, MNIST-C) is the corruption of test image i.
    """
    p = {"val_fraction": 0.1, "split_seed": 0, "window": None, "canvas": None, "channels": None, **params}
    train_images, test_images = (shape_images(x, p["channels"], p["canvas"]) for x in (train_images, test_images))
    perm = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(int(p["split_seed"])))
    n_val = round(len(train_labels) * float(p["val_fraction"]))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values

    def imageset(images, labels):
        return ImageSet(images.contiguous(), labels.to(torch.int64), tuple(classes), window=p["window"])

    return DatasetSplits(name, imageset(take_rows(train_images, train_idx), train_labels[train_idx]),
                         imageset(take_rows(train_images, val_idx), train_labels[val_idx]),
                         imageset(test_images, test_labels))


def test_only(name: str, test: ImageSet) -> DatasetSplits:
    """Splits of a published test set with no training data (CIFAR-10.1, ImageNet-R): empty source splits.

    A benchmark scores a model of the clean dataset on it (a scenario's `dataset:`); its source
    splits come from the benchmark's own dataset.
    """
    empty = test.with_(images=test.images[:0].clone(), labels=test.labels[:0].clone())
    return DatasetSplits(name, empty, empty, test)


def hold_out_test(images: torch.Tensor, labels: torch.Tensor, fraction: float, seed: int):
    """(train_x, train_y, test_x, test_y): a seeded `fraction` of the rows becomes the test split."""
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))
    n_test = round(len(labels) * fraction)
    test_idx, train_idx = perm[:n_test].sort().values, perm[n_test:].sort().values
    return take_rows(images, train_idx), labels[train_idx], take_rows(images, test_idx), labels[test_idx]


def shape_images(images: torch.Tensor, channels: int | None = None, canvas: int | None = None) -> torch.Tensor:
    """Grey replicated to `channels` (1 or 3), then centred on a black `canvas` px square."""
    if channels is not None and images.shape[1] != channels:
        if images.shape[1] == 1:
            images = images.expand(-1, channels, -1, -1)
        elif channels == 1:
            images = images.float().mean(1, keepdim=True).round().to(torch.uint8)
        else:
            raise UserError(f"cannot turn {images.shape[1]}-channel images into {channels} channels")
    if canvas is not None and canvas != images.shape[-1]:
        h, w = images.shape[-2:]
        if canvas < max(h, w):
            raise UserError(f"canvas {canvas} px is smaller than the {h}x{w} images", field="params.canvas")
        out = torch.zeros(images.shape[0], images.shape[1], canvas, canvas, dtype=torch.uint8)
        top, left = (canvas - h) // 2, (canvas - w) // 2
        out[:, :, top : top + h, left : left + w] = images
        images = out
    return images.contiguous()


def from_nhwc(array: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, C) numpy -> uint8 (N, C, H, W) tensor."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise UserError(f"expected uint8 images, got {array.dtype}")
    if array.ndim == 3:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def pil_to_chw(image, channels: int = 3, size: int | None = None, resize: int | None = None,
               crop: int | None = None) -> np.ndarray:
    """A PIL image as uint8 (C, H, W): converted to L or RGB, resized (bilinear) to size x size if given;
    else, if given, resized so its shorter side is `resize` and centre-cropped to `crop` x `crop`
    (the ImageNet evaluation geometry: resize 256, crop 224)."""
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    if resize is not None and min(image.size) != resize:
        w, h = image.size
        # the long side as torchvision's Resize(int) computes it (truncated)
        new = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
        image = image.resize(new, Image.BILINEAR)
    if crop is not None and image.size != (crop, crop):
        w, h = image.size
        if w < crop or h < crop:
            raise ValueError(f"image of {w}x{h} px is smaller than the crop {crop}; set params.resize")
        top, left = int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))
        image = image.crop((left, top, left + crop, top + crop))
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def stack_images(arrays: list[np.ndarray], where: str) -> torch.Tensor:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise UserError(f"images differ in size ({', '.join(map(str, sorted(shapes)[:3]))}); "
                        "set params.size to resize them all", source=where)
    if not arrays:
        raise UserError("no images found", source=where)
    return torch.from_numpy(np.stack(arrays))
