"""A large image-folder set is decoded once into an on-disk cache and memory-mapped: the same
pixels and labels as decoding into RAM, rebuilt when a file changes, never half-written."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from shiftbench.core.errors import UserError
from shiftbench.core.paths import cache_dir
from shiftbench.data import image_folder
from shiftbench.data.image_folder import read_image_folder


def write_folder(root, per_class: int = 4, side: int = 12):
    rng = np.random.default_rng(0)
    for k, name in enumerate(("cat", "dog", "eel")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (side, side + 2 * (i % 2), 3), dtype=np.uint8)
            # a PNG and a JPEG per class, of two sizes: `size` resizes them to one geometry
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def decoded_files():
    folder = cache_dir() / "decoded"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def mapped(monkeypatch, tmp_path):
    """Every set goes through the cache; a fresh cache folder per test."""
    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_folder, "MEMMAP_FROM_BYTES", 0)


def in_memory(folder, **kw):
    keep = image_folder.MEMMAP_FROM_BYTES
    image_folder.MEMMAP_FROM_BYTES = float("inf")
    try:
        return read_image_folder(folder, **kw)
    finally:
        image_folder.MEMMAP_FROM_BYTES = keep


def test_the_mapped_set_has_the_in_memory_pixels_and_labels_and_its_writes_stay_private(mapped, tmp_path):
    folder = write_folder(tmp_path / "set")
    for kw in (dict(size=10), dict(channels=1, resize=12, crop=8)):
        ram_x, ram_y, ram_classes = in_memory(folder, **kw)
        x, y, classes = read_image_folder(folder, **kw)
        assert x.dtype == torch.uint8 and torch.equal(x, ram_x) and torch.equal(y, ram_y) and classes == ram_classes
    assert len(decoded_files()) == 2 and all(name.endswith(".npy") for name in decoded_files())
    x[:] = 0  # copy-on-write: the file keeps the decoded pixels
    again, _, _ = read_image_folder(folder, channels=1, resize=12, crop=8)
    assert torch.equal(again, ram_x)


def test_a_changed_file_makes_the_set_decode_again_and_drops_the_stale_copy(mapped, tmp_path):
    folder = write_folder(tmp_path / "set")
    before, _, _ = read_image_folder(folder, size=10)
    (stale,) = decoded_files()
    changed = folder / "dog" / "1.png"
    Image.fromarray(np.full((12, 14, 3), 7, dtype=np.uint8)).save(changed)
    st = os.stat(changed)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after, _, _ = read_image_folder(folder, size=10)
    assert torch.equal(after, in_memory(folder, size=10)[0]) and not torch.equal(after, before)
    assert bool((after[5] == 7).all())  # dog/1.png is row 4 + 1
    (fresh,) = decoded_files()
    assert fresh != stale


def test_an_interrupted_write_leaves_nothing_and_a_cut_file_is_decoded_again(mapped, tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "set")
    decode = image_folder.pil_to_chw
    calls = []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return decode(*args, **kw)

    monkeypatch.setattr(image_folder, "pil_to_chw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        read_image_folder(folder, size=10)
    assert decoded_files() == []  # not even the temporary file
    monkeypatch.setattr(image_folder, "pil_to_chw", decode)

    (folder / "eel" / "2.jpg").write_bytes(b"not an image")
    with pytest.raises(UserError, match="2.jpg"):
        read_image_folder(folder, size=10)
    assert decoded_files() == []
    write_folder(tmp_path / "good")
    expected = in_memory(tmp_path / "good", size=10)[0]
    read_image_folder(tmp_path / "good", size=10)
    (name,) = decoded_files()
    path = cache_dir() / "decoded" / name
    whole = path.stat().st_size
    with open(path, "r+b") as f:  # as if the copy had been cut short
        f.truncate(whole - 50)
    x, _, _ = read_image_folder(tmp_path / "good", size=10)
    assert torch.equal(x, expected) and path.stat().st_size == whole
