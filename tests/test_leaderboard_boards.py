"""Boards from synthetic result files: seeds as mean ± std, ranks with ties, published rows and their deltas,
plot readability rules, exports (spreadsheet-safe CSV, the LaTeX paper layout), one rounding for terminal and page."""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from synthetic_results import accuracies, site_project, write_result

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.leaderboard import build_site, load_boards
from shiftbench.leaderboard.export import FORMULA_START, read_csv, table_latex, to_csv
from shiftbench.leaderboard.format import pct
from shiftbench.leaderboard.stats import Stat, rank_with_ties, within_spread

CORRUPTIONS = ["gaussian_noise", "contrast"]


@pytest.fixture
def synth(tmp_path, monkeypatch):
    from shiftbench.run.benchmark import load_benchmark

    site_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "leaderboard" / "results", load_benchmark("synth").content_hash()


def boards_of(results, published=None):
    return load_boards(results, published)[1]


def board(boards, family="covariate", protocol="per_scenario"):
    return next(b for b in boards if b.family == family and b.protocol == protocol and not b.published_only)


def table(b, slug):
    return next(t for t in b.tables if t.slug == slug)


def row(t, label):
    return next(r for r in t.rows if r.label == label)


# --- stats ---------------------------------------------------------------------------------------

def test_stat_is_the_sample_mean_and_standard_deviation():
    xs = [0.31, 0.35, 0.29]
    s = Stat.of(xs)
    assert s.mean == pytest.approx(statistics.fmean(xs)) and s.std == pytest.approx(statistics.stdev(xs)) and s.n == 3
    one = Stat.of([0.4, float("nan")])
    assert one.n == 1 and math.isnan(one.std) and one.spread == 0.0
    assert Stat.of([]).missing


def test_ranks_share_a_place_exactly_when_the_difference_is_within_the_spread():
    a, b = Stat(0.20, 0.01, 3), Stat(0.215, 0.01, 3)  # 0.015 <= 0.02: tied
    c, d = Stat(0.30, 0.01, 3), Stat(0.33, 0.01, 3)  # 0.03 > 0.02: not tied
    assert within_spread(a, b) and not within_spread(c, d)
    places = rank_with_ties([d, b, c, a], lower_is_better=True)
    assert [(p.rank, p.tied) for p in places] == [(4, False), (1, True), (3, False), (1, False)]
    high = rank_with_ties([d, b, c, a], lower_is_better=False)
    assert [p.rank for p in high] == [1, 3, 2, 3]
    # one seed has no spread: tied only with an equal mean
    assert rank_with_ties([Stat(0.5, math.nan, 1), Stat(0.5, math.nan, 1), Stat(0.49, math.nan, 1)],
                          lower_is_better=True)[0].rank == 2
    assert rank_with_ties([Stat(math.nan, math.nan, 0)], lower_is_better=True) == [None]


# --- boards ---------------------------------------------------------------------------------------

def test_covariate_board_is_the_paper_layout_with_mean_and_std_over_seeds(synth):
    results, current = synth
    write_result(results, "Three seeds", "bn_adapt", benchmark_hash=current, quality=0.8, seeds=(0, 1, 2))
    write_result(results, "One seed", "source", benchmark_hash=current, quality=0.6)
    b = board(boards_of(results))
    assert [t.slug for t in b.tables] == ["severity-5", "severity-3", "severity-1", "sequence-noise-sequence"]
    s5 = table(b, "severity-5")
    assert [c.key for c in s5.columns] == CORRUPTIONS and s5.metric == "error" and s5.lower_is_better
    three = row(s5, "Three seeds")
    per_seed = [accuracies(0.8, seed) for seed in (0, 1, 2)]
    for c in CORRUPTIONS:
        errors = [1 - a[f"{c}-s5"] for a in per_seed]
        assert three.cells[c].mean == pytest.approx(statistics.fmean(errors))
        assert three.cells[c].std == pytest.approx(statistics.stdev(errors)) and three.cells[c].n == 3
    seed_means = [statistics.fmean(1 - a[f"{c}-s5"] for c in CORRUPTIONS) for a in per_seed]
    assert three.mean.mean == pytest.approx(statistics.fmean(seed_means))
    assert three.mean.std == pytest.approx(statistics.stdev(seed_means)) and three.seeds == 3
    one = row(s5, "One seed")
    assert one.mean.n == 1 and math.isnan(one.mean.std)
    assert [r.label for r in s5.entries] == ["Three seeds", "One seed"]  # lower error first
    assert (three.place.rank, one.place.rank) == (1, 2)


