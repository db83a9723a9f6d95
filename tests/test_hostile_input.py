"""Input written to do harm: names that are paths, YAML bombs, values that run away. Each is one line on
stderr, exit status 2, and nothing written anywhere (least of all outside the project or data root)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import TINY_BENCHMARK, make_project, one_error_line, run_cli, submission
from scaleout_support import cli_env

from shiftbench.core.errors import UserError
from shiftbench.core.paths import under


def files_under(folder) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")} if folder.exists() else set()


# ---- names are names -------------------------------------------------------------------------------

def test_a_benchmark_given_as_a_path_is_refused_and_nothing_is_written_outside(tmp_path, monkeypatch, capsys):
    """Case 2: `benchmark: ../../x/b.yaml` once wrote a result file outside the project."""
    outside = tmp_path / "x"
    outside.mkdir()
    (outside / "b.yaml").write_text(TINY_BENCHMARK)
    root = make_project(tmp_path / "a" / "p", {"evil.yaml": submission("Evil", "source", benchmark="../../x/b.yaml")})
    monkeypatch.chdir(root)
    before = files_under(tmp_path)
    for command in (["validate", "leaderboard/submissions/evil.yaml"], ["run", "--quiet", "--executor", "inline"]):
        code, _, err = run_cli(capsys, *command)
        line = one_error_line(err)
        assert code == 2 and "evil.yaml: benchmark: " in line and "not a path" in line
    assert files_under(tmp_path) == before


def test_a_benchmark_file_whose_name_differs_from_its_file_name_is_refused(tmp_path, monkeypatch, capsys):
    """The cells would be filed under the name inside the file, the record under the other file's hash."""
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "source", benchmark="other")})
    (root / "benchmarks" / "other.yaml").write_text(TINY_BENCHMARK)  # calls itself 'tiny'
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "run", "--quiet", "--executor", "inline")
    assert code == 2 and "benchmarks/other.yaml calls itself 'tiny'" in one_error_line(err)
    assert not (root / "leaderboard" / "results").exists()


@pytest.mark.parametrize("name", ["../escaped", "/ABSOLUTE", "sub/dir", "Digits", ".hidden", ""])
def test_a_manifest_name_that_is_not_a_name_fetches_nothing(name, tmp_path, monkeypatch, capsys):
    """Case 4: a manifest's name was used as a folder: `data fetch` wrote outside the data root, and an
    absolute name emptied an existing folder while extracting."""
    root = make_project(tmp_path / "p", {})
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    name = str(victim) if name == "/ABSOLUTE" else name
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    (root / "data_manifests" / "evil.yaml").write_text(
        f"name: {name!r}\nloader: mnist\nfiles:\n  - {{path: payload.bin, url: '{payload.as_uri()}'}}\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("SHIFTBENCH_DATA", str(tmp_path / "data"))
    before = files_under(tmp_path)
    code, _, err = run_cli(capsys, "data", "fetch", "evil", "--quiet")
    line = one_error_line(err)
    assert code == 2 and "evil.yaml: name: must equal the file's name 'evil'" in line
    assert files_under(tmp_path) == before and (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("arg", ["../digits", "/tmp/digits", "dig its", "DIGITS"])
def test_a_dataset_named_on_the_command_line_must_be_a_name(arg, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(make_project(tmp_path / "p", {}))
    code, _, err = run_cli(capsys, "data", "verify", arg)
    assert code == 2 and "a dataset must be a name" in one_error_line(err)


def test_every_written_path_stays_under_its_root(tmp_path):
    assert under(tmp_path, "tiny", "abc.json") == tmp_path / "tiny" / "abc.json"
    for parts in (("..", "x"), ("a", "..", "..", "x"), ("/etc",), ("a", "/etc/passwd")):
        with pytest.raises(UserError, match="would lie outside"):
            under(tmp_path, *parts)


# ---- bounded YAML and messages ---------------------------------------------------------------------

LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
BOMB = "l0: &l0 lol\n" + LAUGHS  # 9^9 = 387 million leaves in 1 KB


def bomb_project(tmp_path, where: str):
    """A project whose submission, benchmark or data manifest is a billion-laughs file."""
    if where == "submission":
        sub = BOMB + "name: X\nmethod: source\nbenchmark: tiny\nseeds: *l9\n"
        root = make_project(tmp_path / "p", {"bomb.yaml": sub})
    elif where == "benchmark":
        root = make_project(tmp_path / "p", {"bomb.yaml": submission("X", "source")},
                            benchmark=BOMB + TINY_BENCHMARK.replace("description: A", "description: *l9\nx: A"))
    else:
        root = make_project(tmp_path / "p", {"bomb.yaml": submission("X", "source")})
        (root / "data_manifests" / "digits.yaml").write_text(BOMB + "name: digits\nloader: *l9\n")
    return root


@pytest.mark.parametrize("where", ["submission", "benchmark", "manifest"])
def test_a_billion_laughs_file_is_one_line_under_a_memory_limit(where, tmp_path):
    """Case 3: an 800-byte file grew `shiftbench validate` to 24 GB. Here the CLI runs with its data
    segment capped at 2 GiB (a torch process needs under 1): expanding the aliases would break the cap."""
    root = bomb_project(tmp_path, where)
    cap = 2 << 30
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_DATA, (%d, %d)); "
            "from shiftbench.cli.main import main; sys.exit(main(['validate', 'leaderboard/submissions/bomb.yaml']))"
            % (cap, cap))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, env=cli_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = one_error_line(proc.stderr)
    assert "YAML aliases (*l" in line and "are not allowed" in line and len(line) < 400


def test_echoed_values_are_cut_short(tmp_path, monkeypatch, capsys):
    big = "x" * 200_000
    cases = {
        "name.yaml": f"name: [{', '.join(['1'] * 50_000)}]\nmethod: source\nbenchmark: tiny\n",
        "method.yaml": submission("X", big),
        "param.yaml": submission("X", "alpha_bn", f"{{alpha: '{big}'}}"),
        "key.yaml": submission("X", "alpha_bn", f"{{{big}: 1}}"),
    }
    root = make_project(tmp_path / "p", cases)
    monkeypatch.chdir(root)
    for name in cases:
        code, _, err = run_cli(capsys, "validate", f"leaderboard/submissions/{name}")
        line = one_error_line(err)
        assert code == 2 and len(line) < 1000, (name, len(line))


def test_a_key_given_twice_is_refused(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"twice.yaml": submission("X", "source") + "params: {}\n"})
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/twice.yaml")
    assert code == 2 and "line 6: key 'params' is given twice" in one_error_line(err)


