"""Real-dataset loaders read tiny files written in each published on-disk format, through the manifests."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, make_project, submission
from tiny_formats import (
    CIFAR10_NAMES,
    write_cifar10,
    write_cifar100,
    write_cifar_c,
    write_image_folder,
    write_mnist,
    write_mnist_c,
)

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.data import load_dataset
from shiftbench.run.benchmark import load_benchmark
from shiftbench.shifts import apply_shifts, check_shift_spec


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """A project with the repo's manifests and benchmarks; SHIFTBENCH_DATA is an empty tmp folder."""
    root = make_project(tmp_path / "proj", {})
    for name in ("cifar10", "mnist"):
        shutil.copy(REPO / "benchmarks" / f"{name}.yaml", root / "benchmarks" / f"{name}.yaml")
    monkeypatch.chdir(root)
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path / "data"))
    return root


def data_dir(proj):
    return proj.parent / "data"


def edit_manifest(proj, name, **params):
    path = proj / "data_manifests" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["params"].update(params)
    path.write_text(yaml.safe_dump(raw))


def write_manifest(proj, text: str, name: str):
    (proj / "data_manifests" / f"{name}.yaml").write_text(text)


def nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x))


# ---------------------------------------------------------------- CIFAR

def test_cifar10_pickles_load_with_channel_order_labels_and_a_seeded_val_split(proj):
    written = write_cifar10(data_dir(proj) / "cifar10" / "cifar-10-batches-py")
    edit_manifest(proj, "cifar10", val_fraction=0.25)
    d = load_dataset("cifar10")
    assert d.test.classes == tuple(CIFAR10_NAMES)
    assert d.test.images.dtype == torch.uint8 and d.test.images.shape == (6, 3, 32, 32)
    assert torch.equal(d.test.images, nchw(written["test_x"]))  # channel-major rows -> (C, H, W)
    assert d.test.labels.tolist() == written["test_y"]
    # channel offsets survive: red < 80 <= green < 160 <= blue
    assert d.test.images[:, 0].max() < 80 <= d.test.images[:, 1].min() and d.test.images[:, 2].min() >= 160
    # train + val partition the 20 training rows, 25% held out, reproducibly
    assert (len(d.source_train), len(d.source_val)) == (15, 5)
    both = torch.cat([d.source_train.images, d.source_val.images]).flatten(1)
    want = nchw(written["train_x"]).flatten(1)
    assert sorted(map(bytes, both.numpy())) == sorted(map(bytes, want.numpy()))
    for part in (d.source_train, d.source_val):
        for img, label in zip(part.images, part.labels):
            row = next(i for i in range(20) if torch.equal(want[i], img.flatten()))
            assert written["train_y"][row] == label
    edit_manifest(proj, "cifar10", val_fraction=0.25, split_seed=1)
    other = load_dataset("cifar10")
    assert not torch.equal(other.source_val.images, d.source_val.images)


def test_cifar100_uses_fine_labels_and_names(proj):
    written = write_cifar100(data_dir(proj) / "cifar100" / "cifar-100-python")
    d = load_dataset("cifar100")
    assert d.test.num_classes == 100 and d.test.classes[7] == "fine7"
    assert d.test.labels.tolist() == written["test_y"]
    assert torch.equal(d.test.images, nchw(written["test_x"]))
    assert len(d.source_train) + len(d.source_val) == 12


def test_cifar_pickle_with_foreign_objects_is_refused(proj):
    folder = data_dir(proj) / "cifar10" / "cifar-10-batches-py"
    write_cifar10(folder)
    import pickle

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8),
                                                      b"labels": [0], b"x": shutil.copy}, protocol=2))
    with pytest.raises(UserError, match="test_batch.*refusing to load shutil.copy"):
        load_dataset("cifar10")


# ---------------------------------------------------------------- CIFAR-10-C

def cifar_c_project(proj):
    written = write_cifar10(data_dir(proj) / "cifar10" / "cifar-10-batches-py")
    files = write_cifar_c(data_dir(proj) / "cifar10c" / "CIFAR-10-C", written["test_y"])
    edit_manifest(proj, "cifar10c", rows_per_severity=6, test_corruptions=["gaussian_noise", "fog"], test_severity=2)
    return written, files


