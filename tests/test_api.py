"""shiftbench.evaluate: the documented example runs; a notebook shares cells with the command line; a user's
module is loadable from files in another process; bad input is one clear error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO, make_project, submission
from torch import nn

from shiftbench.core.errors import UserError


def example_code() -> str:
    text = (REPO / "docs" / "api.md").read_text()
    example = text.split("## Example", 1)[1]
    return re.search(r"```python\n(.*?)```", example, re.S).group(1)


def test_the_documented_example_runs_and_bn_recovers_what_the_corruptions_cost(tmp_path, monkeypatch):
    root = make_project(tmp_path / "p", {})
    monkeypatch.chdir(root)
    scope: dict = {}
    exec(compile(example_code(), "docs/api.md", "exec"), scope)
    table = scope["table"]
    assert len(table) == 6 and set(table.method) == {"source", "bn_adapt"} and (table.failed == 0).all()
    error = table.pivot(index="scenario", columns="method", values="error")
    assert error.loc["clean", "source"] < 0.15
    for corrupted in ("contrast-s5", "gaussian_noise-s5"):
        assert error.loc[corrupted, "source"] > error.loc["clean", "source"] + 0.3
        assert error.loc[corrupted, "bn_adapt"] < error.loc[corrupted, "source"] - 0.2
    assert set(table.entry) == {"my CNN · source", "my CNN · bn_adapt"}
    assert not (root / "leaderboard" / "results").exists()  # nothing written to the leaderboard unless asked


def test_a_notebook_and_the_command_line_share_every_cell(tmp_path, monkeypatch, capsys):
    import shiftbench
    from shiftbench.cli.main import main

    root = make_project(tmp_path / "p", {"source.yaml": submission("Source", "source"),
                                         "bn.yaml": submission("BN", "bn_adapt")})
    monkeypatch.chdir(root)
    store = tmp_path / "store"
    table = shiftbench.evaluate(None, methods=["source", "bn_adapt"], benchmark="tiny", store=store, leaderboard=True)
    assert len(table) == 2 * 6 and table.seeds.eq(1).all()
    results = sorted((root / "leaderboard" / "results" / "tiny").glob("*.json"))
    assert [json.loads(p.read_text())["name"] for p in results] == ["small_cnn · bn_adapt", "small_cnn · source"]
    assert (root / "leaderboard" / "site" / "index.html").exists()
    capsys.readouterr()
    assert main(["run", "--quiet", "--store", str(store)]) == 0
    assert "12 cells: 0 computed, 12 reused, 0 failed" in capsys.readouterr().out


SAVE = """
import json, sys, torch
from torch import nn
from shiftbench.api import save_user_model
from shiftbench.data import load_dataset

class Tiny(nn.Module):  # defined in __main__: only a by-value pickle can bring it to another process
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.classify = nn.Linear(16, 10)

    def forward(self, x):
        return self.classify(self.body(x)) * 2.0

torch.manual_seed(3)
net = Tiny().eval()
spec = save_user_model(net, mean=[0.1, 0.1, 0.1], std=0.5)
x = load_dataset("digits").test.model_view().images[:32].float() / 255
torch.save(net((x - 0.1) / 0.5).detach(), sys.argv[1])
print(json.dumps(spec))
"""

LOAD = """
import json, sys, torch
from shiftbench.data import load_dataset
from shiftbench.models import get_source_model

