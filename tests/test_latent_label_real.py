"""The latent-label CIFAR-10 benchmark on the real JPEG images with the published ResNet-20 (../shared; skipped when absent).

One scenario (20 domains, concentration 3) on a 1,000-image subset, through compute_cell as
`shiftbench run` computes it: the oracle with the true p_d(y) beats the source model, every
entry's matched accuracy is at least its plain accuracy, and DDFA and k-means on the
ResNet's features find the classes far above chance (10%), DDFA's recovered p_d(y) well inside
the 0..2 range of its error.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch
import yaml
from conftest import REPO, make_project

from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.compute import compute_cell
from shiftbench.run.plan import code_identity, scenario_cell
from shiftbench.run.workspace import Workspace

SHARED = REPO.parent / "shared"
JPEG = SHARED / "data" / "cifar10-jpeg"
WEIGHTS = SHARED / "models" / "cifar10-resnet20" / "resnet20-12fca82f.th"
SCENARIO = "latent-d20-c3.0"

pytestmark = pytest.mark.skipif(not (JPEG.is_dir() and WEIGHTS.is_file()),
                                reason="needs ../shared/data/cifar10-jpeg and ../shared/models/cifar10-resnet20")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("latent-real")
    root = make_project(tmp / "proj", {})
    for name in ("latent-label-cifar10", "latent-label-cifar10-jpeg"):
        shutil.copy(REPO / "benchmarks" / f"{name}.yaml", root / "benchmarks" / f"{name}.yaml")
    jpeg = root / "benchmarks" / "latent-label-cifar10-jpeg.yaml"
    jpeg.write_text(yaml.safe_dump({**yaml.safe_load(jpeg.read_text()), "n_per_scenario": 1000}))
    data = tmp / "data"
    (data / "cifar10-resnet20").mkdir(parents=True)
    (data / "cifar10-jpeg").symlink_to(JPEG)
    shutil.copy(WEIGHTS, data / "cifar10-resnet20" / WEIGHTS.name)
    mp.chdir(root)
    mp.setenv("SHIFTBENCH_DATA", str(data))
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    try:
        ws = Workspace(torch.device("cpu"), progress=False)
        bench = load_benchmark("latent-label-cifar10-jpeg")
        out = {}
        for method in ("source", "oracle_domain_prior", "ddfa", "kmeans_features"):
            cell = scenario_cell(bench, SCENARIO, method=method)
            model = ws.model(cell)
            cell = replace(cell, checkpoint_sha256=model.sha256, code=code_identity(cell))
            rec = compute_cell(cell, ws)
            assert rec["status"] == "ok", (method, rec["error"])
            out[method] = rec["metrics"]
        yield out
    finally:
        benchmark._cache.clear()
        mp.undo()


def test_the_oracle_beats_the_source_model_and_matching_never_lowers_a_score(records):
    assert records["oracle_domain_prior"]["accuracy"] > records["source"]["accuracy"]
    for method, metrics in records.items():
        assert metrics["matched_accuracy"] >= metrics["accuracy"] - 1e-12, method


def test_ddfa_and_kmeans_discover_the_classes_from_the_resnets_features(records):
    assert records["kmeans_features"]["matched_accuracy"] > 0.5
    assert records["ddfa"]["matched_accuracy"] > 0.4
    assert 0 <= records["ddfa"]["domain_prior_l1"] < 1.0
