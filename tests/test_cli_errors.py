"""Bad input: one line on stderr naming the file and the field, exit status 2, nothing written."""

import pytest
from conftest import make_project, run_cli, submission

from shiftbench.cli.main import main


CASES = {
    "malformed-yaml": ("name: [unclosed\nmethod: source\n", ["malformed YAML"]),
    "not-a-mapping": ("- just\n- a list\n", ["YAML mapping"]),
    "unknown-method": (submission("X", "tentt"), ["method", "unknown method 'tentt'", "known:", "tent"]),
    "unknown-param": (submission("X", "alpha_bn", "{alfa: 0.2}"), ["params", "unknown parameter 'alfa'", "allowed: alpha"]),
    "ill-typed-param": (submission("X", "alpha_bn", "{alpha: lots}"), ["params", "parameter 'alpha'", "'lots'"]),
    "out-of-range-param": (submission("X", "alpha_bn", "{alpha: 1.5}"), ["params", "parameter 'alpha'", "less than or equal to 1"]),
    "unknown-benchmark": (submission("X", "source", benchmark="nope"), ["benchmark", "unknown benchmark 'nope'", "known: digits, digits-full, tiny"]),
    "unknown-field": (submission("X", "source", extra="colour: red\n"), ["colour", "unknown field", "allowed:"]),
    "missing-field": ("name: X\nbenchmark: tiny\n", ["method", "required field is missing"]),
    "bad-protocol": (submission("X", "source", extra="protocol: sometimes\n"), ["protocol", "episodic"]),
    "unimportable-method": (submission("X", "no_such_pkg.mod:Cls"), ["method", "cannot import module 'no_such_pkg'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_submission_gives_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    text, expected = CASES[case]
    root = make_project(tmp_path / "p", {"good.yaml": submission("Good", "source"), "bad.yaml": text})
    monkeypatch.chdir(root)
    code, out, err = run_cli(capsys, "run", "--quiet", "--device", "cpu")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "bad.yaml" in lines[0]
    for piece in expected:
        assert piece in lines[0], (piece, lines[0])
    assert not (root / "leaderboard" / "results").exists()
    assert not (root / "leaderboard" / "site").exists()


def test_missing_file(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {})
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "submit", "does-not-exist.yaml")
    assert code == 2 and "does-not-exist.yaml: file not found" in err
    code, _, err = run_cli(capsys, "run")
    assert code == 2 and "no submission files" in err
    assert not (root / "leaderboard" / "results").exists()


def test_duplicate_submission_names_are_refused(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"a.yaml": submission("Same", "source"), "b.yaml": submission("Same", "bn_adapt")})
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "run", "--quiet")
    assert code == 2 and "b.yaml: name: submission name 'Same' is already used by" in err


def test_bad_benchmark_shift_parameter_names_the_scenario(tmp_path, monkeypatch, capsys):
    from conftest import TINY_BENCHMARK

    bad = TINY_BENCHMARK.replace("severity: 5}]}\n  - {name: contrast", "severity: 7}]}\n  - {name: contrast")
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "source")}, benchmark=bad)
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/a.yaml")
    assert code == 2 and "scenario 'noise-s5'" in err and "severity" in err


def test_validate_accepts_a_good_file(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "tent", "{lr: 0.01}")})
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, "validate", "leaderboard/submissions/a.yaml")
    assert code == 0 and "ok (tent on tiny, 6 scenarios x 1 seeds)" in out


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("run", "submit", "validate", "leaderboard", "methods", "shifts", "data"):
        assert cmd in out