def test_cifar10c_shift_reads_exactly_the_severity_rows(proj):
    written, files = cifar_c_project(proj)
    test = load_dataset("cifar10").test
    for s in (1, 3, 5):
        spec = check_shift_spec({"shift": "corruption_file", "dataset": "cifar10c", "corruption": "fog", "severity": s})
        out = apply_shifts(test, [spec], seed=0)
        want = torch.from_numpy(files["fog"][(s - 1) * 6 : s * 6]).permute(0, 3, 1, 2)
        assert torch.equal(out.images, want)
        assert out.images[0, 2, 0, 0] == (7 * (s - 1) * 6 + 100 + 1) % 256  # row, channel 2, corruption 1
        assert torch.equal(out.labels, test.labels) and out.meta["corruption_source"] == "files:cifar10c"


def test_cifar10c_dataset_concatenates_corruptions_at_the_test_severity(proj):
    written, files = cifar_c_project(proj)
    d = load_dataset("cifar10c")
    assert len(d.test) == 12 and d.test.groups.tolist() == [0] * 6 + [1] * 6
    assert torch.equal(d.test.images[6:], torch.from_numpy(files["fog"][6:12]).permute(0, 3, 1, 2))
    assert d.test.labels.tolist() == written["test_y"] * 2
    assert torch.equal(d.source_train.images, load_dataset("cifar10").source_train.images)


def test_cifar10c_files_with_other_labels_are_refused(proj):
    written, _ = cifar_c_project(proj)
    np.save(data_dir(proj) / "cifar10c" / "CIFAR-10-C" / "labels.npy",
            np.tile((np.asarray(written["test_y"]) + 1) % 10, 5).astype(np.uint8))
    spec = check_shift_spec({"shift": "corruption_file", "dataset": "cifar10c", "corruption": "fog", "severity": 1})
    with pytest.raises(UserError, match="do not match the test split"):
        apply_shifts(load_dataset("cifar10").test, [spec], seed=0)


def test_corruption_file_parameters_are_checked_when_the_benchmark_loads(proj):
    with pytest.raises(UserError, match="severity"):
        check_shift_spec({"shift": "corruption_file", "dataset": "cifar10c", "corruption": "fog", "severity": 6})
    with pytest.raises(UserError, match="loader 'cifar'"):
        check_shift_spec({"shift": "corruption_file", "dataset": "cifar10", "corruption": "fog"})


# ---------------------------------------------------------------- MNIST, MNIST-C

def test_mnist_idx_files_load_centred_on_the_canvas(proj):
    written = write_mnist(data_dir(proj) / "mnist")
    d = load_dataset("mnist")
    assert d.test.images.shape == (7, 3, 32, 32) and d.test.window == 28
    digits = torch.from_numpy(written["test_x"])
    for c in range(3):
        assert torch.equal(d.test.images[:, c, 2:30, 2:30], digits)
    assert d.test.images[:, :, :2].sum() == 0 and d.test.images[:, :, :, 30:].sum() == 0
    assert d.test.labels.tolist() == written["test_y"].tolist()
    assert len(d.source_train) == 18 and len(d.source_val) == 2


