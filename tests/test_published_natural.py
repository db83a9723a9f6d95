"""Published natural-shift tables (family: natural): validated, shown on their own board until an entry of the same
model measures those scenarios, then in its accuracy table with ours minus published."""

from __future__ import annotations

import math

import pytest
import yaml
from conftest import REPO

from shiftbench.core.errors import UserError
from shiftbench.leaderboard.boards import Board, Column, Row, Table, _attach
from shiftbench.leaderboard.published import Published, load_published
from shiftbench.leaderboard.stats import Stat


def shipped() -> Published:
    return next(p for p in load_published(REPO / "leaderboard" / "published") if p.benchmark == "clip-imagenet")


def test_the_shipped_clip_table_is_a_natural_accuracy_table():
    pub = shipped()
    assert pub.family == "natural" and pub.metric == "accuracy" and pub.setting.severity is None
    row = pub.rows[0]
    assert row.method == "zero_shot" and pub.fraction(row, "imagenet-v2") == pytest.approx(0.5592)


def test_a_covariate_table_still_needs_its_severity(tmp_path):
    raw = yaml.safe_load((REPO / "leaderboard" / "published" / "tent-cifar10c-wrn28-10.yaml").read_text())
    del raw["setting"]["severity"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="severity"):
        load_published(tmp_path)


def test_published_natural_rows_join_the_accuracy_table_with_deltas():
    pub = shipped()
    ours = Row(label="CLIP zero-shot", kind="entry", cells={"imagenet-v2": Stat(0.50, math.nan, 1)},
               mean=Stat(0.50, math.nan, 1), method="zero_shot")
    table = Table(slug="accuracy", title="Accuracy (%)", metric="accuracy", columns=[Column("imagenet-v2", "imagenet-v2")],
                  rows=[ours])
    board = Board("clip-imagenet", "m", "clip-vit-b-32-openai", "natural", "per_scenario", [table], ["imagenet-v2"])
    _attach(board, pub)
    published = table.published_rows[0]
    assert published.cells["imagenet-r"].mean == pytest.approx(0.6933)  # accuracy, not turned into error
    assert published.against == "CLIP zero-shot" and published.deltas == {"imagenet-v2": pytest.approx(0.50 - 0.5592)}
    assert {c.key for c in table.columns} == {"imagenet-v2", "imagenet-r", "imagenet-a", "imagenet-sketch"}


def test_with_no_measured_run_the_numbers_get_a_published_only_natural_board(tmp_path):
    from shiftbench.leaderboard import load_boards

    (tmp_path / "results").mkdir()
    boards = load_boards(tmp_path / "results", REPO / "leaderboard" / "published")[1]
    board = next(b for b in boards if b.benchmark == "clip-imagenet")
    assert board.published_only and board.family == "natural" and board.tables[0].metric == "accuracy"
    assert [r.label for r in board.tables[0].published_rows] == ["CLIP ViT-B/32 zero-shot"]
