"""Boards: the primary views, one per (benchmark, model, shift family, protocol).

A board holds tables of entries x scenarios, each cell the mean ± std over seeds:
  covariate    the paper layout: error per corruption at one severity plus the mean, one table
               per severity (highest first), and one table per sequence (error per segment and
               over the whole stream)
  label        accuracy, balanced accuracy and prior-estimation error (L1) per scenario; under latent
               label shift first the matched accuracy and the recovered p_d(y) error (tables are
               shown only where some entry reports their metric)
  concept      worst-group accuracy and accuracy per scenario
  translation  consistency, accuracy and fooling rate per scenario
Every table has a mean column: each seed's mean over the table's columns, then mean ± std of
those over seeds (for a sequence: the error over the whole stream). Rows are ranked by it,
ties within the spread share a rank (stats.py); flagged and oracle entries are shown unranked.
Published rows (published.py) join the covariate table of their severity, or the natural board's
accuracy table, with ours minus published where we measured the same method on the same model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..core.hashing import canonical_json, config_hash
from ..shifts import FAMILIES
from .aggregate import failed_value
from .format import LOWER_IS_BETTER, metric_label
from .model_label import model_label
from .published import Published
from .scenario_kind import play_note, segment_labels
from .stats import Place, Stat, rank_with_ties

# Per family (covariate aside): the tables of a board, in order: (metric, title).
FAMILY_TABLES = {
    "label": [("matched_accuracy", "Matched accuracy (%) (classes discovered: clusters matched to classes one-to-one)"),
              ("domain_prior_l1", "Recovered p_d(y) error (L1 per domain after matching, 0..2)"),
              ("accuracy", "Accuracy (%)"), ("balanced_accuracy", "Balanced accuracy (%)"),
              ("prior_l1", "Prior-estimation error (L1 between true and estimated class prior)")],
    "concept": [("worst_group_accuracy", "Worst-group accuracy (%)"), ("accuracy", "Accuracy (%)")],
    "translation": [("consistency", "Consistency (%)"), ("accuracy", "Accuracy (%)"), ("fooling_rate", "Fooling rate (%)")],
    "natural": [("accuracy", "Accuracy (%)"), ("worst_group_accuracy", "Worst-group accuracy (%)"),
                ("worst_region_accuracy", "Worst-region accuracy (%)"), ("macro_f1", "Macro-F1 (%)")],
}
PROTOCOL_ORDER = {"per_scenario": 0, "episodic": 1, "continual": 2}


@dataclass
class Column:
    key: str
    label: str


@dataclass
class Row:
    label: str
    kind: str  # "entry" or "published"
    cells: dict[str, Stat]
    mean: Stat
    failed: dict[str, int] = field(default_factory=dict)
    id: str | None = None
    method: str = ""
    params: dict[str, Any] | None = None
    seeds: int = 0
    ranked: bool = True
    oracle: bool = False
    flags: list[dict[str, Any]] = field(default_factory=list)
    place: Place | None = None
    shared_rank: bool = False
    published: Published | None = None
    deltas: dict[str, float] = field(default_factory=dict)
    delta_mean: float | None = None
    against: str | None = None  # the entry of ours the deltas are taken against


@dataclass
class Table:
    slug: str
    title: str
    metric: str
    columns: list[Column]
    rows: list[Row]
    mean_label: str = "mean"
    note: str = ""

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    @property
    def entries(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "entry"]

    @property
    def published_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "published"]


@dataclass
class Board:
    benchmark: str
    model: str  # model key
    model_label: str
    family: str
    protocol: str
    tables: list[Table]
    scenarios: list[str]
    published_only: bool = False

    @property
    def slug(self) -> str:
        """A file-name-safe id, unique per (model, family, protocol) within a benchmark."""
        return f"{self.family}-{self.protocol or 'any'}-{config_hash(self.model, length=8)}"

    @property
    def title(self) -> str:
        return f"{self.family.capitalize()} shift · {self.model_label} · {self.protocol.replace('_', ' ') or 'any protocol'}"


def _stat(values: pd.Series) -> Stat:
    return Stat.of(values.tolist())


def _entry_info(results_by_id: dict[str, dict[str, Any]], ident: str) -> dict[str, Any]:
    res = results_by_id.get(ident, {})
    flags = res.get("flags", [])
    return {"flags": flags, "oracle": bool(res.get("oracle")), "ranked": res.get("ranked", not flags),
            "params": res.get("params"), "method": str(res.get("method", ""))}


def _metric_table(cells: pd.DataFrame, columns: list[Column], column_of: str, metric: str, order: list[str],
                  labels: dict[str, str], results_by_id: dict[str, dict[str, Any]], slug: str, title: str) -> Table | None:
    """Entries x columns of `metric` (mean ± std over seeds); the mean column from each seed's mean over columns."""
    if metric not in cells or not cells[metric].notna().any():
        return None
    keys = [c.key for c in columns]
    rows = []
    for ident in order:
        mine = cells[(cells.id == ident) & cells[column_of].isin(keys)]
        if mine.empty or not mine[metric].notna().any():
            continue
        per_cell = {k: _stat(mine[mine[column_of] == k][metric]) for k in keys}
        failed = {k: int(mine[(mine[column_of] == k)].status.ne("ok").sum()) for k in keys}
        per_seed = mine.groupby("seed")[metric].agg(lambda v: v.mean() if v.notna().all() else math.nan)
        complete = per_seed[mine.groupby("seed")[column_of].nunique() == len(keys)]  # a seed missing a column has no mean
        info = _entry_info(results_by_id, ident)
        rows.append(Row(label=labels[ident], kind="entry", cells=per_cell, mean=_stat(complete), failed=failed,
                        id=ident, method=info["method"], params=info["params"], seeds=int(mine.seed.nunique()),
                        ranked=info["ranked"], oracle=info["oracle"], flags=info["flags"]))
    if not rows:
        return None
    return Table(slug=slug, title=title, metric=metric, columns=columns, rows=rows)