# ---- bounds on what can run away ---------------------------------------------------------------------

BOUNDS = {
    "mlls-iterations": (submission("X", "mlls", "{max_iter: 1000000000.0}"), "params.max_iter", "less than or equal to 10000"),
    "tent-steps": (submission("X", "tent", "{steps: 1000000}"), "params.steps", "less than or equal to 100"),
    "lsa-steps": (submission("X", "lsa", "{adapter_steps: 100000000}"), "params.adapter_steps", "100000"),
    "epochs": (submission("X", "source", extra="training: {name: erm, epochs: 1000000}\n"), "training.epochs",
               "less than or equal to 1000"),
    "batch": (submission("X", "source", extra="training: {name: erm, batch_size: 0}\n"), "training.batch_size",
              "greater than or equal to 1"),
    "nan": (submission("X", "alpha_bn", "{alpha: .nan}"), "params.alpha", "finite number"),
    "huge-int": (submission("X", "crop_select", "{margin: 100000000000000000000000}"), "params.margin", "64"),
    "seed-2^32": (submission("X", "source").replace("seeds: [0]", "seeds: [4294967296]"), "seeds.0", "less than 4294967296"),
    "seed-2^63": (submission("X", "source").replace("seeds: [0]", "seeds: [9223372036854775808]"), "seeds.0", "less than"),
    "seed-negative": (submission("X", "source").replace("seeds: [0]", "seeds: [-1]"), "seeds.0", "greater than or equal to 0"),
    "seed-float": (submission("X", "source").replace("seeds: [0]", "seeds: [1.5]"), "seeds.0", "valid integer"),
    "seed-bool": (submission("X", "source").replace("seeds: [0]", "seeds: [true]"), "seeds.0", "valid integer"),
    "seeds-repeated": (submission("X", "source").replace("seeds: [0]", "seeds: [0, 1, 0]"), "seeds", "distinct; repeated: 0"),
    "seeds-100k": (submission("X", "source").replace("seeds: [0]", f"seeds: [{', '.join(map(str, range(100_000)))}]"),
                   "seeds", "at most 100 items"),
    "blank-name": (submission("   ", "source"), "name", "must not be blank"),
    "trailing-space": (submission("Source ", "source"), "name", "must not start or end with spaces"),
    "invisible": (submission("X", "source").replace("name: 'X'", 'name: "So\\u200burce"'), "name", "invisible"),
    "method-colon": (submission("X", "':'"), "method", "':' is not an import path"),
}


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_values_that_could_run_away_are_bounded(case, tmp_path, monkeypatch, capsys):
    text, field, message = BOUNDS[case]
    root = make_project(tmp_path / "p", {"bad.yaml": text})
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/bad.yaml")
    line = one_error_line(err)
    assert code == 2 and f"bad.yaml: {field}: " in line and message in line, line


def test_the_estimate_of_work_comes_before_any_model_is_trained(tmp_path, monkeypatch):
    from scaleout_support import fault_project

    from shiftbench.run.runner import run_submissions
    from shiftbench.run.store import Store
    from shiftbench.run.submission import check_all

    root = fault_project(tmp_path / "p", {"a.yaml": submission("A", "source"),
                                          "b.yaml": submission("B", "bn_adapt").replace("seeds: [0]", "seeds: [0, 1]")})
    monkeypatch.chdir(root)
    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path / "cache"))
    events = []

    def log(line):  # what was said, and how many models were trained by then
        events.append((line, len(list((tmp_path / "cache" / "models").glob("*.pt")))))

    checked = check_all(sorted((root / "leaderboard" / "submissions").glob("*.yaml")))
    first = run_submissions(checked[:1], device="cpu", store=Store(tmp_path / "s"), results_root=tmp_path / "r",
                            progress=False, log=log)
    assert events == [("work: 4 cells in 1 submissions, 1 source models (1 to train)", 0),
                      ("cells: 4 to compute, 0 reused", 1)] and first.computed == 4
    events.clear()
    run_submissions(checked, device="cpu", store=Store(tmp_path / "s"), results_root=tmp_path / "r",
                    progress=False, log=log)
    assert events == [("work: 12 cells in 2 submissions, 2 source models (1 to train)", 1),
                      ("cells: 8 to compute, 4 reused", 2)]