spec = json.loads(sys.argv[1])
d = load_dataset("digits")
model = get_source_model(d.source_train, d.source_val, spec, {"name": "erm"}, 0, torch.device("cpu"), False)
x = d.test.model_view().images[:32].float() / 255
torch.testing.assert_close(model.model(x), torch.load(sys.argv[2]))
print(model.sha256, type(model.model.net).__name__, model.model.head_name)
"""


def test_a_notebook_module_is_loaded_from_the_model_cache_in_another_process(tmp_path):
    from shiftbench.api.user_model import state_identity
    from shiftbench.core.hashing import file_sha256

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SHIFTBENCH_CACHE": str(tmp_path / "cache")}
    project = make_project(tmp_path / "p", {})  # both processes work in a project (its data manifests)
    expected = tmp_path / "logits.pt"
    saved = subprocess.run([sys.executable, "-c", SAVE, str(expected)], env=env, capture_output=True, text=True,
                           timeout=300, cwd=project)
    assert saved.returncode == 0, saved.stderr
    spec = json.loads(saved.stdout)
    assert spec["head"] == "classify" and spec["name"] == "Tiny" and spec["arch"].endswith(":saved_module")
    state = torch.load(spec["checkpoint"], weights_only=True)
    assert spec["checkpoint"].endswith(f"/{state_identity(state)}/state.pt")  # the identity is the state dict's sha256
    loaded = subprocess.run([sys.executable, "-c", LOAD, json.dumps(spec), str(expected)], env=env,
                            capture_output=True, text=True, timeout=300, cwd=project)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [file_sha256(spec["checkpoint"]), "Tiny", "classify"]


def test_bad_input_is_one_clear_error(tmp_path, monkeypatch):
    import shiftbench
    from shiftbench.api import save_user_model

    root = make_project(tmp_path / "p", {})
    monkeypatch.chdir(root)
    conv_only = nn.Sequential(nn.Conv2d(3, 10, 28), nn.Flatten())
    with pytest.raises(UserError, match="no nn.Linear"):
        shiftbench.evaluate(conv_only, benchmark="tiny")
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 10))
    with pytest.raises(UserError, match="unknown method 'nope'"):
        shiftbench.evaluate(net, methods=["nope"], benchmark="tiny")
    with pytest.raises(UserError, match="unknown scenario"):
        shiftbench.evaluate(net, benchmark="tiny", scenarios=["nowhere"])
    with pytest.raises(UserError, match="7 outputs, the benchmark has 10 classes"):
        shiftbench.evaluate(nn.Sequential(nn.Flatten(), nn.Linear(3 * 28 * 28, 7)), benchmark="tiny",
                            scenarios=["clean"])
    with pytest.raises(UserError, match="train their own source model"):  # a given model cannot serve them
        shiftbench.evaluate(net, benchmark="digits-full", scenarios=["clean", "colour-balanced"])
    spec = save_user_model(net)
    with open(spec["file"], "ab") as f:
        f.write(b"tampered")
    with pytest.raises(UserError, match="refusing to unpickle"):
        shiftbench.evaluate(spec, benchmark="tiny", scenarios=["clean"])


def test_import_shiftbench_stays_light():
    code = "import sys, shiftbench; print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
    code = "import shiftbench; print(callable(shiftbench.evaluate), shiftbench.evaluate.__module__)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "shiftbench.api.evaluate_model"], out.stderr


def test_a_command_imports_no_heavy_library_it_may_not_use():
    """What every `shiftbench run` imports (the command line, executors, methods, leaderboard) leaves the
    libraries of a few components to those components: they cost seconds of a warm run's 5."""
    code = ("import sys, shiftbench.cli.commands, shiftbench.run.executors, shiftbench.methods, shiftbench.leaderboard;"
            "shiftbench.methods.METHODS.names();"
            "print(sorted(m for m in ('torchvision', 'sklearn', 'scipy.optimize', 'matplotlib', 'open_clip', 'timm')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_notebook_outside_a_project_is_told_so_in_one_line(tmp_path):
    """No fallback to wherever the package lives (a wheel install has no benchmarks/): the API, like the
    CLI, works inside a project folder and says so anywhere else."""
    code = ("import shiftbench\nfrom shiftbench.core.errors import UserError\ntry:\n"
            "    shiftbench.evaluate(None, benchmark='digits')\nexcept UserError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.stdout.startswith("not inside a shiftbench project") and len(out.stdout.splitlines()) == 1, out.stderr