def _rank(table: Table) -> None:
    ranked = [r for r in table.entries if r.ranked]
    places = rank_with_ties([r.mean for r in ranked], table.lower_is_better)
    for row, place in zip(ranked, places):
        row.place = place
    counts: dict[int, int] = {}
    for r in ranked:
        if r.place:
            counts[r.place.rank] = counts.get(r.place.rank, 0) + 1
    for r in ranked:
        r.shared_rank = bool(r.place and counts[r.place.rank] > 1)
    direction = 1 if table.lower_is_better else -1

    def key(r: Row):
        if r.kind == "published":
            return (2, 0.0)
        return (1, 0.0) if r.mean.missing else (0, direction * r.mean.mean)

    table.rows.sort(key=key)


def _sequence_tables(cells: pd.DataFrame, segments: pd.DataFrame, order: list[str], labels: dict[str, str],
                     results_by_id: dict[str, dict[str, Any]], chains: dict[str, Any],
                     plays: dict[str, dict[str, Any]]) -> list[Table]:
    """One table per sequence scenario: error per segment (in stream order) and over the whole stream."""
    out = []
    seq = cells[cells.corruption.isna()]
    for scenario in dict.fromkeys(seq.scenario):
        segs = segments[segments.scenario == scenario]
        count = int(segs.segment.max()) + 1 if not segs.empty else 0
        heads = segment_labels(chains.get(scenario), count)
        columns = [Column(f"{i}", f"{i + 1}. {h}") for i, h in enumerate(heads)]
        rows = []
        for ident in order:
            mine = seq[(seq.id == ident) & (seq.scenario == scenario)]
            if mine.empty:
                continue
            own = segs[segs.id == ident]
            per_cell = {c.key: _stat(own[own.segment == int(c.key)].error) for c in columns}
            info = _entry_info(results_by_id, ident)
            rows.append(Row(label=labels[ident], kind="entry", cells=per_cell, mean=_stat(mine.error),
                            failed={c.key: int(mine.status.ne("ok").sum()) for c in columns}, id=ident,
                            method=info["method"], params=info["params"], seeds=int(mine.seed.nunique()),
                            ranked=info["ranked"], oracle=info["oracle"], flags=info["flags"]))
        if rows:
            play = plays.get(scenario) or {"mix": False, "label_order": None, "cycles": 1}
            out.append(Table(slug=f"sequence-{scenario}", title=f"Sequence {scenario}: error (%) per segment, in stream order",
                             metric="error", columns=columns, rows=rows, mean_label="whole stream",
                             note=play_note(play["mix"], play["label_order"], play["cycles"])))
    return out


