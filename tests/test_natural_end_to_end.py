"""A tiny PACS-layout set through `shiftbench run`: leave-one-domain-out scenarios give the numbers an
independent forward pass over the target domain's files gives."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import yaml
from conftest import records_of, run_cli
from natural_fixtures import domainbed_folders
from PIL import Image

from shiftbench.models.architectures.small_cnn import SmallCNN

DOMAINS = ["art_painting", "cartoon", "photo", "sketch"]
CLASSES = ["dog", "elephant", "giraffe", "guitar", "horse", "house", "person"]

BENCHMARK = """\
name: pacs-tiny
description: A 16 px PACS-layout fixture with fixed weights.
dataset: pacs
batch_size: 8
model: {arch: small_cnn, width: 4, checkpoint: ckpt.pt}
scenarios:
  - name: "to-{d}"
    family: natural
    matrix: {d: [sketch, photo]}
    train_shifts: [{shift: domain_subset, domains: [art_painting, cartoon]}]
    shifts: [{shift: domain_subset, domains: ["{d}"]}]
"""


def expected_accuracy(net, folder) -> tuple[float, int]:
    """Top-1 accuracy of net on <folder>/<class>/*, decoded and normalised here (mean 0.5, std 0.5)."""
    correct = total = 0
    for k, cls in enumerate(CLASSES):
        for path in sorted((folder / cls).iterdir()):
            x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255
            pred = net(((x - 0.5) / 0.5)[None]).argmax(1).item()
            correct += pred == k
            total += 1
    return correct / total, total


def test_pacs_layout_through_shiftbench_run(proj, capsys, tmp_path):
    data = tmp_path / "data"
    domainbed_folders(data / "pacs" / "PACS", DOMAINS, CLASSES, {"art_painting": 3, "cartoon": 2, "photo": 2,
                                                                 "sketch": 3})
    manifest = yaml.safe_load((proj / "data_manifests" / "pacs.yaml").read_text())
    manifest["params"]["size"] = 16  # the fixture's images are 16 px: decoded as they are
    (proj / "data_manifests" / "pacs.yaml").write_text(yaml.safe_dump(manifest))
    (proj / "benchmarks" / "pacs-tiny.yaml").write_text(BENCHMARK)
    torch.manual_seed(0)
    net = SmallCNN(7, 3, 4).eval()
    torch.save(net.state_dict(), proj / "ckpt.pt")
    subs = proj / "leaderboard" / "submissions"
    for method in ("source", "bn_adapt", "tent"):
        (subs / f"{method}.yaml").write_text(f"name: {method}\nmethod: {method}\nbenchmark: pacs-tiny\nseeds: [0]\n")

    code, out, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 0, err
    records = records_of(proj / "leaderboard" / "results" / "pacs-tiny")
    assert set(records) == {(m, f"to-{d}") for m in ("source", "bn_adapt", "tent") for d in ("sketch", "photo")}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    with torch.no_grad():
        for d, n_per_class in (("sketch", 3), ("photo", 2)):
            acc, n = expected_accuracy(net, data / "pacs" / "PACS" / d)
            metrics = records["source", f"to-{d}"]["metrics"]
            assert metrics["n"] == n == 7 * n_per_class
            assert metrics["accuracy"] == pytest.approx(acc, abs=1e-12)
            assert records["bn_adapt", f"to-{d}"]["metrics"]["n"] == n