def test_mnist_wrong_magic_is_a_one_line_error_naming_the_file(proj):
    folder = data_dir(proj) / "mnist"
    write_mnist(folder)
    import gzip

    raw = bytearray(gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[3] = 0x03
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte.gz: IDX magic is 0x00000803, expected 0x00000801"):
        load_dataset("mnist")


def test_mnistc_shift_and_dataset(proj):
    clean = write_mnist(data_dir(proj) / "mnist")
    files = write_mnist_c(data_dir(proj) / "mnistc" / "mnist_c", clean)
    edit_manifest(proj, "mnistc", test_corruptions=["fog", "zigzag"])
    test = load_dataset("mnist").test
    out = apply_shifts(test, [check_shift_spec({"shift": "corruption_file", "dataset": "mnistc", "corruption": "zigzag"})], 0)
    assert out.images.shape == test.images.shape
    assert torch.equal(out.images[:, 1, 2:30, 2:30], torch.from_numpy(files[("zigzag", "test")]))
    d = load_dataset("mnistc")
    assert torch.equal(d.test.images[:7, 0, 2:30, 2:30], torch.from_numpy(files[("fog", "test")]))
    assert d.test.groups.tolist() == [0] * 7 + [1] * 7
    assert len(d.source_train) + len(d.source_val) == 20  # identity/train


# ---------------------------------------------------------------- image folders, Hugging Face

IMAGE_FOLDER = """\
name: pets
loader: image_folder
root: pets
params: {channels: 3, val_fraction: 0.0}
"""


def test_image_folder_reads_pngs_by_sorted_class(proj):
    root = data_dir(proj) / "pets" / "pets"
    train = write_image_folder(root / "train")
    test = write_image_folder(root / "test", per_class=1, seed=9)
    write_manifest(proj, IMAGE_FOLDER, "pets")
    d = load_dataset("pets")
    assert d.test.classes == ("cat", "dog", "emu")
    assert d.test.labels.tolist() == [0, 1, 2]
    assert torch.equal(d.test.images[2], torch.from_numpy(test[("emu", 0)]).permute(2, 0, 1))
    assert torch.equal(d.source_train.images[4], torch.from_numpy(train[("dog", 1)]).permute(2, 0, 1))
    write_manifest(proj, IMAGE_FOLDER.replace("channels: 3", "channels: 1, size: 6"), "pets")
    small = load_dataset("pets")
    assert small.test.images.shape == (3, 1, 6, 6)


def hf_dataset(n: int, seed: int):
    import datasets
    from PIL import Image

    r = np.random.default_rng(seed)
    arrays = [r.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(n)]
    labels = [i % 3 for i in range(n)]
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["ant", "bee", "cow"])})
    ds = datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in arrays], "y": labels}, features=features)
    return ds, arrays, labels


HF_DISK = """\
name: bugs
loader: huggingface
params: {disk: saved, image_column: img, label_column: y, val_fraction: 0.0}
"""


@pytest.mark.parametrize("kind", ["disk", "parquet"])
def test_huggingface_save_to_disk_and_parquet(proj, kind):
    import datasets

    train, train_arrays, _ = hf_dataset(6, 0)
    test, test_arrays, test_labels = hf_dataset(4, 1)
    folder = data_dir(proj) / "bugs"
    if kind == "disk":
        datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(folder / "saved"))
        write_manifest(proj, HF_DISK, "bugs")
    else:
        folder.mkdir(parents=True)
        train.to_parquet(str(folder / "train-00000.parquet"))
        test.to_parquet(str(folder / "test-00000.parquet"))
        write_manifest(proj, HF_DISK.replace("disk: saved", "parquet: {train: 'train-*.parquet', test: test-00000.parquet}"), "bugs")
    d = load_dataset("bugs")
    assert d.test.classes == ("ant", "bee", "cow")
    assert d.test.labels.tolist() == test_labels
    assert torch.equal(d.test.images, torch.from_numpy(np.stack(test_arrays)).permute(0, 3, 1, 2))
    assert torch.equal(d.source_train.images, torch.from_numpy(np.stack(train_arrays)).permute(0, 3, 1, 2))


# ---------------------------------------------------------------- benchmarks

def test_benchmarks_validate_without_data_and_switch_to_files_when_present(proj):
    c10 = load_benchmark("cifar10")
    names = [s.name for s in c10.scenarios]
    assert "generated-gaussian_noise-s5" in names and not any(n.startswith("cifar10c-file") for n in names)
    mnist = load_benchmark("mnist")
    assert not any(s.name.startswith("mnistc-file") for s in mnist.scenarios)

    cifar_c_project(proj)
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    with_files = load_benchmark("cifar10")
    file_names = [s.name for s in with_files.scenarios]
    # 15 corruptions x 5, the sequence, and the 11 other stream settings (gradual, mixed, 2 correlated,
    # 2 mixed-correlated, long, 4 batch sizes), each a twin of a generated scenario
    file_twins = [n for n in file_names if n.startswith("cifar10c-file-")]
    assert len(file_twins) == 87
    assert {n.replace("cifar10c-file-", "generated-", 1) for n in file_twins} <= set(names)
    # the generated corruptions stay, under their own names: both kinds are reported, never mixed
    assert set(names) <= set(file_names)
    # the benchmark's identity is its definition, not which datasets happen to be on disk
    assert with_files.content_hash() == c10.content_hash()


