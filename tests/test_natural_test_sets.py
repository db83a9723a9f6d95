"""The natural test sets of a CIFAR-10 or ImageNet model (CIFAR-10.1, CIFAR-10.2, ImageNet-V2/R/A/Sketch)
on generated copies of their published layouts, and CIFAR-10.1's layout filled with real CIFAR-10 images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from natural_fixtures import CIFAR10_CLASSES, cifar10_1_arrays, cifar10_2_npz, load_with

from shiftbench.core.errors import UserError
from shiftbench.data import load_manifest

REPO = Path(__file__).resolve().parents[1]
CIFAR_JPEG = REPO.parent / "shared" / "data" / "cifar10-jpeg"


def test_cifar10_1_manifests_state_the_published_files_and_class_order():
    for version, n in (("v4", 2021), ("v6", 2000)):
        m = load_manifest(f"cifar10.1-{version}")
        assert m.params["classes"] == CIFAR10_CLASSES
        files = {f.path: f for f in m.files}
        assert set(files) == {f"cifar10.1_{version}_data.npy", f"cifar10.1_{version}_labels.npy"}
        # a uint8 N x 32 x 32 x 3 array behind a 128-byte npy header
        assert files[f"cifar10.1_{version}_data.npy"].size == n * 32 * 32 * 3 + 128
        assert all(f.sha256 and f.url.startswith("https://github.com/modestyachts/CIFAR-10.1/") for f in m.files)
    assert load_manifest("cifar10.2").params["classes"] == CIFAR10_CLASSES


@pytest.mark.parametrize("version", ["v4", "v6"])
def test_cifar10_1_layout_gives_back_the_arrays(tmp_path, version):
    labels = [3, 0, 9, 9, 1, 5, 2]
    images = cifar10_1_arrays(tmp_path / f"cifar10.1-{version}", version, labels)
    splits = load_with(f"cifar10.1-{version}", tmp_path)
    test = splits.test
    assert test.classes == tuple(CIFAR10_CLASSES)
    assert test.labels.tolist() == labels and test.labels.dtype == torch.int64
    assert torch.equal(test.images, torch.from_numpy(images).permute(0, 3, 1, 2))  # HWC -> CHW, order kept
    assert len(splits.source_train) == len(splits.source_val) == 0
    assert splits.source_train.images.shape[1:] == (3, 32, 32)


def test_cifar10_2_npz_layout_gives_back_the_arrays(tmp_path):
    labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4]
    images = cifar10_2_npz(tmp_path / "cifar10.2" / "cifar102_test.npz", labels)
    test = load_with("cifar10.2", tmp_path).test
    assert test.labels.tolist() == labels and test.classes == tuple(CIFAR10_CLASSES)
    assert torch.equal(test.images, torch.from_numpy(images).permute(0, 3, 1, 2))


@pytest.mark.skipif(not CIFAR_JPEG.is_dir(), reason="needs the real CIFAR-10 JPEGs in ../shared/data/cifar10-jpeg")
def test_real_cifar10_images_repacked_as_cifar10_1_come_back_exactly(tmp_path):
    from PIL import Image

    images, labels = [], []
    for k, cls in enumerate(CIFAR10_CLASSES):
        for path in sorted((CIFAR_JPEG / "test" / cls).iterdir())[:3]:
            images.append(np.array(Image.open(path).convert("RGB")))
            labels.append(k)
    order = np.random.default_rng(0).permutation(len(labels))  # published files are not sorted by class
    data, y = np.stack(images)[order], np.asarray(labels, dtype="<i4")[order]
    assert data.shape == (30, 32, 32, 3) and data.dtype == np.uint8
    folder = tmp_path / "cifar10.1-v6"
    folder.mkdir()
    np.save(folder / "cifar10.1_v6_data.npy", data)
    np.save(folder / "cifar10.1_v6_labels.npy", y)
    test = load_with("cifar10.1-v6", tmp_path).test
    assert test.labels.tolist() == y.tolist()
    for row in range(len(y)):
        assert torch.equal(test.images[row], torch.from_numpy(data[row]).permute(2, 0, 1))
    assert test.images[0, :, 5, 7].tolist() == data[0, 5, 7].tolist()  # channel c of pixel (5, 7) is RGB value c


def test_truncated_npy_is_one_error_naming_the_file(tmp_path):
    folder = tmp_path / "cifar10.1-v6"
    cifar10_1_arrays(folder, "v6", [1, 2, 3])
    data = folder / "cifar10.1_v6_data.npy"
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated") as e:
        load_with("cifar10.1-v6", tmp_path)
    assert str(data) in str(e.value) and "\n" not in str(e.value)


def test_labels_of_the_wrong_length_are_one_error_naming_the_labels_file(tmp_path):
    folder = tmp_path / "cifar10.1-v4"
    cifar10_1_arrays(folder, "v4", [1, 2, 3])
    np.save(folder / "cifar10.1_v4_labels.npy", np.asarray([1, 2], dtype="<i4"))
    with pytest.raises(UserError, match="2 labels for 3 images") as e:
        load_with("cifar10.1-v4", tmp_path)
    assert str(folder / "cifar10.1_v4_labels.npy") in str(e.value)


@pytest.mark.parametrize("labels, message", [([0, 10], "class indices 0..9"), ([[0, 1]], r"\(N,\) integer labels")])
def test_labels_outside_the_classes_or_of_another_shape_are_refused(tmp_path, labels, message):
    folder = tmp_path / "cifar10.1-v6"
    cifar10_1_arrays(folder, "v6", [0, 1])
    np.save(folder / "cifar10.1_v6_labels.npy", np.asarray(labels, dtype="<i4"))
    with pytest.raises(UserError, match=message):
        load_with("cifar10.1-v6", tmp_path)


def test_npz_without_the_images_array_or_truncated_is_named(tmp_path):
    path = tmp_path / "cifar10.2" / "cifar102_test.npz"
    path.parent.mkdir()
    np.savez(path, pictures=np.zeros((2, 32, 32, 3), np.uint8), labels=np.zeros(2, np.int64))
    with pytest.raises(UserError, match="no array 'images'.*pictures") as e:
        load_with("cifar10.2", tmp_path)
    assert str(path) in str(e.value)
    cifar10_2_npz(path, [1, 2, 3])
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(UserError, match="npz") as e:
        load_with("cifar10.2", tmp_path)
    assert str(path) in str(e.value)