def _covariate_tables(cells, segments, order, labels, results_by_id, chains, plays) -> list[Table]:
    tables = []
    rated = cells[cells.corruption.notna()]
    for severity in sorted({int(s) for s in rated.severity.dropna()}, reverse=True):
        at = rated[rated.severity == severity]
        columns = [Column(c, c) for c in dict.fromkeys(at.corruption)]
        t = _metric_table(at, columns, "corruption", "error", order, labels, results_by_id,
                          f"severity-{severity}", f"Error (%) at severity {severity}")
        if t:
            tables.append(t)
    return tables + _sequence_tables(cells, segments, order, labels, results_by_id, chains, plays)


def _family_tables(cells, family, order, labels, results_by_id) -> list[Table]:
    columns = [Column(s, s) for s in dict.fromkeys(cells.scenario)]
    out = []
    for metric, title in FAMILY_TABLES.get(family, [("accuracy", "Accuracy (%)")]):
        t = _metric_table(cells, columns, "scenario", metric, order, labels, results_by_id, metric, title)
        if t:
            out.append(t)
    return out


def published_matches(pub: Published, spec: dict[str, Any], checkpoints: set[str]) -> bool:
    if pub.model.checkpoint_sha256:
        return pub.model.checkpoint_sha256 in checkpoints
    return pub.model.name in {str(spec.get("weights") or ""), str(spec.get("name") or "")}


def _published_rows(table: Table, pub: Published) -> None:
    """Append the file's rows to the table (adding its columns), with ours minus published where both exist."""
    have = {c.key for c in table.columns}
    for row in pub.rows:
        for key in row.values:
            if key != "mean" and key not in have:
                table.columns.append(Column(key, key))
                have.add(key)
    keys = [c.key for c in table.columns]
    for row in pub.rows:
        cells = {k: Stat(v, math.nan, 1) if (v := pub.fraction(row, k)) is not None else Stat(math.nan, math.nan, 0)
                 for k in keys}
        given = [pub.fraction(row, k) for k in keys if k in row.values]
        mean = pub.fraction(row, "mean")
        if mean is None and len(given) == len(keys):
            mean = sum(given) / len(given)
        new = Row(label=row.label, kind="published", cells=cells, mean=Stat(mean if mean is not None else math.nan,
                  math.nan, 1 if mean is not None else 0), method=row.method, params=row.params, ranked=False,
                  published=pub)
        ours = [r for r in table.entries if r.method == row.method and not r.mean.missing
                and (row.params is None or canonical_json(r.params) == canonical_json(row.params))]
        if ours:
            best = min(ours, key=lambda r: (r.place.rank if r.place else math.inf, r.label))
            new.against = best.label
            new.deltas = {k: best.cells[k].mean - cells[k].mean for k in keys
                          if not best.cells.get(k, Stat(math.nan, math.nan, 0)).missing and not cells[k].missing}
            measured = {k for k in keys if not best.cells.get(k, Stat(math.nan, math.nan, 0)).missing}
            published_cols = {k for k in keys if k in row.values}
            if not new.mean.missing and measured == published_cols:  # a mean over the same corruptions only
                new.delta_mean = best.mean.mean - new.mean.mean
        table.rows.append(new)


