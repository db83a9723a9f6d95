"""Tiny copies of the natural test sets through `shiftbench run`: a scenario that plays another dataset
(CIFAR-10.1 beside CIFAR-10; ImageNet-R beside ImageNet) gives the accuracy an independent forward pass
gives, and a 200-class subset is scored on the model's logits of those classes in the subset's order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import one_error_line, records_of, run_cli
from natural_fixtures import CIFAR10_CLASSES, cifar10_1_arrays, cifar10_2_npz, class_folders
from PIL import Image
from tiny_formats import write_cifar10

from shiftbench.models.architectures.small_cnn import SmallCNN

CIFAR_BENCHMARK = """\
name: cifar-natural-tiny
description: CIFAR-10 fixtures with fixed weights and two natural test sets (one not on disk).
dataset: cifar10
batch_size: 4
model: {arch: small_cnn, width: 4, checkpoint: ckpt.pt}
scenarios:
  - {name: clean, family: clean}
  - name: "{d}"
    family: natural
    matrix: {d: [cifar10.1-v6, cifar10.1-v4, cifar10.2]}
    dataset: "{d}"
"""

IMAGENET_BENCHMARK = """\
name: imagenet-natural-tiny
description: ImageNet-layout fixtures (1000 wnid classes) with fixed weights and an ImageNet-R copy.
dataset: imagenet-val
batch_size: 4
model: {arch: small_cnn, width: 4, checkpoint: ckpt.pt}
scenarios:
  - {name: clean, family: clean}
  - {name: imagenet-r, family: natural, dataset: imagenet-r}
