"""Result files written directly (no model runs), in the format runner.write_result produces, for site tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shiftbench.core.hashing import config_hash
from shiftbench.run.results import result_path

SITE_BENCHMARK = """\
name: synth
description: Synthetic results for leaderboard tests (the scenarios are real, the numbers are made up).
dataset: digits
model: {arch: small_cnn, width: 8}
training: {name: erm, epochs: 1}
scenarios:
  - {name: clean, family: clean}
  - name: "{c}-s{s}"
    family: covariate
    matrix: {c: [gaussian_noise, contrast], s: [1, 3, 5]}
    shifts: [{shift: "{c}", severity: "{s}"}]
  - name: noise-sequence
    family: covariate
    segments: [[{shift: gaussian_noise, severity: 5}], [{shift: contrast, severity: 5}]]
  - {name: dirichlet-a1, family: label, shifts: [{shift: dirichlet_prior, alpha: 1.0, n: 300}]}
  - {name: relabel, family: concept, shifts: [{shift: relabel_subpopulation, mass: 0.5}]}
  - {name: translate-d1, family: translation, shifts: [{shift: translate, distance: 1}]}
"""

def site_project(root: Path) -> None:
    """A project folder holding the synthetic benchmark (and the data manifests it names)."""
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir()
    (root / "leaderboard").mkdir()
    (root / "benchmarks" / "synth.yaml").write_text(SITE_BENCHMARK)


SCENARIOS = {"clean": ("clean", 0), "gaussian_noise-s1": ("covariate", 1), "gaussian_noise-s3": ("covariate", 3),
             "gaussian_noise-s5": ("covariate", 5), "contrast-s1": ("covariate", 1), "contrast-s3": ("covariate", 3),
             "contrast-s5": ("covariate", 5), "noise-sequence": ("covariate", 5), "dirichlet-a1": ("label", 0),
             "relabel": ("concept", 0), "translate-d1": ("translation", 0)}


MODEL = {"arch": "small_cnn", "width": 8}
SEED_OFFSETS = (0.0, 0.012, -0.009, 0.004, -0.006)  # seed i's accuracy = the seed-0 accuracy + SEED_OFFSETS[i]


def accuracies(quality: float, seed: int = 0) -> dict[str, float]:
    """Plausible made-up accuracies: better methods lose less with severity; other seeds move a little."""
    return {s: round(min(0.99, max(0.05, quality - (0.11 - 0.08 * quality) * sev + SEED_OFFSETS[seed])), 4)
            for s, (_, sev) in SCENARIOS.items()}


def record(benchmark: str, benchmark_hash: str, scenario: str, family: str, method: str, params: dict[str, Any],
           acc: float | None, seed: int = 0, extra: dict[str, Any] | None = None, error: str = "",
           protocol: str = "per_scenario", model: dict[str, Any] | None = None,
           checkpoint: str = "c" * 64) -> dict[str, Any]:
    cell = {"benchmark": benchmark, "benchmark_hash": benchmark_hash, "scenario": scenario, "family": family,
            "method": method, "params": params, "protocol": protocol, "seed": seed, "training": None,
            "model": MODEL if model is None else model, "checkpoint_sha256": checkpoint, "batch_size": 64,
            "version": "0.1.0"}
    rec: dict[str, Any] = {"key": config_hash(cell, length=32), "cell": cell, "status": "ok", "error": None,
                           "seconds": 0.25}
    prov = {"shiftbench_version": "0.1.0", "git_commit": "abc123", "torch_version": "2.x", "python_version": "3.x",
            "device": "cpu:x86_64", "data_sha256": "d" * 64, "checkpoint_sha256": checkpoint, "model_key": "m1",
            "config_hash": rec["key"], "benchmark_hash": benchmark_hash}
    if acc is None:
        rec.update(status="failed", error=error or "RuntimeError: the method diverged", provenance=prov,
                   traceback="Traceback (most recent call last):\n  ...\nRuntimeError: the method diverged\n")
        return rec
    metrics = {"n": 300, "accuracy": acc, "error": 1 - acc, "nll": round(2.5 * (1 - acc), 4),
               "ece": round(0.3 * (1 - acc), 4), "balanced_accuracy": acc}
    if family == "translation":
        metrics["consistency"] = round(min(1.0, acc + 0.05), 4)
    if family == "concept":
        metrics["worst_group_accuracy"] = round(acc / 2, 4)
        metrics["group_sizes"] = {"0": 140, "1": 12, "2": 135, "3": 13}
    extra = dict(extra or {})
    for key in ("segments", "online"):
        if key in extra:
            rec[key] = extra.pop(key)
    rec.update(metrics={**metrics, **extra}, method_info={}, provenance=prov)
    return rec


def write_result(results_root: Path, name: str, method: str, *, benchmark: str = "synth", benchmark_hash: str,
                 quality: float = 0.8, params: dict[str, Any] | None = None, failed: tuple[str, ...] = (),
                 extra: dict[str, dict[str, Any]] | None = None, submission: dict[str, Any] | None = None,
                 scenarios: dict[str, tuple[str, int]] | None = None, seeds: tuple[int, ...] = (0,),
                 protocol: str = "per_scenario", model: dict[str, Any] | None = None,
                 checkpoint: str = "c" * 64) -> Path:
    """A result file as runner.write_result would write it; returns its path.

    extra: scenario -> more metrics for its records (and `segments` / `online`, placed beside the metrics)."""
    params = params or {}
    records = []
    for seed in seeds:
        accs = accuracies(quality, seed)
        records += [record(benchmark, benchmark_hash, s, fam, method, params, None if s in failed else accs[s],
                           seed=seed, extra=(extra or {}).get(s), protocol=protocol, model=model, checkpoint=checkpoint)
                    for s, (fam, _) in (scenarios or SCENARIOS).items()]
    sub = {"name": name, "method": method, "params": params, "benchmark": benchmark, "seeds": list(seeds),
           "protocol": protocol, **(submission or {})}
    body = {"submission": sub, "submission_file": "entry.yaml", "name": name, "method": method, "params": params,
            "benchmark": benchmark, "benchmark_hash": benchmark_hash,
            "records": sorted(records, key=lambda r: (r["cell"]["seed"], r["cell"]["scenario"]))}
    body["records_sha256"] = config_hash(body["records"], length=64)
    path = result_path(results_root, benchmark, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1, sort_keys=True))
    return path
