"""Published test sets stored as one folder per class, with a published class list (ImageNet-V2, -R, -A, -Sketch).

`class_folders`: `<root>/<class name>/<image>` (ImageNet-R and -A: 200 WordNet-id folders and a
README.txt beside them; ImageNet-Sketch: 1000). `class_index_folders`: `<root>/<k>/<image>`,
folders named by the integer class index k = 0..K-1 (ImageNet-V2): the label is int(folder), so
folder "10" is class 10, not the third folder in string order ("0", "1", "10", ...).

params: `classes`, the class names in label order (for class_index_folders, the name of index k
is classes[k]); geometry as image_folder (`size`, or `resize` + `crop`; `channels`). Every
class folder must be there and no other: a missing one is one error naming it. Files that are
not folders (README.txt) are ignored. The test split holds every image, class by class (so a
benchmark shuffles its streams); source_train and source_val are empty (data/common.test_only).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet
from .common import Channels, Side, test_only
from .image_folder import IMAGE_SUFFIXES, decode_images
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def list_class_folders(root: Path, folders: list[str]) -> tuple[list[Path], torch.Tensor]:
    """The images of `<root>/<folders[k]>/*` with label k, class by class, files sorted by name."""
    found = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = [f for f in folders if f not in found]
    if missing:
        raise UserError(f"class folder{'s' if len(missing) > 1 else ''} {', '.join(missing[:5])}"
                        f"{f' and {len(missing) - 5} more' if len(missing) > 5 else ''} missing "
                        f"({len(found)} of the {len(folders)} published class folders are here)", source=str(root))
    extra = sorted(found - set(folders))
    if extra:
        raise UserError(f"folder{'s' if len(extra) > 1 else ''} {', '.join(extra[:5])} "
                        f"{'are' if len(extra) > 1 else 'is'} not a class of this set", source=str(root))
    paths, labels = [], []
    for k, folder in enumerate(folders):
        for path in sorted((root / folder).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(k)
    return paths, torch.tensor(labels, dtype=torch.int64)


def folder_test_set(manifest: Manifest, data_dir: Path | None, folders: list[str], classes: list[str],
                    channels: int, size: int | None, resize: int | None, crop: int | None) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    paths, labels = list_class_folders(root, folders)
    images = decode_images(paths, channels, size, resize, crop, str(root))
    return test_only(manifest.name, ImageSet(images, labels, tuple(classes)))


@register_loader("class_folders")
def load_class_folders(manifest: Manifest, data_dir: Path | None = None, *, classes: list[str],
                       channels: Channels = 3, size: Side | None = None, resize: Side | None = None,
                       crop: Side | None = None) -> DatasetSplits:
    return folder_test_set(manifest, data_dir, list(classes), list(classes), channels, size, resize, crop)


@register_loader("class_index_folders")
def load_class_index_folders(manifest: Manifest, data_dir: Path | None = None, *, classes: list[str],
                             channels: Channels = 3, size: Side | None = None, resize: Side | None = None,
                             crop: Side | None = None) -> DatasetSplits:
    folders = [str(k) for k in range(len(classes))]
    return folder_test_set(manifest, data_dir, folders, list(classes), channels, size, resize, crop)
