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

from shiftbench.core.errors import UserError
from shiftbench.leaderboard import build_site, load_annotated, summary_table
from shiftbench.leaderboard.export import read_csv
from shiftbench.shifts import FAMILIES

# the families the synthetic benchmark has scenarios of (digits have no domains, so no natural family)
SYNTH_FAMILIES = tuple(f for f in FAMILIES if any(fam == f for fam, _ in SCENARIOS.values()))


@pytest.fixture
def synth(tmp_path, monkeypatch):
    """A project with the synthetic benchmark; returns (results folder, current benchmark hash)."""
    from shiftbench.run.benchmark import load_benchmark

    site_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "leaderboard" / "results", load_benchmark("synth").content_hash()


def rows_by_name(results):
    return {r.entry: r for r in summary_table(load_annotated(results)).itertuples()}


def test_each_family_keeps_one_headline_average_and_there_is_no_score_across_families(synth):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current, quality=0.8, failed=("relabel",), seeds=(0, 1, 2))
    write_result(results, "B", "bn_adapt", benchmark_hash=current, quality=0.7)
    row = rows_by_name(results)["A"]
    per_seed = {f: [] for f in SYNTH_FAMILIES}
    for seed in (0, 1, 2):
        acc = accuracies(0.8, seed)
        for f in SYNTH_FAMILIES:
            scen = [s for s, (fam, _) in SCENARIOS.items() if fam == f]
            if f == "covariate":  # mean error
                per_seed[f].append(sum(1 - acc[s] for s in scen) / len(scen))
            elif f == "concept":  # worst-group accuracy; the failed cell counts as 0
                per_seed[f].append(sum(0.0 if s == "relabel" else acc[s] / 2 for s in scen) / len(scen))
            elif f == "translation":  # consistency
                per_seed[f].append(sum(min(1.0, acc[s] + 0.05) for s in scen) / len(scen))
            else:
                per_seed[f].append(sum(acc[s] for s in scen) / len(scen))
    for f in SYNTH_FAMILIES:
        assert getattr(row, f) == pytest.approx(sum(per_seed[f]) / 3)
        assert getattr(row, f"{f}_std") == pytest.approx(pd.Series(per_seed[f]).std(ddof=1))
    assert row.failed == 3 and row.cells == 3 * len(SCENARIOS) and row.seeds == 3
    columns = summary_table(load_annotated(results)).columns
    assert "score" not in columns and "rank" not in columns
    b = rows_by_name(results)["B"]
    assert b.seeds == 1 and pd.isna(b.covariate_std)


def test_a_hand_edited_result_is_flagged_unranked_and_shown(synth):
    results, current = synth
    honest = write_result(results, "Honest", "source", benchmark_hash=current, quality=0.7)
    edited = write_result(results, "Edited", "source", benchmark_hash=current, quality=0.6)
    body = json.loads(edited.read_text())
    body["records"][0]["metrics"]["accuracy"] = 0.999  # a better number, typed in by hand
    edited.write_text(json.dumps(body))
    rows = rows_by_name(results)
    assert rows["Edited"].status == "edited" and rows["Honest"].status == "ok"

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
    assert rows["Old"].status == "stale" and rows["New"].status == "ok"

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
    assert len(twins) == 2 and all("duplicate" in s for s in twins.status)
    assert table[table.entry == "Single"].status.tolist() == ["ok"]
    page = build_site(results, results.parent / "site").read_text()
    assert page.count('class="badge badge-duplicate"') >= 2


def test_oracle_entries_are_shown_but_not_ranked(synth):
    results, current = synth
    write_result(results, "Oracle", "source", benchmark_hash=current, quality=0.99, submission={"oracle": True})
    write_result(results, "Real", "source", benchmark_hash=current, quality=0.5)
    rows = rows_by_name(results)
    assert rows["Oracle"].status == "oracle" and rows["Real"].status == "ok"


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