"""


def submit(proj, benchmark: str, methods) -> None:
    subs = proj / "leaderboard" / "submissions"
    for method in methods:
        (subs / f"{method}.yaml").write_text(f"name: {method}\nmethod: {method}\nbenchmark: {benchmark}\nseeds: [0]\n")


def logits_of(net, images_nhwc: np.ndarray) -> torch.Tensor:
    """The net's logits, inputs in [0, 1] normalised here with small_cnn's mean 0.5 and std 0.5."""
    x = torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return net((x - 0.5) / 0.5)


def test_cifar10_natural_sets_through_shiftbench_run(proj, capsys, tmp_path):
    data = tmp_path / "data"
    write_cifar10(data / "cifar10" / "cifar-10-batches-py")
    v6_labels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    v6 = cifar10_1_arrays(data / "cifar10.1-v6", "v6", v6_labels, seed=5)
    c102_labels = [9, 8, 7, 1, 1, 2, 3]
    c102 = cifar10_2_npz(data / "cifar10.2" / "cifar102_test.npz", c102_labels, seed=6)
    (proj / "benchmarks" / "cifar-natural-tiny.yaml").write_text(CIFAR_BENCHMARK)
    torch.manual_seed(0)
    net = SmallCNN(10, 3, 4).eval()
    torch.save(net.state_dict(), proj / "ckpt.pt")
    submit(proj, "cifar-natural-tiny", ("source", "tent"))

    code, out, err = run_cli(capsys, "validate", "leaderboard/submissions/source.yaml")
    assert code == 0 and "3 scenarios x 1 seeds" in out
    assert "skips scenario 'cifar10.1-v4': cifar10.1-v4 not on disk (`shiftbench data fetch cifar10.1-v4`" in out

    code, out, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 0, err
    records = records_of(proj / "leaderboard" / "results" / "cifar-natural-tiny")
    assert set(records) == {(m, s) for m in ("source", "tent") for s in ("clean", "cifar10.1-v6", "cifar10.2")}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    for scenario, images, labels in (("cifar10.1-v6", v6, v6_labels), ("cifar10.2", c102, c102_labels)):
        rec = records["source", scenario]
        assert rec["cell"]["family"] == "natural" and rec["cell"]["spec"]["dataset"] == scenario
        expected = (logits_of(net, images).argmax(1) == torch.tensor(labels)).double().mean().item()
        assert rec["metrics"]["n"] == len(labels)
        assert rec["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-12)
        assert records["tent", scenario]["metrics"]["n"] == len(labels)
    # the played set's data enters the cell's data hash: another copy of it is another cell
    assert records["source", "cifar10.1-v6"]["provenance"]["data_sha256"] != \
        records["source", "clean"]["provenance"]["data_sha256"]
    assert records["source", "clean"]["metrics"]["n"] == 6

    # the boards show the new sets as the natural family, apart from the clean scenario
    from shiftbench.leaderboard.render import load_boards

    summary, boards = load_boards(proj / "leaderboard" / "results")
    natural = [b for b in boards if b.benchmark == "cifar-natural-tiny" and b.family == "natural"]
    assert natural and all(b.scenarios == ["cifar10.1-v6", "cifar10.2"] for b in natural)
    source = summary[(summary.benchmark == "cifar-natural-tiny") & (summary.entry == "source")].iloc[0]
    mean_natural = np.mean([records["source", s]["metrics"]["accuracy"] for s in ("cifar10.1-v6", "cifar10.2")])
    assert source["natural"] == pytest.approx(mean_natural, abs=1e-9)
    page = (proj / "leaderboard" / "site" / "cifar-natural-tiny" / "natural.html").read_text()
    assert "accuracy-on-the-line.svg" in page and "Accuracy on the line" in page
    assert "Accuracy in percent on each real test set" in page and "Consistency" not in page


def test_imagenet_r_subset_through_shiftbench_run(proj, capsys, tmp_path):
    data = tmp_path / "data"
    wnids = yaml.safe_load((proj / "data_manifests" / "imagenetv2-matched-frequency.yaml").read_text())["params"]["classes"]
    r_manifest = yaml.safe_load((proj / "data_manifests" / "imagenet-r.yaml").read_text())
    subset = r_manifest["params"]["classes"]
    # ImageNet in torchvision's layout: every wnid folder (most empty), a few images in train/ and val/
    for split in ("train", "val"):
        class_folders(data / "imagenet-val" / split, wnids, {wnids[k]: 2 for k in (1, 2, 500)}, suffix=".JPEG")
    picked = {subset[0]: 2, subset[1]: 1, subset[120]: 2, subset[199]: 1}
    class_folders(data / "imagenet-r" / "imagenet-r", subset, picked, readme=True)
    for name, params in (("imagenet-val", {"size": 16, "resize": None, "crop": None}),
                         ("imagenet-r", {"resize": None, "crop": None})):
        manifest = yaml.safe_load((proj / "data_manifests" / f"{name}.yaml").read_text())
        manifest["params"].update(params)  # the fixture's 16 px images, decoded as they are
        (proj / "data_manifests" / f"{name}.yaml").write_text(yaml.safe_dump(manifest))
    (proj / "benchmarks" / "imagenet-natural-tiny.yaml").write_text(IMAGENET_BENCHMARK)
    torch.manual_seed(0)
    net = SmallCNN(1000, 3, 4).eval()
    columns = [k for k, w in enumerate(wnids) if w in set(subset)]  # the authors' mask positions, ascending
    with torch.no_grad():  # the head's biases decide: a non-subset class first, then subset class 0, then 120
        net.head.weight.mul_(1e-3)
        net.head.bias.zero_()
        net.head.bias[0] = 9.0  # n01440764 is not an ImageNet-R class
        net.head.bias[columns[0]], net.head.bias[columns[120]] = 5.0, 4.0
    torch.save(net.state_dict(), proj / "ckpt.pt")
    submit(proj, "imagenet-natural-tiny", ("source", "bn_adapt", "tent", "t3a"))

    code, out, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 0, err
    records = records_of(proj / "leaderboard" / "results" / "imagenet-natural-tiny")
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    assert {s for _, s in records} == {"clean", "imagenet-r"}

    # independently: the authors' rule, the 1000 logits at the subset's mask positions, argmax over them
    images, labels = [], []
    for k, wnid in enumerate(subset):
        for path in sorted((data / "imagenet-r" / "imagenet-r" / wnid).glob("*.jpg")):
            images.append(np.array(Image.open(path).convert("RGB")))
            labels.append(k)
    logits = logits_of(net, np.stack(images))
    expected = (logits[:, columns].argmax(1) == torch.tensor(labels)).double().mean().item()
    over_all_1000 = (logits.argmax(1) == torch.tensor([columns[y] for y in labels])).double().mean().item()
    rec = records["source", "imagenet-r"]
    assert rec["metrics"]["n"] == 6
    assert rec["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-12)
    assert expected == 2 / 6 and over_all_1000 == 0  # an unrestricted argmax, or reversed columns (1/6), is caught
    for method in ("bn_adapt", "tent", "t3a"):
        assert records[method, "imagenet-r"]["metrics"]["n"] == 6


SHARED = Path(__file__).resolve().parents[2] / "shared"
JPEG = SHARED / "data" / "cifar10-jpeg"
WEIGHTS = SHARED / "models" / "cifar10-resnet20" / "resnet20-12fca82f.th"

REAL_BENCHMARK = """\
name: real-natural
description: The published ResNet-20 on the CIFAR-10 JPEG test images, and on them again re-packed as CIFAR-10.1.
dataset: cifar10-jpeg
batch_size: 200
model: {weights: cifar10-resnet20}
scenarios:
  - {name: clean, family: clean}
  - {name: repacked, family: natural, dataset: cifar10.1-v6}
