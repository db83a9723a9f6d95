"""The translation copies of ImageNet and CIFAR-10 (data manifests imagenet-val-256, cifar10-window28) read the
parent dataset's files, and the window the model sees is exactly the parent's image: only the room around it is new."""

from __future__ import annotations

import numpy as np
import torch
from tiny_formats import write_cifar10

from shiftbench.core.imageset import centre_crop
from shiftbench.data import find_data, load_dataset, load_manifest


def write_photos(root, sizes, seed=0):
    """root/<split>/<wnid>/<i>.png: RGB images of the given (width, height), none of them square."""
    from PIL import Image

    r = np.random.default_rng(seed)
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            (root / split / wnid).mkdir(parents=True)
            for i, (w, h) in enumerate(sizes):
                Image.fromarray(r.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / split / wnid / f"{i}.png")


def test_imagenet_at_256_holds_imagenet_val_in_its_centred_224_window(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path))
    write_photos(tmp_path / "imagenet-val", [(300, 261), (257, 340), (500, 375)])  # odd margins: rounding shows
    assert find_data(load_manifest("imagenet-val-256")) == tmp_path / "imagenet-val"
    plain, wide = load_dataset("imagenet-val"), load_dataset("imagenet-val-256")
    assert wide.test.image_size == 256 and wide.test.window == 224 and plain.test.image_size == 224
    assert wide.test.classes == plain.test.classes and torch.equal(wide.test.labels, plain.test.labels)
    for split in ("test", "source_train", "source_val"):
        a, b = getattr(plain, split), getattr(wide, split)
        assert torch.equal(centre_crop(b.images, 224), a.images), split
    assert not torch.equal(wide.test.images[:, :, :16], torch.zeros_like(wide.test.images[:, :, :16]))  # real border


def test_cifar10_window28_reads_the_cifar10_download_and_shows_its_centre(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path))
    written = write_cifar10(tmp_path / "cifar10" / "cifar-10-batches-py")
    assert find_data(load_manifest("cifar10-window28")) == tmp_path / "cifar10" / "cifar-10-batches-py"
    plain, wide = load_dataset("cifar10"), load_dataset("cifar10-window28")
    assert wide.test.window == 28 and plain.test.window is None
    assert torch.equal(wide.test.images, torch.from_numpy(written["test_x"]))  # the pixels as published
    for split in ("test", "source_train", "source_val"):
        a, b = getattr(plain, split), getattr(wide, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels), split
    assert torch.equal(wide.test.model_view().images, wide.test.images[:, :, 2:30, 2:30])
