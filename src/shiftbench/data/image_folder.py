"""Image folders, torchvision ImageFolder style: `<split>/<class>/<anything>.png|jpg|...`.

params: `train` and `test` (sub-folders of the data folder; default "train" and
"test"; without a test folder, `test_fraction` of train is held out, seeded),
`channels` (1 or 3), `size` (resize every image to size x size), or `resize` +
`crop` (shorter side to `resize`, bilinear, then the centred `crop` x `crop` square:
ImageNet's evaluation geometry, resize 256 + crop 224, as ImageNet-C was made); one of
them is required when sizes differ. `val_fraction`, `split_seed`, `window`. Classes are
the sorted names of the train folder's sub-folders; a test folder must have the same
ones. Files are read class by class, so the test split is stored sorted by class: a
benchmark shuffles its test streams (seeded) unless it says `order: as_stored`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side, hold_out_test, pil_to_chw, source_and_test, stack_images
from .decoded_cache import mapped_images
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


MEMMAP_FROM_BYTES = 256 * 2**20  # decoded sets larger than this are cached on disk and memory-mapped


def decode_images(paths: list[Path], channels: int = 3, size: int | None = None, resize: int | None = None,
                  crop: int | None = None, where: str = "") -> torch.Tensor:
    """The image files at `paths`, in order, decoded to uint8 (N, C, H, W) with one geometry.

    Every loader that reads image files goes through here, so how images are decoded (and how
    much of a set is held at once) is decided in one place: a set whose decoded pixels exceed
    MEMMAP_FROM_BYTES is decoded once into the on-disk cache (decoded_cache.py) and returned
    memory-mapped, so memory stays bounded whatever the set's size; a smaller one is held in
    RAM. A file that does not decode is one UserError naming it.
    """
    from PIL import Image, UnidentifiedImageError

    def decode(path: Path):
        try:
            with Image.open(path) as im:
                return pil_to_chw(im, channels, size, resize, crop)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise UserError(f"cannot read image ({e})", source=str(path)) from None

    if not paths:
        raise UserError("no images found", source=where)
    first = decode(paths[0])
    if first.nbytes * len(paths) > MEMMAP_FROM_BYTES:
        geometry = dict(channels=channels, size=size, resize=resize, crop=crop)
        return mapped_images(paths, geometry, decode, first, where)
    return stack_images([first] + [decode(path) for path in paths[1:]], where)


def list_image_folder(folder: Path, classes: tuple[str, ...] | None = None
                      ) -> tuple[list[Path], torch.Tensor, tuple[str, ...]]:
    """The image files of `<folder>/<class>/*`, sorted by class then name, their labels and the class names."""
    if not folder.is_dir():
        raise UserError("folder not found", source=str(folder))
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if classes is None:
        classes = found
    elif set(found) - set(classes):
        raise UserError(f"class folders {sorted(set(found) - set(classes))} are not in the train folder",
                        source=str(folder))
    paths, labels = [], []
    for k, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()) if (folder / name).is_dir() else []:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(k)
    return paths, torch.tensor(labels, dtype=torch.int64), classes


def read_image_folder(folder: Path, channels: int = 3, size: int | None = None,
                      classes: tuple[str, ...] | None = None, resize: int | None = None,
                      crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """Images uint8 (N, C, H, W), labels int64 and class names; files sorted by class then name."""
    paths, labels, classes = list_image_folder(folder, classes)
    return decode_images(paths, channels, size, resize, crop, str(folder)), labels, classes


@register_loader("image_folder")
def load_image_folder(manifest: Manifest, data_dir: Path | None = None, *, train: str = "train",
                      test: str | None = "test", channels: Channels = 3, size: Side | None = None,
                      test_fraction: Fraction = 0.2, val_fraction: Fraction = 0.1, split_seed: Seed = 0,
                      window: Side | None = None, canvas: Side | None = None, resize: Side | None = None,
                      crop: Side | None = None) -> DatasetSplits:
    p = dict(train=train, test=test, channels=channels, size=size, test_fraction=test_fraction,
             val_fraction=val_fraction, split_seed=split_seed, window=window, canvas=canvas)
    root = require_data(manifest, data_dir)
    train_x, train_y, classes = read_image_folder(root / p["train"], int(p["channels"]), p["size"], None, resize, crop)
    if p["test"] and (root / p["test"]).is_dir():
        test_x, test_y, _ = read_image_folder(root / p["test"], int(p["channels"]), p["size"], classes, resize, crop)
    else:
        train_x, train_y, test_x, test_y = hold_out_test(train_x, train_y, float(p["test_fraction"]), int(p["split_seed"]))
    return source_and_test(manifest.name, train_x, train_y, test_x, test_y, classes, p)