def test_scenarios_csv_has_one_row_per_entry_and_scenario_with_the_spread(synth):
    results, current = synth
    write_result(results, "Plain", "bn_adapt", benchmark_hash=current, quality=0.6, seeds=(0, 1))
    write_result(results, "Stale", "bn_adapt", benchmark_hash="1" * 16, quality=0.6)
    index = build_site(results, results.parent / "site")
    scenarios = read_csv((index.parent / "scenarios.csv").read_bytes().decode())
    assert len(scenarios) == 2 * len(SCENARIOS)
    plain = scenarios[(scenarios.entry == "Plain") & (scenarios.scenario == "contrast-s5")].iloc[0]
    both = [accuracies(0.6, seed)["contrast-s5"] for seed in (0, 1)]
    assert plain.accuracy == pytest.approx(sum(both) / 2) and plain.accuracy_std == pytest.approx(pd.Series(both).std())
    assert plain.seeds == 2


def test_covariate_corruption_and_severity_from_the_chains_or_the_name():
    import yaml

    from shiftbench.leaderboard.scenario_kind import corruption_of
    from shiftbench.run.benchmark import Benchmark

    bench = Benchmark(**yaml.safe_load(SITE_BENCHMARK))
    specs = {s.name: s for s in bench.scenarios}
    assert corruption_of("contrast-s3", specs["contrast-s3"].segment_chains()) == ("contrast", 3)
    assert corruption_of("noise-sequence", specs["noise-sequence"].segment_chains()) is None  # no single severity
    from_file = [[{"shift": "corruption_file", "dataset": "cifar10c", "corruption": "fog", "severity": 5}]]
    assert corruption_of("cifar10c-file-fog-s5", from_file) == ("fog", 5)  # the file's corruption names the column
    assert corruption_of("fog-s4") == ("fog", 4)
    assert corruption_of("clean") is None and corruption_of("translate-d1") is None


def test_site_build_is_deterministic_self_contained_and_replaces_the_old_one(synth):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current, quality=0.8, extra={"dirichlet-a1": {"prior_l1": 0.2}})
    write_result(results, "A episodic", "source", benchmark_hash=current, protocol="episodic",
                 extra={"dirichlet-a1": {"prior_l1": 0.5}})
    gone = write_result(results, "B", "bn_adapt", benchmark_hash=current, quality=0.7)
    site = results.parent / "site"
    build_site(results, site)
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    plots = {p.name for p in first if p.parent == Path("synth/plots")}
    assert "all-heatmap.svg" in plots and any(n.startswith("covariate-") and n.endswith("-severity.svg") for n in plots)
    assert any(n.startswith("label-") and n.endswith("-prior-window.svg") for n in plots)
    assert any(n.startswith("translation-") and n.endswith("-points.svg") for n in plots)
    for rel, data in first.items():
        if rel.suffix in (".html", ".css", ".js", ".svg"):
            assert not re.search(rb"(src|href)=\"(https?:)?//", data), rel  # nothing fetched from the network
    nav = (site / "synth" / "covariate.html").read_text()
    assert all(f'href="../synth/{f}.html"' in nav for f in SYNTH_FAMILIES)  # every page links every family view
    assert 'href="../synth/natural.html"' not in nav  # and no page for a family the benchmark lacks
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


def test_a_site_built_from_the_same_inputs_is_kept_and_any_changed_input_rebuilds_it(synth):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current, quality=0.8)
    site = results.parent / "site"
    build_site(results, site)
    sentinel = site / "sentinel"  # a rebuild replaces the folder, so this marks "not rebuilt"
    sentinel.write_text("x")
    build_site(results, site)
    assert sentinel.exists()
    write_result(results, "B", "bn_adapt", benchmark_hash=current, quality=0.7)  # a new result
    build_site(results, site)
    assert not sentinel.exists() and list(site.glob("synth/entries/B-*"))
    sentinel.write_text("x")
    published = results.parent / "published"
    published.mkdir(exist_ok=True)
    (published / "note.txt").write_text("a file among the reference numbers")
    build_site(results, site)
    assert not sentinel.exists()
    sentinel.write_text("x")
    build_site(results, site, benchmark_hashes={"synth": "0" * 16})  # the benchmark changed since
    assert not sentinel.exists()