def test_a_failed_cell_counts_as_full_error_and_is_shown(synth):
    results, current = synth
    write_result(results, "Breaks", "tent", benchmark_hash=current, quality=0.9, failed=("contrast-s5",))
    s5 = table(board(boards_of(results)), "severity-5")
    r = row(s5, "Breaks")
    assert r.cells["contrast"].mean == 1.0 and r.failed["contrast"] == 1 and r.failed["gaussian_noise"] == 0
    assert r.mean.mean == pytest.approx((1.0 + 1 - accuracies(0.9)["gaussian_noise-s5"]) / 2)


def test_flagged_and_oracle_entries_are_shown_but_never_ranked(synth):
    results, current = synth
    write_result(results, "Oracle", "oracle_prior", benchmark_hash=current, quality=0.99, submission={"oracle": True})
    write_result(results, "Old", "source", benchmark_hash="0" * 16, quality=0.95)
    write_result(results, "Real", "source", benchmark_hash=current, quality=0.5)
    for b in boards_of(results):
        for t in b.tables:
            assert row(t, "Oracle").place is None and row(t, "Old").place is None
            assert row(t, "Real").place.rank == 1


def test_boards_are_split_by_model_and_protocol(synth):
    results, current = synth
    write_result(results, "Small", "source", benchmark_hash=current, quality=0.7)
    write_result(results, "Wide", "source", benchmark_hash=current, quality=0.8, model={"arch": "small_cnn", "width": 32})
    write_result(results, "Resnet", "source", benchmark_hash=current, quality=0.8,
                 model={"arch": "cifar_resnet", "depth": 20, "weights": "resnet20-akamaster"}, checkpoint="1" * 64)
    write_result(results, "Continual", "tent", benchmark_hash=current, quality=0.8, protocol="continual")
    covariate = [b for b in boards_of(results) if b.family == "covariate"]
    labels = {(b.model_label, b.protocol): {r.label for t in b.tables for r in t.entries} for b in covariate}
    assert labels == {("small_cnn (width 8) · trained here", "per_scenario"): {"Small"},
                      ("small_cnn (width 8) · trained here", "continual"): {"Continual"},
                      ("small_cnn (width 32) · trained here", "per_scenario"): {"Wide"},
                      ("resnet20-akamaster · 11111111", "per_scenario"): {"Resnet"}}


# --- published ------------------------------------------------------------------------------------

PUBLISHED = """\
citation: A. Author. A paper. 2021.
source: Table 2
benchmark: synth
model: {{name: {name}{sha}}}
setting: {{protocol: per_scenario, severity: 5}}
rows:
  - {{method: bn_adapt, label: BN (paper), values: {{gaussian_noise: 20.0, contrast: 25.0, mean: 22.5}}}}
  - {{method: tent, label: TENT (paper), values: {{gaussian_noise: 18.0, contrast: 21.0}}}}
"""


def published_folder(root: Path, name: str = "small_cnn", sha: str | None = "c" * 64) -> Path:
    folder = root / "published"
    folder.mkdir(exist_ok=True)
    (folder / "paper.yaml").write_text(PUBLISHED.format(name=name, sha=f", checkpoint_sha256: {sha}" if sha else ""))
    return folder


def test_published_rows_join_the_board_of_their_model_with_ours_minus_published(synth):
    results, current = synth
    write_result(results, "BN-adapt", "bn_adapt", benchmark_hash=current, quality=0.8, seeds=(0, 1))
    b = board(boards_of(results, published_folder(results.parent)))
    s5 = table(b, "severity-5")
    bn = row(s5, "BN (paper)")
    assert bn.kind == "published" and bn.place is None and bn.against == "BN-adapt"
    ours = row(s5, "BN-adapt")
    assert bn.deltas["gaussian_noise"] == pytest.approx(ours.cells["gaussian_noise"].mean - 0.20)
    assert bn.deltas["contrast"] == pytest.approx(ours.cells["contrast"].mean - 0.25)
    assert bn.delta_mean == pytest.approx(ours.mean.mean - 0.225)
    tent = row(s5, "TENT (paper)")
    assert tent.mean.mean == pytest.approx((0.18 + 0.21) / 2)  # no printed mean: the mean of its columns
    assert tent.against is None and tent.deltas == {}  # we never ran tent on this model
    assert s5.rows[-2:] == [bn, tent]  # below our entries


def test_published_numbers_for_a_model_we_never_ran_get_their_own_board(synth):
    results, current = synth
    write_result(results, "BN-adapt", "bn_adapt", benchmark_hash=current, quality=0.8)
    boards = boards_of(results, published_folder(results.parent, name="WRN-28-10", sha=None))
    ours = board(boards)
    assert all(t.published_rows == [] for t in ours.tables)
    alone = next(b for b in boards if b.published_only)
    assert alone.model_label == "WRN-28-10 (published only)" and alone.tables[0].entries == []
    assert {r.label for r in alone.tables[0].published_rows} == {"BN (paper)", "TENT (paper)"}


