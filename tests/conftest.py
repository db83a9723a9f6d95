"""Shared fixtures: an isolated cache per test session and throwaway project folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session gets its own cache, so nothing depends on what a user has cached."""
    mp = pytest.MonkeyPatch()
    cache = tmp_path_factory.mktemp("cache")
    mp.setenv("SHIFTBENCH_CACHE", str(cache))
    torch.set_num_threads(1)  # small models: one thread is as fast and immune to oversubscription
    yield cache
    mp.undo()


# float32 training (3-4x faster than the float64 default): these tests need a model, not
# numbers that agree across CPU kernel sets (tests/test_golden.py and test_portable_numbers.py do)
TINY_BENCHMARK = """\
name: tiny
description: A few digits scenarios with a quickly trained model, for tests.
dataset: digits
batch_size: 64
model: {arch: small_cnn, width: 8}
training: {name: erm, epochs: 3, lr: 0.05, batch_size: 64, precision: float32}
scenarios:
  - {name: clean, family: clean}
  - {name: noise-s5, family: covariate, shifts: [{shift: gaussian_noise, severity: 5}]}
  - {name: contrast-s5, family: covariate, shifts: [{shift: contrast, severity: 5}]}
  - {name: dirichlet, family: label, shifts: [{shift: dirichlet_prior, alpha: 1.0, n: 300}]}
  - {name: relabel, family: concept, shifts: [{shift: relabel_subpopulation, mass: 0.5}]}
  - {name: translate-d1, family: translation, shifts: [{shift: translate, distance: 1}]}
"""


def make_project(root: Path, submissions: dict[str, str], benchmark: str = TINY_BENCHMARK) -> Path:
    """A project folder with the repo's manifests, a benchmark and the given submission files."""
    shutil.copytree(REPO / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "tiny.yaml").write_text(benchmark)
    for name in ("digits", "digits-full"):
        shutil.copy(REPO / "benchmarks" / f"{name}.yaml", root / "benchmarks" / f"{name}.yaml")
    subs = root / "leaderboard" / "submissions"
    subs.mkdir(parents=True)
    for name, text in submissions.items():
        (subs / name).write_text(text)
    return root


def submission(name: str, method: str, params: str = "{}", benchmark: str = "tiny", extra: str = "") -> str:
    return f"name: {name!r}\nmethod: {method}\nparams: {params}\nbenchmark: {benchmark}\nseeds: [0]\n{extra}"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project with the four baseline submissions on the tiny benchmark; cwd is set to it."""
    root = make_project(tmp_path / "proj", {
        "source.yaml": submission("Source", "source"),
        "bn.yaml": submission("BN", "bn_adapt"),
    })
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def proj(tmp_path, monkeypatch):
    """A project with the repo's manifests and the tiny benchmark, no submissions; cwd is set to it and
    SHIFTBENCH_DATA is an empty tmp folder."""
    root = make_project(tmp_path / "proj", {})
    monkeypatch.chdir(root)
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path / "data"))
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    return root


def run_cli(capsys, *args):
    """(exit code, stdout, stderr) of the command line."""
    from shiftbench.cli.main import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def records_of(results: Path) -> dict:
    """The cell records of a benchmark's results folder (one file per submission), by (method, scenario)."""
    import json

    return {(rec["cell"]["method"], rec["cell"]["scenario"]): rec
            for path in sorted(results.glob("*.json")) for rec in json.loads(path.read_text())["records"]}


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shiftbench: error: "), err
    return lines[0]