"""


@pytest.mark.skipif(not (JPEG.is_dir() and WEIGHTS.is_file()),
                    reason="needs ../shared/data/cifar10-jpeg and ../shared/models/cifar10-resnet20")
def test_published_resnet20_scores_repacked_real_images_as_their_folder_copy(proj, tmp_path):
    """The real test JPEGs as a CIFAR-10.1-layout set, scored through a natural scenario, give the published
    ResNet-20 exactly the accuracy the same images give as the benchmark's own image folder (a channel or
    class-order slip in the array path would not); about 81% (18.97% error on all 10,000 of these files)."""
    import shutil
    from dataclasses import replace

    from shiftbench.run.benchmark import load_benchmark
    from shiftbench.run.compute import compute_cell
    from shiftbench.run.plan import scenario_cell
    from shiftbench.run.workspace import Workspace

    data = tmp_path / "data"
    (data / "cifar10-resnet20").mkdir(parents=True)
    shutil.copy(WEIGHTS, data / "cifar10-resnet20" / WEIGHTS.name)
    images, labels = [], []
    for k, cls in enumerate(CIFAR10_CLASSES):  # a copy of the first 50 test (10 train) images of each class
        for split, n in (("test", 50), ("train", 10)):
            (data / "cifar10-jpeg" / split / cls).mkdir(parents=True)
            for path in sorted((JPEG / split / cls).iterdir())[:n]:
                (data / "cifar10-jpeg" / split / cls / path.name).symlink_to(path)
                if split == "test":
                    images.append(np.array(Image.open(path).convert("RGB")))
                    labels.append(k)
    (data / "cifar10.1-v6").mkdir()
    np.save(data / "cifar10.1-v6" / "cifar10.1_v6_data.npy", np.stack(images))
    np.save(data / "cifar10.1-v6" / "cifar10.1_v6_labels.npy", np.asarray(labels, dtype="<i4"))
    (proj / "benchmarks" / "real-natural.yaml").write_text(REAL_BENCHMARK)
    bench = load_benchmark("real-natural")
    workspace = Workspace(torch.device("cpu"), progress=False)
    got = {}
    for scenario in ("clean", "repacked"):
        cell = scenario_cell(bench, scenario)
        cell = replace(cell, checkpoint_sha256=workspace.model(cell).sha256)
        record = compute_cell(cell, workspace)
        assert record["status"] == "ok", record["error"]
        got[scenario] = record["metrics"]
    assert got["repacked"]["n"] == got["clean"]["n"] == 500
    assert got["repacked"]["accuracy"] == got["clean"]["accuracy"]
    assert got["repacked"]["accuracy"] > 0.75  # about 81% on all 10,000; swapped channels or classes fall far below


def test_bad_natural_scenarios_are_one_line_before_anything_runs(proj, capsys, tmp_path):
    data = tmp_path / "data"
    write_cifar10(data / "cifar10" / "cifar-10-batches-py")
    cifar10_1_arrays(data / "cifar10.1-v6", "v6", [0, 1, 2])
    torch.save(SmallCNN(10, 3, 4).state_dict(), proj / "ckpt.pt")
    submit(proj, "cifar-natural-tiny", ("source",))
    bench = proj / "benchmarks" / "cifar-natural-tiny.yaml"
    bench.write_text(CIFAR_BENCHMARK.replace("[cifar10.1-v6, cifar10.1-v4, cifar10.2]", "[cifar10.1-v6, no-such-set]"))
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/source.yaml")
    line = one_error_line(err)
    assert code == 2 and "cifar-natural-tiny.yaml: scenario 'no-such-set': dataset: no data manifest 'no-such-set'" in line

    bench.write_text(CIFAR_BENCHMARK)
    manifest = proj / "data_manifests" / "cifar10.1-v6.yaml"
    raw = yaml.safe_load(manifest.read_text())
    raw["params"]["classes"] = raw["params"]["classes"][:9] + ["zebra"]  # a class the CIFAR-10 model lacks
    manifest.write_text(yaml.safe_dump(raw))
    code, _, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 2 and "dataset 'cifar10.1-v6' has classes the model does not know: zebra" in one_error_line(err)
    assert not (proj / "leaderboard" / "results" / "cifar-natural-tiny").exists()
