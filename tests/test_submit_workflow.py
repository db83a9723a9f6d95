"""The submission workflow: validate reports every problem on its own line; a third-party plugin is installed and submitted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import REPO, make_project, submission

from shiftbench.cli.main import main

PLUGIN_BENCHMARK = """\
name: plug
dataset: digits
batch_size: 128
model: {arch: small_cnn, width: 8}
training: {name: erm, epochs: 1, lr: 0.05, batch_size: 128, precision: float32}
scenarios:
  - {name: clean, family: clean}
  - {name: noise-s5, family: covariate, shifts: [{shift: gaussian_noise, severity: 5}]}
"""

PLUGIN_CODE = '''\
"""A third-party method: sharpen the source model's logits by a temperature (argmax unchanged)."""
from shiftbench.methods import Method


class Sharpen(Method):
    logit_only = True

    def __init__(self, temperature: float = 0.5):
        self.temperature = temperature

    def adapt_logits(self, logits):
        return logits / self.temperature

    def describe(self):
        return {"plugin": "sbplugin_demo", "temperature": self.temperature}
'''

PLUGIN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "sbplugin-demo"
version = "0.1"

[project.entry-points."shiftbench.methods"]
sharpen = "sbplugin_demo:Sharpen"

[tool.setuptools.packages.find]
where = ["src"]
"""


def validate(capsys, *files) -> tuple[int, list[str], str]:
    code = main(["validate", *map(str, files)])
    out = capsys.readouterr()
    return code, out.err.strip().splitlines(), out.out


def test_validate_prints_every_problem_on_one_line_naming_the_field(project, capsys):
    bad = Path("bad.yaml")
    bad.write_text("name: x\nmethod: source\nprotocol: sometimes\ncolour: red\nseeds: many\n")
    code, errors, _ = validate(capsys, bad)
    assert code == 2 and len(errors) == 3
    assert all(e.startswith("shiftbench: error: bad.yaml: ") for e in errors)
    fields = {e.split(": ")[3] for e in errors}
    assert fields == {"protocol", "colour", "seeds"}
    assert "'episodic', 'per_scenario' or 'continual'" in next(e for e in errors if ": protocol: " in e)
    assert "allowed: name, method" in next(e for e in errors if ": colour: " in e)

    Path("method.yaml").write_text(submission("m", "no_such_method"))
    Path("param.yaml").write_text(submission("p", "tent", params="{lr: fast}"))
    Path("taken.yaml").write_text(submission("Source", "bn_adapt"))  # 'Source' is in leaderboard/submissions
    Path("good.yaml").write_text(submission("Fresh", "alpha_bn", params="{alpha: 0.2}"))
    code, errors, out = validate(capsys, "method.yaml", "param.yaml", "taken.yaml", "good.yaml")
    assert code == 2 and len(errors) == 3
    assert "method.yaml: method: unknown method 'no_such_method'; known:" in errors[0]
    assert "param.yaml" in errors[1] and "lr" in errors[1]
    assert "taken.yaml: name: submission name 'Source' is already used" in errors[2]
    assert "good.yaml: ok (alpha_bn on tiny" in out
    assert validate(capsys, "good.yaml")[0] == 0
    assert not Path("leaderboard/results").exists()  # validating never runs anything


def _cli(args: list[str], cwd: Path, pythonpath: list[Path]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    return subprocess.run([sys.executable, "-m", "shiftbench", *args, "--quiet", "--device", "cpu"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _accuracy(result: Path) -> dict[str, dict]:
    return {r["cell"]["scenario"]: r["metrics"] for r in json.loads(result.read_text())["records"]}


def test_a_pip_installed_plugin_is_submitted_by_entry_point_and_by_import_path(tmp_path, monkeypatch, capsys):
    plugin = tmp_path / "plugin"
    (plugin / "src" / "sbplugin_demo").mkdir(parents=True)
    (plugin / "src" / "sbplugin_demo" / "__init__.py").write_text(PLUGIN_CODE)
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    target = tmp_path / "target"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(plugin)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    assert (target / "sbplugin_demo" / "__init__.py").exists()

    root = make_project(tmp_path / "proj", {
        "sharpen.yaml": submission("Sharpen (entry point)", "sharpen", benchmark="plug"),
    }, benchmark=PLUGIN_BENCHMARK)
    (root / "benchmarks" / "tiny.yaml").rename(root / "benchmarks" / "plug.yaml")
    path = [REPO / "src", target]

    # entry point: `submit` validates, evaluates, writes the result and rebuilds the site
    done = _cli(["submit", "leaderboard/submissions/sharpen.yaml"], root, path)
    assert done.returncode == 0, done.stderr
    results = root / "leaderboard" / "results" / "plug"
    (by_entry_point,) = results.glob("Sharpen--entry-point-*.json")
    records = json.loads(by_entry_point.read_text())["records"]
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert records[0]["method_info"] == {"plugin": "sbplugin_demo", "temperature": 0.5}
    site = root / "leaderboard" / "site"
    assert "Sharpen (entry point)" in (site / "index.html").read_text()
    assert list(site.glob("plug/entries/Sharpen--entry-point-*.html"))

    # import path, beside the source model (in this process, to save a second start-up): the same class gives
    # the same numbers, and sharpening keeps the argmax
    subs = root / "leaderboard" / "submissions"
    (subs / "import.yaml").write_text(submission("Sharpen (import path)", "sbplugin_demo:Sharpen", benchmark="plug"))
    (subs / "source.yaml").write_text(submission("Source", "source", benchmark="plug"))
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(target))
    assert main(["run", "--quiet", "--device", "cpu"]) == 0
    assert "6 cells: 4 computed, 2 reused" in capsys.readouterr().out  # the entry-point cells were not recomputed
    (by_import,) = results.glob("Sharpen--import-path-*.json")
    (source,) = results.glob("Source-*.json")
    ep, ip, src = _accuracy(by_entry_point), _accuracy(by_import), _accuracy(source)
    for scenario in ("clean", "noise-s5"):
        assert ep[scenario] == ip[scenario]
        assert ep[scenario]["accuracy"] == src[scenario]["accuracy"]
        assert ep[scenario]["nll"] != src[scenario]["nll"]
    page = (site / "index.html").read_text()
    assert "Sharpen (import path)" in page and "sbplugin_demo:Sharpen" in page


def test_submit_refuses_a_bad_file_and_writes_nothing(project, capsys):
    Path("bad.yaml").write_text(textwrap.dedent("""\
        name: Broken
        method: tent
        params: {steps: -1}
        benchmark: tiny
    """))
    assert main(["submit", "bad.yaml", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.yaml" in err[0] and "steps" in err[0]
    assert not Path("leaderboard/results").exists() and not Path("leaderboard/site").exists()
