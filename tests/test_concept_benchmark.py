"""The shipped concept benchmark measures what it exists for: with minority groups in training, GroupDRO (which
uses the group labels) beats ERM on the worst group, and the groups it is measured on are large enough."""

from __future__ import annotations

import json
import shutil

import yaml
from conftest import REPO

from shiftbench.cli.main import main


def test_groupdro_beats_erm_on_the_worst_group_of_the_default_concept_benchmark(tmp_path, monkeypatch):
    root = tmp_path / "p"
    shutil.copytree(REPO / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir()
    shipped = yaml.safe_load((REPO / "benchmarks" / "concept.yaml").read_text())
    # trained in float32 (here and in the submissions): 3-4x faster than the shipped float64, which
    # only makes the bits agree across CPUs
    shipped["training"] = {**shipped["training"], "precision": "float32"}
    (root / "benchmarks" / "concept.yaml").write_text(yaml.safe_dump(shipped, sort_keys=False))
    subs = root / "leaderboard" / "submissions"
    subs.mkdir(parents=True)
    for recipe in ("erm", "groupdro"):  # the shipped submissions, seed 0 only
        body = yaml.safe_load((REPO / "leaderboard" / "submissions" / "concept" / f"{recipe}.yaml").read_text())
        if "training" in body:
            body["training"] = {**body["training"], "precision": "float32"}
        (subs / f"{recipe}.yaml").write_text(yaml.safe_dump({**body, "seeds": [0]}))
    monkeypatch.chdir(root)
    assert main(["run", "--quiet", "--store", str(tmp_path / "store")]) == 0

    worst, sizes = {}, {}
    for path in (root / "leaderboard" / "results" / "concept").glob("*.json"):
        body = json.loads(path.read_text())
        recipe = body["records"][0]["cell"]["training"]["name"]
        for rec in body["records"]:
            worst[recipe, rec["cell"]["scenario"]] = rec["metrics"]["worst_group_accuracy"]
            sizes[rec["cell"]["scenario"]] = rec["metrics"]["group_sizes"]
    scenarios = {"colour-balanced", "colour-flipped"}
    assert {s for _, s in worst} == scenarios
    for scenario in scenarios:
        assert worst["groupdro", scenario] >= worst["erm", scenario] + 0.3, (scenario, worst)
    assert len(sizes["colour-balanced"]) == 4 and min(sizes["colour-balanced"].values()) >= 100

    import torch

    from shiftbench.run.benchmark import load_benchmark
    from shiftbench.run.plan import scenario_cell
    from shiftbench.run.workspace import Workspace

    cell = scenario_cell(load_benchmark("concept"), "colour-balanced")
    train = Workspace(torch.device("cpu"), progress=False).source_split(cell, "source_train")
    groups = train.meta["report"]["group_sizes"]
    assert len(groups) == 4 and 0 < min(groups.values()) < 0.1 * max(groups.values())  # minorities exist, small
