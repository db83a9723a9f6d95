"""The leaderboard from synthetic result files: scoring, trust checks, escaping, exports, the site's files, serving."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from synthetic_results import SCENARIOS, SITE_BENCHMARK, accuracies, site_project, write_result

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.leaderboard import build_site, load_annotated, summary_table
from shiftbench.leaderboard.export import TABLE_COLUMNS, read_csv, to_csv
from shiftbench.shifts import FAMILIES


@pytest.fixture
def synth(tmp_path, monkeypatch):
    """A project with the synthetic benchmark; returns (results folder, current benchmark hash)."""
    from shiftbench.run.benchmark import load_benchmark

    site_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "leaderboard" / "results", load_benchmark("synth").content_hash()


def rows_by_name(results):
    return {r.entry: r for r in summary_table(load_annotated(results)).itertuples()}


def test_score_is_the_mean_of_family_means_and_a_failed_cell_counts_zero(synth):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current, quality=0.8, failed=("relabel",))
    write_result(results, "B", "bn_adapt", benchmark_hash=current, quality=0.7)
    acc = accuracies(0.8)
    family = {f: [0.0 if s == "relabel" else acc[s] for s, (fam, _) in SCENARIOS.items() if fam == f] for f in FAMILIES}
    expected = {f: sum(v) / len(v) for f, v in family.items()}
    row = rows_by_name(results)["A"]
    for f in FAMILIES:
        assert getattr(row, f) == pytest.approx(expected[f])
    assert row.score == pytest.approx(sum(expected.values()) / 4)
    assert row.clean == pytest.approx(acc["clean"])  # shown, not scored
    assert row.failed == 1 and row.cells == len(SCENARIOS)
    ranks = {r.entry: r.rank for r in rows_by_name(results).values()}
    by_score = sorted(rows_by_name(results).values(), key=lambda r: -r.score)
    assert [ranks[r.entry] for r in by_score] == [1, 2]


def test_a_hand_edited_result_is_flagged_unranked_and_shown(synth):
    results, current = synth
    honest = write_result(results, "Honest", "source", benchmark_hash=current, quality=0.7)
    edited = write_result(results, "Edited", "source", benchmark_hash=current, quality=0.6)
    body = json.loads(edited.read_text())
    body["records"][0]["metrics"]["accuracy"] = 0.999  # a better number, typed in by hand
    edited.write_text(json.dumps(body))
    rows = rows_by_name(results)
    assert rows["Edited"].status == "edited" and pd.isna(rows["Edited"].rank)
    assert rows["Honest"].status == "ok" and rows["Honest"].rank == 1

    renamed = json.loads(honest.read_text())
    renamed["name"] = "Renamed"  # records untouched, so records_sha256 still matches
    honest.write_text(json.dumps(renamed))
    assert rows_by_name(results)["Renamed"].status == "edited"

    (results / "synth" / "garbage.json").write_text("{not json")
    index = build_site(results, results.parent / "site")
    page = index.read_text()
    assert 'role="alert"' in page and "integrity check failed" in page and "header disagrees" in page
    assert "unreadable" in page and rows_by_name(results)["garbage"].status == "edited"
    entry = next(index.parent.glob("synth/entries/Edited-*.html")).read_text()
    assert "records edited after the run" in entry


def test_a_result_from_an_earlier_benchmark_definition_is_stale(synth):
    results, current = synth
    write_result(results, "Old", "source", benchmark_hash="0" * 16, quality=0.9)
    write_result(results, "New", "source", benchmark_hash=current, quality=0.5)
    rows = rows_by_name(results)
    assert rows["Old"].status == "stale" and pd.isna(rows["Old"].rank) and rows["New"].rank == 1

    bench = Path("benchmarks/synth.yaml")
    bench.write_text(bench.read_text().replace("made up", "made up, and now edited"))
    assert {r.status for r in rows_by_name(results).values()} == {"stale"}
    bench.unlink()
    flags = {f["message"] for r in load_annotated(results) for f in r["flags"]}
    assert any("no current definition" in m for m in flags)


def test_two_result_files_claiming_one_name_are_both_flagged(synth):
    results, current = synth
    original = write_result(results, "Twin", "source", benchmark_hash=current, quality=0.7)
    shutil.copy(original, original.with_name("someone-else.json"))
    write_result(results, "Single", "source", benchmark_hash=current, quality=0.5)
    table = summary_table(load_annotated(results))
    twins = table[table.entry == "Twin"]
    assert len(twins) == 2 and twins["rank"].isna().all()
    assert all("duplicate" in s for s in twins.status)
    assert table[table.entry == "Single"]["rank"].tolist() == [1]
    page = build_site(results, results.parent / "site").read_text()
    assert page.count('class="badge badge-duplicate"') >= 2


def test_oracle_entries_are_shown_but_not_ranked(synth):
    results, current = synth
    write_result(results, "Oracle", "source", benchmark_hash=current, quality=0.99, submission={"oracle": True})
    write_result(results, "Real", "source", benchmark_hash=current, quality=0.5)
    rows = rows_by_name(results)
    assert pd.isna(rows["Oracle"].rank) and rows["Oracle"].status == "oracle" and rows["Real"].rank == 1


def test_everything_a_submitter_writes_renders_as_text(synth):
    results, current = synth
    evil = "<script>alert(1)</script>"
    write_result(results, evil, "source", benchmark_hash=current,
                 submission={"notes": '<b onmouseover="alert(2)">x</b>', "url": "javascript:alert(3)",
                             "authors": ["</dd><script>alert(4)</script>"]})
    index = build_site(results, results.parent / "site")
    for page in index.parent.rglob("*.html"):
        html = page.read_text()
        assert "<script>alert" not in html and "<b onmouseover" not in html, page
        assert 'href="javascript' not in html, page
        assert len(re.findall(r"<script\b", html)) == 1, page  # only the site's own leaderboard.js
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index.read_text()
    entry = next(index.parent.glob("synth/entries/*.html")).read_text()
    assert "&lt;b onmouseover=&#34;alert(2)&#34;&gt;x&lt;/b&gt;" in entry
    assert "javascript:alert(3)" in entry  # shown, as text


def test_results_csv_round_trips(synth):
    results, current = synth
    write_result(results, 'Quoted "name", with comma', "source", benchmark_hash=current, quality=0.8, failed=("clean",))
    write_result(results, "Plain", "bn_adapt", benchmark_hash=current, quality=0.6)
    write_result(results, "Stale", "bn_adapt", benchmark_hash="1" * 16, quality=0.6)
    index = build_site(results, results.parent / "site")
    summary = summary_table(load_annotated(results))
    back = read_csv((index.parent / "results.csv").read_text())
    pd.testing.assert_frame_equal(back, summary, check_dtype=False)
    assert to_csv(back) == to_csv(summary)
    scenarios = pd.read_csv(index.parent / "scenarios.csv")
    assert len(scenarios) == 3 * len(SCENARIOS)


def split_md_row(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_markdown_and_latex_tables(synth, capsys):
    results, current = synth
    write_result(results, "a|b & 50% <x>_y", "source", benchmark_hash=current, quality=0.8)
    write_result(results, "Second", "bn_adapt", benchmark_hash=current, quality=0.6)
    summary = summary_table(load_annotated(results))

    assert main(["leaderboard", "--format", "md"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")]
    assert split_md_row(lines[0]) == TABLE_COLUMNS and len(lines) == 2 + 2
    first = split_md_row(lines[2])
    assert len(first) == len(TABLE_COLUMNS)
    assert first[1] == r"a\|b &amp; 50% &lt;x&gt;\_y"
    assert first[TABLE_COLUMNS.index("score")] == f"{100 * summary.score[0]:.1f}"

    assert main(["leaderboard", "--format", "tex"]) == 0
    tex = capsys.readouterr().out
    rows = [ln for ln in tex.splitlines() if ln.endswith(r"\\")]
    assert len(rows) == 1 + 2
    assert all(len(re.findall(r"(?<!\\)&", r)) == len(TABLE_COLUMNS) - 1 for r in rows)
    assert r"a|b \& 50\% \textless{}x\textgreater{}\_y" in tex
    assert tex.count(r"\begin{tabular}") == 1 == tex.count(r"\end{tabular}")


def test_covariate_severity_from_the_spec_or_the_name():
    import yaml

    from shiftbench.leaderboard.plots import severity_of
    from shiftbench.run.benchmark import Benchmark

    bench = Benchmark(**yaml.safe_load(SITE_BENCHMARK))
    specs = {s.name: s for s in bench.scenarios}
    assert severity_of("contrast-s3", specs["contrast-s3"]) == ("contrast", 3)
    assert severity_of("noise-sequence", specs["noise-sequence"]) is None  # several segments: no single severity
    assert severity_of("fog-s4") == ("fog", 4)
    assert severity_of("clean") is None and severity_of("translate-d1") is None


def test_site_build_is_deterministic_self_contained_and_replaces_the_old_one(synth):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current, quality=0.8, extra={"dirichlet-a1": {"prior_l1": 0.2}})
    gone = write_result(results, "B", "bn_adapt", benchmark_hash=current, quality=0.7)
    site = results.parent / "site"
    build_site(results, site)
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert {Path("synth/plots/covariate-severity.svg"), Path("synth/plots/label-prior_l1.svg"),
            Path("synth/plots/translation-consistency.svg"), Path("synth/plots/all-heatmap.svg")} <= set(first)
    for rel, data in first.items():
        if rel.suffix in (".html", ".css", ".js", ".svg"):
            assert not re.search(rb"(src|href)=\"(https?:)?//", data), rel  # nothing fetched from the network
    nav = (site / "synth" / "covariate.html").read_text()
    assert all(f'href="../synth/{f}.html"' in nav for f in FAMILIES)  # every page links every family view
    build_site(results, site)
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == first

    gone.unlink()
    build_site(results, site)
    assert not list(site.glob("synth/entries/B-*")) and list(site.glob("synth/entries/A-*"))

    legacy = results.parent / "legacy"  # the single page an earlier shiftbench wrote, without a marker
    legacy.mkdir()
    (legacy / "index.html").write_text("old")
    build_site(results, legacy)
    assert (legacy / "static" / "leaderboard.js").exists()

    foreign = results.parent / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="did not build"):
        build_site(results, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_serve_answers_on_loopback_only(synth):
    from shiftbench.leaderboard.serve import make_server

    results, current = synth
    write_result(results, "Served", "source", benchmark_hash=current)
    index = build_site(results, results.parent / "site")
    server = make_server(index.parent, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
            assert r.status == 200 and b"Served" in r.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/leaderboard.js", timeout=10) as r:
            assert b"sortBy" in r.read()
    finally:
        server.shutdown()
        server.server_close()