def build_boards(results: list[dict[str, Any]], cells: pd.DataFrame, segments: pd.DataFrame,
                 published: list[Published], chains: dict[str, dict[str, Any]],
                 labels: dict[str, str], plays: dict[str, dict[str, Any]] | None = None) -> list[Board]:
    """Every board of every benchmark: from the cells of result files, plus published-only boards.

    cells: cells_frame(results); segments: segments_frame(results); chains: benchmark -> scenario ->
    shift chains as played (for column heads); labels: result id -> the name shown in tables; plays:
    benchmark -> scenario -> its stream layout (mix, label_order, cycles), for the sequence tables' notes.
    """
    by_id = {r["id"]: r for r in results}
    specs_by_model: dict[str, dict[str, Any]] = {}
    for res in results:
        for rec in res.get("records", []):
            if isinstance(rec, dict) and isinstance((rec.get("cell") or {}).get("model"), dict):
                specs_by_model.setdefault(canonical_json(rec["cell"]["model"]), rec["cell"]["model"])
    boards: list[Board] = []
    used: set[int] = set()
    real = cells[cells.family.isin(FAMILIES)]
    for (bench, model, family, protocol), frame in real.groupby(["benchmark", "model", "family", "protocol"], sort=True):
        position = {s: i for i, s in enumerate(chains.get(bench, {}))}  # columns in the benchmark's own order
        frame = frame.assign(_at=[position.get(s, len(position)) for s in frame.scenario])
        frame = frame.sort_values(["_at", "scenario"], kind="stable").drop(columns="_at")
        order = list(dict.fromkeys(frame.id))
        spec = specs_by_model.get(model, {})
        checkpoints = set(frame.checkpoint.dropna())
        bench_chains = chains.get(bench, {})
        if family == "covariate":
            segs = segments[(segments.benchmark == bench) & segments.id.isin(order)]
            tables = _covariate_tables(frame, segs, order, labels, by_id, bench_chains, (plays or {}).get(bench, {}))
        else:
            tables = _family_tables(frame, family, order, labels, by_id)
        board = Board(bench, model, model_label(spec, checkpoints), family, protocol, tables,
                      list(dict.fromkeys(frame.scenario)))
        if family in ("covariate", "natural"):
            for i, pub in enumerate(published):
                if pub.benchmark == bench and pub.family == family and pub.setting.protocol == protocol \
                        and published_matches(pub, spec, checkpoints):
                    used.add(i)
                    _attach(board, pub)
        boards.append(board)
    for i, pub in enumerate(published):  # published numbers with no measured run of that model: their own board
        if i in used:
            continue
        key = f"published:{pub.model.name}"
        board = next((b for b in boards if b.benchmark == pub.benchmark and b.model == key
                      and b.family == pub.family and b.protocol == pub.setting.protocol), None)
        if board is None:
            board = Board(pub.benchmark, key, f"{pub.model.name} (published only)", pub.family, pub.setting.protocol,
                          [], [], published_only=True)
            boards.append(board)
        _attach(board, pub)
    for board in boards:
        for table in board.tables:
            _rank(table)
    boards.sort(key=lambda b: (b.benchmark, b.published_only, b.model_label, FAMILIES.index(b.family),
                               PROTOCOL_ORDER.get(b.protocol, 9), b.protocol))
    return boards


def _attach(board: Board, pub: Published) -> None:
    if pub.family == "natural":
        table = next((t for t in board.tables if t.slug == "accuracy"), None)
        if table is None:
            table = Table(slug="accuracy", title="Accuracy (%)", metric="accuracy", columns=[], rows=[])
            board.tables.insert(0, table)
        _published_rows(table, pub)
        return
    slug = f"severity-{pub.setting.severity}"
    table = next((t for t in board.tables if t.slug == slug), None)
    if table is None:
        table = Table(slug=slug, title=f"Error (%) at severity {pub.setting.severity}", metric="error", columns=[], rows=[])
        board.tables.append(table)
        board.tables.sort(key=lambda t: (not t.slug.startswith("severity-"), -int(t.slug.split("-")[1])
                                         if t.slug.startswith("severity-") else 0))
    _published_rows(table, pub)


def segments_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """(id, benchmark, scenario, seed, segment) -> the segment's error, for multi-segment records."""
    rows = []
    for res in results:
        for rec in res.get("records", []):
            if not isinstance(rec, dict):
                continue
            c = rec.get("cell", {})
            segs = rec.get("segments") if rec.get("status") == "ok" else None
            if not isinstance(segs, list):
                continue
            for i, s in enumerate(segs):
                acc = s.get("accuracy") if isinstance(s, dict) else None
                rows.append({"id": res["id"], "benchmark": res["benchmark"], "scenario": c.get("scenario"),
                             "seed": c.get("seed"), "segment": i,
                             "error": 1 - acc if isinstance(acc, (int, float)) else failed_value("error")})
    return pd.DataFrame(rows, columns=["id", "benchmark", "scenario", "seed", "segment", "error"])


def metric_title(metric: str) -> str:
    return metric_label(metric) + (" (lower is better)" if metric in LOWER_IS_BETTER else "")



