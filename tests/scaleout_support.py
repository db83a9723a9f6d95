"""Shared by the scale-out tests: a fast grid, projects that can load fault_methods, record comparison."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, make_project

# Four scenarios of 96-99 test images and a 2-epoch width-4 model: a cell takes a fraction of a second.
# In batches of 48 the scenarios end on batches of 48, 1, 2 and 3 images, so a method can tell them apart
# (fault_methods.Misbehave misbehaves on one of them only).
FAST_BENCHMARK = """\
name: tiny
description: A fast grid for the scale-out tests.
dataset: digits
batch_size: 48
model: {arch: small_cnn, width: 4}
training: {name: erm, epochs: 2, lr: 0.05, batch_size: 64, precision: float32}
scenarios:
  - {name: prior-a1, family: label, shifts: [{shift: dirichlet_prior, alpha: 1.0, n: 96}]}
  - {name: prior-a100, family: label, shifts: [{shift: dirichlet_prior, alpha: 100.0, n: 97}]}
  - name: noise-s3
    family: covariate
    shifts: [{shift: gaussian_noise, severity: 3}, {shift: dirichlet_prior, alpha: 100.0, n: 98}]
  - name: contrast-s3
    family: covariate
    shifts: [{shift: contrast, severity: 3}, {shift: dirichlet_prior, alpha: 100.0, n: 99}]
"""
SCENARIOS = 4
LAST_BATCH = {"prior-a1": 48, "prior-a100": 1, "noise-s3": 2, "contrast-s3": 3}


def fault_project(root: Path, submissions: dict[str, str]) -> Path:
    """A project on the fast grid whose folder holds fault_methods.py, importable by path `fault_methods:...`."""
    make_project(root, submissions, benchmark=FAST_BENCHMARK)
    shutil.copy(Path(__file__).with_name("fault_methods.py"), root / "fault_methods.py")
    return root


def comparable(record: dict) -> dict:
    """A record without what legitimately differs between two computations: timing, the machine's name
    and the limits of the executor that ran it."""
    record = dict(record)
    record.pop("seconds", None)
    record.pop("limits", None)
    record["provenance"] = {k: v for k, v in record.get("provenance", {}).items() if k != "device"}
    return record


def store_records(store: Path) -> dict[str, dict]:
    """key -> comparable record for every record file in a store (raises if any file is not whole JSON)."""
    return {p.stem: comparable(json.loads(p.read_text())) for p in sorted(store.glob("*/*.json"))}


def record_stats(store: Path) -> dict[str, tuple[int, int]]:
    """file name -> (inode, mtime_ns): a rewritten record gets a new inode (atomic rename) and mtime."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in store.glob("*/*.json")}


def cli_env() -> dict[str, str]:
    """This checkout's code, one torch thread (the grid's records are compared bit for bit with an in-process run)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def start_run(project: Path, store: Path, results: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "shiftbench", "run", "--quiet", "--store", str(store), "--results", str(results),
           "--site", str(results.parent / "site"), *extra]
    return subprocess.Popen(cmd, cwd=project, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def counts_line(stdout: str) -> str:
    """The CLI's 'N cells: X computed, Y reused, Z failed' line."""
    return next(line for line in stdout.splitlines() if " cells: " in line)