def test_a_bad_published_file_is_one_line_naming_the_file_and_field(synth, capsys):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current)
    folder = published_folder(results.parent)  # the project's leaderboard/published
    (folder / "paper.yaml").write_text(PUBLISHED.format(name="x", sha="").replace("severity: 5", "severity: 9"))
    with pytest.raises(UserError, match=r"paper\.yaml.*setting\.severity"):
        boards_of(results, folder)
    site = results.parent / "site"
    assert main(["leaderboard", "--results", str(results), "--site", str(site)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "paper.yaml" in err[0] and "setting.severity" in err[0]
    assert not site.exists()  # nothing half-written


def test_the_shipped_published_files_are_valid_and_cited():
    from shiftbench.leaderboard.published import load_published

    repo = Path(__file__).resolve().parents[1]
    items = load_published(repo / "leaderboard" / "published")
    assert items, "leaderboard/published/ holds no reference numbers"
    for item in items:
        assert item.citation and item.url and item.source
        for r in item.rows:
            values = {k: v for k, v in r.values.items() if k != "mean"}
            if "mean" in r.values and len(values) == 15:  # a printed mean must be the mean of the printed columns
                assert r.values["mean"] == pytest.approx(statistics.fmean(values.values()), abs=0.051)


# --- plots -----------------------------------------------------------------------------------------

def test_plots_list_only_lines_with_points_keep_a_sensible_axis_and_never_overlap_tick_labels():
    from shiftbench.leaderboard import plots

    flat = pd.DataFrame({"severity": [0, 1, 3, 5], "error": [10.0, 10.1, 10.2, 10.35], "error_std": [0.1] * 4})
    empty = pd.DataFrame({"severity": [1, 3], "error": [math.nan, math.nan], "error_std": [math.nan] * 2})
    fig = plots.error_vs_severity_figure({"flat": flat, "no points": empty})
    ax = fig.axes[0]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["flat"]
    lo, hi = ax.get_ylim()
    assert hi - lo >= 10  # 0.35 points of data never fill the axis
    assert lo <= 10.0 and hi >= 10.35

    long_names = [f"a-rather-long-scenario-name-{i}" for i in range(14)]
    matrix = pd.DataFrame({"A": range(14), "B": [float("nan")] * 14}, index=long_names, dtype=float)
    fig = plots.point_figure(matrix, ylabel="accuracy %", percent=True)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["A"]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(boxes) >= 2
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_the_site_draws_severity_online_and_prior_window_plots(synth):
    results, current = synth
    seq = {"noise-sequence": {"segments": [{"n": 300, "accuracy": 0.6}, {"n": 300, "accuracy": 0.5}],
                              "online": {"window": 100, "error": [0.5, 0.4, 0.35, 0.6, 0.5, 0.45]}},
           "dirichlet-a1": {"prior_l1": 0.1}}
    write_result(results, "A", "mlls", benchmark_hash=current, seeds=(0, 1), extra=seq)
    write_result(results, "A episodic", "mlls", benchmark_hash=current, protocol="episodic",
                 extra={"dirichlet-a1": {"prior_l1": 0.4}})
    site = build_site(results, results.parent / "site").parent
    names = {p.name for p in (site / "synth" / "plots").glob("*.svg")}
    assert any(n.endswith("-severity.svg") for n in names)
    assert any("-online-noise-sequence" in n for n in names)
    assert any(n.endswith("-prior-window.svg") for n in names)
    html = (site / "synth" / "covariate.html").read_text()
    assert "Line chart: error (%) against severity" in html  # alt text says what the plot shows


# --- exports ----------------------------------------------------------------------------------------

HOSTILE = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "'quoted"]


def test_csv_exports_open_as_text_and_round_trip(synth):
    results, current = synth
    for i, name in enumerate(HOSTILE):
        write_result(results, name, "source", benchmark_hash=current, quality=0.5 + 0.05 * i)
    site = build_site(results, results.parent / "site").parent
    summary = load_boards(results)[0]
    for path in [site / "results.csv", site / "scenarios.csv", *site.glob("synth/exports/*.csv")]:
        text = path.read_bytes().decode()  # no newline translation: a CR inside a field stays one
        for cells in csv.reader(io.StringIO(text, newline="")):
            for cell in cells:
                assert not cell.startswith(FORMULA_START), (path.name, cell)
    back = read_csv((site / "results.csv").read_bytes().decode())
    assert sorted(back.entry) == sorted(HOSTILE)
    pd.testing.assert_frame_equal(back, summary, check_dtype=False)
    assert to_csv(back) == to_csv(summary)


def test_latex_is_the_paper_layout_method_by_corruption_with_the_mean(synth, capsys):
    results, current = synth
    write_result(results, "BN & co_1", "bn_adapt", benchmark_hash=current, quality=0.8, seeds=(0, 1, 2))
    write_result(results, "Source", "source", benchmark_hash=current, quality=0.6)
    b = board(boards_of(results, published_folder(results.parent)))
    tex = table_latex(b, table(b, "severity-5"))
    lines = tex.splitlines()
    head = next(ln for ln in lines if ln.startswith("Method &"))
    assert head == r"Method & gaussian noise & contrast & Mean \\"
    body = [ln for ln in lines if ln.endswith(r"\\") and ln is not head and not ln.startswith("Method")]
    assert [ln.split(" & ")[0] for ln in body] == [r"BN \& co\_1", "Source", "BN (paper) (published)",
                                                    "TENT (paper) (published)"]
    first = body[0].split(" & ")
    bn = row(table(b, "severity-5"), "BN & co_1")
    assert first[-1].startswith(r"\textbf{" + pct(bn.mean.mean) + r"{\scriptsize$\pm$" + pct(bn.mean.std))
    assert all(len(ln.split(" & ")) == 4 for ln in body)
    assert "% published: A. Author. A paper. 2021." in tex

    assert main(["leaderboard", "--format", "tex"]) == 0
    printed = capsys.readouterr().out
    assert printed.count(r"\begin{tabular}") == sum(len(bb.tables) for bb in boards_of(results))


def test_terminal_and_page_round_a_number_the_same_way(synth, capsys):
    from shiftbench.cli.commands import format_summary

    results, current = synth
    # 0.9255 * 100 = 92.55 is 92.549999... in binary: correct rounding gives 92.5, numpy's round gave 92.6
    scenarios = {"clean": ("clean", 0), "contrast-s1": ("covariate", 1)}
    path = write_result(results, "Edge", "source", benchmark_hash=current, scenarios=scenarios)
    import json

    from shiftbench.core.hashing import config_hash

    body = json.loads(path.read_text())
    for r in body["records"]:
        r["metrics"]["accuracy"] = 0.9255
    body["records_sha256"] = config_hash(body["records"], length=64)
    path.write_text(json.dumps(body))
    summary = load_boards(results)[0]
    assert pct(0.9255) == "92.5" and pd.Series([100 * 0.9255]).round(1)[0] == 92.6  # pandas' rounding differs here
    terminal = format_summary(summary)
    assert "92.5" in terminal and "92.6" not in terminal
    site = build_site(results, results.parent / "site").parent
    assert ">92.5<" in (site / "index.html").read_text()


def test_markdown_export_holds_every_board_table(synth, capsys):
    results, current = synth
    write_result(results, "a|b & <x>_y", "source", benchmark_hash=current, quality=0.8, seeds=(0, 1))
    assert main(["leaderboard", "--format", "md"]) == 0
    out = capsys.readouterr().out
    assert r"a\|b &amp; &lt;x&gt;\_y" in out
    boards = boards_of(results)
    assert out.count("#### ") == sum(len(b.tables) for b in boards)
    s5 = table(board(boards), "severity-5")
    r = s5.rows[0]
    assert f"| {pct(r.mean.mean)} ± {pct(r.mean.std)} |" in out


def test_sequence_heads_follow_the_stream_as_played():
    from shiftbench.leaderboard.scenario_kind import play_note, segment_labels
    from shiftbench.run.stream_settings import StreamSettings

    chains = [[{"shift": "fog", "severity": 5}], [{"shift": "snow", "severity": 5}]]
    gradual = StreamSettings(severities=[1, 3, 1]).played_chains(chains)
    assert segment_labels(gradual, 6) == ["fog s1", "fog s3", "fog s1", "snow s1", "snow s3", "snow s1"]
    # ten cycles of two segments: twenty columns, the chains again and again
    assert segment_labels(chains, 20) == ["fog", "snow"] * 10
    assert segment_labels(chains, 3) == ["segment 1", "segment 2", "segment 3"]  # counts that do not fit: no guess
    mixed = StreamSettings(mix=True, label_order={"concentration": 0.1}).layout()
    note = play_note(mixed["mix"], mixed["label_order"], mixed["cycles"])
    assert "shuffled into one stream" in note and "label-correlated" in note and "one after another" not in note
    long = StreamSettings(cycles=10).layout()
    assert "10 times" in play_note(long["mix"], long["label_order"], long["cycles"])
