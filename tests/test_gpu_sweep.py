"""scripts/gpu_sweep.py --quick on the CPU, so the GPU sweep cannot rot between the sessions that have a GPU.

Uses the real CIFAR-10 JPEGs and the published ResNet-20 (../shared; skipped when absent). The
source and BN-adapt rows must equal an independent forward pass over the same corrupted images.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
JPEG = SHARED / "data" / "cifar10-jpeg"
WEIGHTS = SHARED / "models" / "cifar10-resnet20" / "resnet20-12fca82f.th"

pytestmark = pytest.mark.skipif(not (JPEG.is_dir() and WEIGHTS.is_file()),
                                reason="needs ../shared/data/cifar10-jpeg and ../shared/models/cifar10-resnet20")


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_sweep", REPO / "scripts" / "gpu_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def direct_errors(model, data, batch: int, test_batch_statistics: bool) -> float:
    net = copy.deepcopy(model)
    net.eval()
    if test_batch_statistics:
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train()
                m.track_running_stats = False
                m.running_mean = m.running_var = None
    wrong = 0
    with torch.no_grad():
        for i in range(0, len(data), batch):
            x = data.images[i : i + batch].float().div(255)
            wrong += (net(x).argmax(1) != data.labels[i : i + batch]).sum().item()
    return wrong / len(data)


def test_quick_sweep_equals_a_direct_forward_pass_and_compares_runs(tmp_path, monkeypatch):
    sweep = load_script()
    monkeypatch.delenv("SHIFTBENCH_DATA", raising=False)
    out = tmp_path / "run.json"
    run = sweep.main(["--data", str(JPEG), "--checkpoint", str(WEIGHTS), "--quick", "--device", "cpu",
                      "--threads", "1", "--out", str(out)])
    assert list(run["methods"]) == ["source", "bn_adapt", "tent"] and run["cells"] == ["gaussian_noise-s5", "contrast-s5"]
    assert out.exists() and run["n"] == 200

    model = sweep.resnet20(WEIGHTS)
    clean = sweep.folder_set(JPEG / "test", 200)
    cells, _ = sweep.corrupted_cells(clean, ["gaussian_noise", "contrast"], [5])
    for cell, data in cells.items():
        assert run["methods"]["source"]["errors"][cell] == pytest.approx(direct_errors(model, data, 200, False))
        assert run["methods"]["bn_adapt"]["errors"][cell] == pytest.approx(direct_errors(model, data, 200, True))
    # the published picture: gaussian noise at severity 5 breaks the source model, BN statistics recover much of it
    src, bn = run["methods"]["source"]["errors"], run["methods"]["bn_adapt"]["errors"]
    assert src["gaussian_noise-s5"] > bn["gaussian_noise-s5"] + 0.1

    other = copy.deepcopy(run)
    other["methods"]["tent"]["errors"]["contrast-s5"] += 0.004
    diffs = sweep.largest_differences(run, other)
    assert diffs["source"] == 0 and diffs["tent"] == pytest.approx(0.4)