def test_running_a_benchmark_without_its_data_says_how_to_fetch_it(proj, capsys):
    (proj / "leaderboard" / "submissions" / "src.yaml").write_text(submission("Source", "source", benchmark="mnist"))
    code = main(["run", "--benchmark", "mnist", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "run `shiftbench data fetch mnist`" in err
    assert not (proj / "leaderboard" / "results" / "mnist").exists()


@pytest.mark.slow
def test_mnist_benchmark_runs_end_to_end_from_a_data_dir(proj, capsys):
    """--data-dir points a run at a local copy; every scenario of benchmarks/mnist.yaml runs (about 15 s)."""
    (proj / "leaderboard" / "submissions" / "src.yaml").write_text(submission("Source", "source", benchmark="mnist"))
    write_mnist(proj.parent / "elsewhere" / "mnist", n_test=10)  # every class in test, for the Dirichlet draw
    assert main(["run", "--benchmark", "mnist", "--quiet", "--data-dir", str(proj.parent / "elsewhere")]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert len(list((proj / "leaderboard" / "results" / "mnist").glob("*.json"))) == 1


def test_unknown_dataset_in_requires_data_is_a_user_error(proj):
    text = "name: b\ndataset: digits\nscenarios:\n  - {name: x, family: clean, requires_data: [nope]}\n"
    (proj / "benchmarks" / "b.yaml").write_text(text)
    with pytest.raises(UserError, match="no data manifest 'nope'"):
        load_benchmark("b")


TINY_CIFAR = """\
name: tiny-cifar
dataset: cifar10
batch_size: 8
model: {arch: small_cnn, width: 4}
training: {name: erm, epochs: 1, batch_size: 8}
scenarios:
  - {name: clean, family: clean}
  - name: cifar10c-file-fog-s2
    family: covariate
    requires_data: [cifar10c]
    shifts: [{shift: corruption_file, dataset: cifar10c, corruption: fog, severity: 2}]
"""


def test_tiny_cifar_runs_end_to_end_and_a_checkpoint_replaces_training(proj, tmp_path):
    from shiftbench.models import get_source_model
    from shiftbench.run.runner import run_submissions
    from shiftbench.run.submission import check_submission

    cifar_c_project(proj)
    (proj / "benchmarks" / "tiny-cifar.yaml").write_text(TINY_CIFAR)
    sub = proj / "leaderboard" / "submissions" / "src.yaml"
    sub.write_text(submission("Source", "source", benchmark="tiny-cifar"))
    report = run_submissions([check_submission(sub)], device="cpu", progress=False, results_root=tmp_path / "res")
    assert report.failed == 0 and {c.scenario for c in report.cells} == {"clean", "cifar10c-file-fog-s2"}

    # a saved state_dict named in the benchmark is loaded as is: same logits, its sha256 is the model's identity
    splits = load_dataset("cifar10")
    trained = get_source_model(splits.source_train, splits.source_val, {"arch": "small_cnn", "width": 4},
                               {"name": "erm", "epochs": 1, "batch_size": 8}, 0, torch.device("cpu"), False)
    torch.save(trained.model.net.state_dict(), proj / "weights.pt")
    loaded = get_source_model(splits.source_train, splits.source_val,
                              {"arch": "small_cnn", "width": 4, "checkpoint": "weights.pt"}, {"name": "erm"}, 0,
                              torch.device("cpu"), False)
    x = splits.test.images.float() / 255
    with torch.no_grad():
        assert torch.equal(loaded.model(x), trained.model(x))
    from shiftbench.core.hashing import file_sha256

    assert loaded.sha256 == file_sha256(proj / "weights.pt") and loaded.info["trained_by"] == "user"
    with pytest.raises(UserError, match="model.checkpoint: cannot load .* into small_cnn"):
        get_source_model(splits.source_train, splits.source_val,
                         {"arch": "small_cnn", "width": 8, "checkpoint": "weights.pt"}, {}, 0, torch.device("cpu"), False)
