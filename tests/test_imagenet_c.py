"""The ImageNet-C-shaped benchmark on a tiny generated image folder with a random-weight ResNet-50:
ImageNet's evaluation geometry, the ImageNet-C parameter table, torchvision's model and preprocessing."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, make_project

from shiftbench.core.hashing import file_sha256
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.compute import compute_cell
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace
from shiftbench.shifts import apply_shifts

CPU = torch.device("cpu")
WNIDS = ("n01440764", "n01443537", "n01484850")
SIZES = ((300, 260), (256, 400), (240, 240))


@pytest.fixture
def tiny_imagenet(tmp_path, monkeypatch):
    from PIL import Image

    root = make_project(tmp_path / "proj", {})
    shutil.copy(REPO / "benchmarks" / "imagenet-c.yaml", root / "benchmarks" / "imagenet-c.yaml")
    data = tmp_path / "data"
    r = np.random.default_rng(0)
    for split, per_class in (("train", 2), ("val", 2)):
        for k, wnid in enumerate(WNIDS):
            (data / "imagenet-val" / split / wnid).mkdir(parents=True)
            for i in range(per_class):
                w, h = SIZES[(k + i) % 3]
                smooth = r.integers(0, 256, (h // 20 + 1, w // 20 + 1, 3), dtype=np.uint8)
                img = Image.fromarray(smooth).resize((w, h), Image.BILINEAR)
                img.save(data / "imagenet-val" / split / wnid / f"ILSVRC2012_{split}_{k}{i}.JPEG", quality=95)
    # a random-weight ResNet-50 for 3 classes, placed where `data fetch` would, its manifest pointed at it
    import torchvision

    torch.manual_seed(0)
    weights = data / "torchvision-resnet50-v1" / "resnet50-0676ba61.pth"
    weights.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet50(num_classes=3).state_dict(), weights)
    manifest = root / "data_manifests" / "torchvision-resnet50-v1.yaml"
    raw = yaml.safe_load(manifest.read_text())
    raw["files"][0]["sha256_prefix"] = file_sha256(weights)[:8]
    raw["model"]["num_classes"] = 3
    manifest.write_text(yaml.safe_dump(raw))
    bench = root / "benchmarks" / "imagenet-c.yaml"
    raw = yaml.safe_load(bench.read_text())
    raw.pop("n_per_scenario")  # six images
    raw["batch_size"] = 3
    bench.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(root)
    monkeypatch.setenv("SHIFTBENCH_DATA", str(data))
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    return data, weights


def test_imagenet_c_benchmark_on_a_tiny_folder_with_a_random_resnet50(tiny_imagenet):
    import torchvision
    from PIL import Image
    from torchvision import transforms

    data, weights = tiny_imagenet
    bench = load_benchmark("imagenet-c")
    ws = Workspace(CPU, progress=False)
    test = ws.dataset("imagenet-val").test
    # ImageNet's evaluation geometry, as torchvision's own transforms compute it on the files
    geometry = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    files = sorted((data / "imagenet-val" / "val").glob("*/*.JPEG"))
    want = np.stack([np.asarray(geometry(Image.open(f).convert("RGB"))).transpose(2, 0, 1) for f in files])
    assert test.images.shape == (6, 3, 224, 224) and torch.equal(test.images, torch.from_numpy(want))
    assert test.classes == WNIDS

    clean_cell = scenario_cell(bench, "clean")
    model = ws.model(clean_cell)
    assert model.provenance()["preprocessing"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                                    "input_size": 224, "resize": 256, "interpolation": "bilinear"}
    theirs = torchvision.models.resnet50(num_classes=3)
    theirs.load_state_dict(torch.load(weights, weights_only=True))
    norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    x = test.images.float() / 255
    with torch.no_grad():  # 224 px images are in the model's geometry: normalised only, not resized again
        assert torch.allclose(model.model(x), theirs.eval()(norm(x)), atol=1e-4)

    # the ImageNet-C table: Gaussian noise at severity 5 has sigma 0.38 (CIFAR-10-C: 0.10)
    spec = bench.scenario("generated-gaussian_noise-s5").resolved()["segments"][0]
    noisy = apply_shifts(test, spec, seed=0)
    small = apply_shifts(test, [{**spec[0], "table": "cifar"}], seed=0)
    spread = (noisy.images.float() - test.images.float()).std().item() / 255
    assert spread > 0.25 > (small.images.float() - test.images.float()).std().item() / 255

    for scenario, method in (("clean", "source"), ("generated-gaussian_noise-s5", "bn_adapt")):
        cell = replace(scenario_cell(bench, scenario, method=method), checkpoint_sha256=model.sha256)
        record = compute_cell(cell, ws)
        assert record["status"] == "ok", record["error"]
        assert record["provenance"]["checkpoint_sha256"] == file_sha256(weights)
        assert record["provenance"]["test_stream"] == {"split": "test", "n_per_scenario": None, "order": "shuffled"}
