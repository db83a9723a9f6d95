"""The natural test sets of a CIFAR-10 or ImageNet model (CIFAR-10.1, CIFAR-10.2, ImageNet-V2/R/A/Sketch)
on generated copies of their published layouts, and CIFAR-10.1's layout filled with real CIFAR-10 images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from natural_fixtures import CIFAR10_CLASSES, cifar10_1_arrays, cifar10_2_npz, class_folders, load_with

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


# ------------------------------------------------------------------------------------------ ImageNet sets
IMAGENET_SETS = ["imagenetv2-matched-frequency", "imagenetv2-threshold0.7", "imagenetv2-top-images",
                 "imagenet-r", "imagenet-a", "imagenet-sketch"]
# sha256 of ",".join(indices) of the published 200-class subsets (hendrycks eval.py masks; timm's
# imagenet_{r,a}_indices.txt), and their first and last indices
SUBSET_HASH = {"imagenet-r": ("a1d9a9ace3098120f5db861d97049116efe80683f4e48c65a62f9bd30fc3366a", [1, 2, 4, 6], 988),
               "imagenet-a": ("973e8c3e530bf5dbd49999d046e74084ba5184ab98036b42b111d8dcdecf1015", [6, 11, 13, 15], 988)}


def imagenet_classes() -> list[str]:
    return load_manifest("imagenetv2-matched-frequency").params["classes"]


def test_imagenet_manifests_use_the_standard_1000_class_order():
    wnids = imagenet_classes()
    # ImageNet-1k's index order is the sorted WordNet ids (torchvision's ImageFolder order for ImageNet)
    assert len(wnids) == 1000 == len(set(wnids)) and wnids == sorted(wnids)
    assert wnids[0] == "n01440764" and wnids[999] == "n15075141"
    for name in IMAGENET_SETS:
        m = load_manifest(name)
        assert m.params["resize"] == 256 and m.params["crop"] == 224, name
        assert all(f.sha256 for f in m.files), name
        if len(m.params["classes"]) == 1000:
            assert m.params["classes"] == wnids, name
    assert load_manifest("imagenet-sketch").files[0].url is None  # Google Drive: put the zip there


@pytest.mark.parametrize("name", ["imagenet-r", "imagenet-a"])
def test_subset_classes_map_onto_the_published_logit_columns(name):
    from shiftbench.models.class_subset import subset_columns

    wnids, subset = imagenet_classes(), load_manifest(name).params["classes"]
    columns = subset_columns(wnids, subset)
    published_hash, first, last = SUBSET_HASH[name]
    assert hashlib.sha256(",".join(map(str, columns)).encode()).hexdigest() == published_hash
    assert columns[:4] == first and columns[-1] == last and len(columns) == 200
    # the authors' boolean mask over the 1000 classes keeps the same columns in the same order
    assert columns == [k for k, w in enumerate(wnids) if w in set(subset)]


def test_imagenet_v2_folder_names_are_class_indices_not_sorted_strings(tmp_path):
    root = tmp_path / "imagenetv2-matched-frequency" / "imagenetv2-matched-frequency-format-val"
    class_folders(root, [str(k) for k in range(1000)], {"2": 1, "10": 2, "100": 1, "999": 1}, suffix=".jpeg")
    test = load_with("imagenetv2-matched-frequency", tmp_path, resize=None, crop=None).test
    wnids = imagenet_classes()
    assert test.classes == tuple(wnids)
    assert test.labels.tolist() == [2, 10, 10, 100, 999]  # int(folder); string order would make "10" class 2
    assert [test.classes[k] for k in test.labels] == [wnids[2], wnids[10], wnids[10], wnids[100], wnids[999]]
    from PIL import Image
    pic = np.array(Image.open(root / "100" / "0.jpeg").convert("RGB"))
    assert torch.equal(test.images[3], torch.from_numpy(pic).permute(2, 0, 1))


def test_imagenet_v2_missing_class_folder_is_named(tmp_path):
    root = tmp_path / "imagenetv2-top-images" / "imagenetv2-top-images-format-val"
    class_folders(root, [str(k) for k in range(1000) if k != 417], {"3": 1}, suffix=".jpeg")
    with pytest.raises(UserError, match="class folder 417 missing") as e:
        load_with("imagenetv2-top-images", tmp_path, resize=None, crop=None)
    assert str(root) in str(e.value)


@pytest.mark.parametrize("name", ["imagenet-r", "imagenet-a"])
def test_imagenet_r_and_a_layout_labels_in_the_subset_order(tmp_path, name):
    subset = load_manifest(name).params["classes"]
    picked = {subset[0]: 1, subset[57]: 2, subset[199]: 1}
    class_folders(tmp_path / name / name, subset, picked, readme=True)  # <data>/<name>/<name>/<wnid>/*.jpg
    test = load_with(name, tmp_path, resize=None, crop=None).test
    assert test.classes == tuple(subset)
    assert test.labels.tolist() == [0, 57, 57, 199]


def test_imagenet_sketch_layout(tmp_path):
    wnids = imagenet_classes()
    class_folders(tmp_path / "imagenet-sketch" / "sketch", wnids, {wnids[1]: 1, wnids[998]: 1}, suffix=".JPEG")
    test = load_with("imagenet-sketch", tmp_path, resize=None, crop=None).test
    assert test.labels.tolist() == [1, 998] and test.classes == tuple(wnids)


def test_a_folder_that_is_not_a_class_is_named(tmp_path):
    subset = load_manifest("imagenet-a").params["classes"]
    class_folders(tmp_path / "imagenet-a" / "imagenet-a", subset + ["n99999999"], {subset[3]: 1})
    with pytest.raises(UserError, match="n99999999 is not a class"):
        load_with("imagenet-a", tmp_path, resize=None, crop=None)


# ------------------------------------------------------------------------------------ the subset-logit rule
def tiny_classifier(head_is_linear: bool = True):
    from torch import nn

    from shiftbench.models import Classifier

    torch.manual_seed(0)
    head = nn.Linear(12, 10) if head_is_linear else nn.Sequential(nn.Linear(12, 10), nn.Identity())
    return Classifier(nn.Sequential(nn.Flatten(), head), head="1", mean=0.5, std=0.5)


@pytest.mark.parametrize("linear", [True, False])
def test_restricted_logits_are_the_models_logits_of_the_subset_in_the_subsets_order(linear):
    from shiftbench.models.class_subset import restrict_classifier, subset_columns

    model = tiny_classifier(linear).eval()
    classes = [f"c{k}" for k in range(10)]
    subset = ["c7", "c2", "c5"]  # not in the model's order: the subset's own order decides the columns
    columns = subset_columns(classes, subset)
    assert columns == [7, 2, 5]
    restricted = restrict_classifier(model, columns).eval()
    x = torch.rand(16, 3, 2, 2)
    with torch.no_grad():
        full, got = model(x), restricted(x)
    assert got.shape == (16, 3)
    assert torch.allclose(got, full[:, [7, 2, 5]], atol=1e-6)
    assert not torch.allclose(got, full[:, [2, 5, 7]], atol=1e-3)  # the sorted columns are another classifier
    assert isinstance(restricted.head, torch.nn.Linear) == linear
    assert model(x).shape == (16, 10)  # the source model itself is untouched


def test_restricted_prediction_is_the_argmax_over_the_subset_only():
    from shiftbench.models.class_subset import restrict_classifier

    model = tiny_classifier().eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0, 0, 0, 0, 0, 0, 0, 9, 0]))  # class 8 wins among all 10
        model.head.bias[[7, 2, 5]] = torch.tensor([1.0, 3.0, 2.0])
    restricted = restrict_classifier(model, [7, 2, 5])
    assert model(torch.rand(1, 3, 2, 2)).argmax(1).item() == 8
    assert restricted(torch.rand(1, 3, 2, 2)).argmax(1).item() == 1  # subset class 1 is the model's class 2


def test_unknown_subset_class_is_one_error_naming_it():
    from shiftbench.models.class_subset import subset_columns

    with pytest.raises(UserError, match="dataset 'x' has classes the model does not know: zebra"):
        subset_columns(["a", "b"], ["b", "zebra"], what="dataset 'x'")


def test_source_split_restricted_to_the_subset_is_relabelled():
    from shiftbench.core.imageset import ImageSet
    from shiftbench.models.class_subset import restrict_split

    data = ImageSet(torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1), torch.tensor([0, 7, 2, 5, 7, 9]),
                    tuple(f"c{k}" for k in range(10)))
    out = restrict_split(data, [7, 2, 5], ("c7", "c2", "c5"))
    assert out.labels.tolist() == [0, 1, 2, 0] and out.images.flatten().tolist() == [1, 2, 3, 4]
    assert out.classes == ("c7", "c2", "c5")
