"""`shiftbench run` end to end on the tiny benchmark; the full default benchmark is a slow test."""

import json

import pytest
from conftest import make_project, submission

from shiftbench.cli.main import main

EVIL = "<script>alert(1)</script>"


def test_run_writes_results_and_a_page_listing_every_submission(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", {
        "source.yaml": submission("Source", "source"),
        "evil.yaml": submission(EVIL, "alpha_bn", "{alpha: 0.5}"),
        "tent.yaml": submission("TENT & friends", "tent"),
    })
    monkeypatch.chdir(root)
    assert main(["run", "--quiet", "--device", "auto"]) == 0
    out = capsys.readouterr().out
    assert "18 cells: 18 computed, 0 reused, 0 failed" in out
    assert f"leaderboard: {root / 'leaderboard' / 'site' / 'index.html'}" in out
    results = sorted((root / "leaderboard" / "results" / "tiny").glob("*.json"))
    assert len(results) == 3
    names = {json.loads(p.read_text())["name"] for p in results}
    assert names == {"Source", EVIL, "TENT & friends"}

    html = (root / "leaderboard" / "site" / "index.html").read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "TENT &amp; friends" in html and "Source" in html

    # A second run reuses every cell and prints the same ranking.
    assert main(["run", "--quiet"]) == 0
    again = capsys.readouterr().out
    assert "18 cells: 0 computed, 18 reused, 0 failed" in again
    assert again.splitlines()[1:] == out.splitlines()[1:]


@pytest.mark.slow
def test_default_benchmark_golden_run(tmp_path, monkeypatch, capsys):
    """The shipped submissions on the shipped digits benchmark: the figures the README quotes."""
    from conftest import REPO

    monkeypatch.chdir(REPO)
    assert main(["run", "--quiet", "--results", str(tmp_path / "r"), "--site", str(tmp_path / "site"),
                 "--store", str(tmp_path / "store")]) == 0
    from shiftbench.leaderboard import load_results, scenario_table

    table = scenario_table(load_results(tmp_path / "r"))
    acc = table.pivot_table(index="scenario", columns="entry", values="accuracy")
    assert acc.loc["clean", "Source (no adaptation)"] >= 0.95
    cov = table[table.family == "covariate"].groupby("entry").accuracy.mean()
    assert cov["BN-adapt"] > cov["Source (no adaptation)"]
    assert cov["alpha-BN (alpha = 0.1)"] > cov["Source (no adaptation)"]
