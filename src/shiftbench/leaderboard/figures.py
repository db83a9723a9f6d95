"""The figures of a board: which numbers go into which plot, and the alt text that says what it shows.

  covariate    error vs severity (per entry: each seed's mean over the corruptions at that
               severity, then mean ± std over seeds; severity 0 is the clean test split), and
               the online error along the stream where records carry `online`
               ({"window": W, "error": [e_1, e_2, ...]}, the error of each consecutive W images)
  label        prior-estimation error vs window: the window is the number of test images an
               estimate is computed from (episodic: one batch; per scenario / continual: the
               whole scenario), taken from every protocol's board on the same model; drawn when
               there are at least two windows
  concept, translation   the headline metric per scenario and entry
  natural      accuracy on each natural test set the board's scenarios play (a scenario's
               `dataset`) against clean accuracy, one point per model and entry: every entry
               of any benchmark, on the board's protocol, that has both (so the sibling
               benchmarks of other models add their points), each a mean over seeds
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from . import plots
from .boards import Board
from .aggregate import protocol_of
from .describe import curve_summary
from .format import PERCENT_METRICS, metric_label
from .model_label import model_label, model_spec
from .stats import Stat


def online_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """(id, benchmark, scenario, seed, window, index, error, boundary) from records that carry `online`."""
    rows = []
    for res in results:
        for rec in res.get("records", []):
            online = rec.get("online") if isinstance(rec, dict) and rec.get("status") == "ok" else None
            if not isinstance(online, dict) or not isinstance(online.get("error"), list):
                continue
            window = online.get("window")
            c = rec.get("cell", {})
            for i, e in enumerate(online["error"]):
                if isinstance(e, (int, float)) and math.isfinite(e) and isinstance(window, int) and window > 0:
                    rows.append({"id": res["id"], "benchmark": res["benchmark"], "scenario": c.get("scenario"),
                                 "seed": c.get("seed"), "window": window, "index": i, "error": float(e)})
    return pd.DataFrame(rows, columns=["id", "benchmark", "scenario", "seed", "window", "index", "error"])


def segment_starts(results: list[dict[str, Any]], benchmark: str, scenario: str) -> list[int]:
    """Image counts at which the scenario's 2nd, 3rd, ... segment starts (from any record's segment sizes)."""
    for res in results:
        if res["benchmark"] != benchmark:
            continue
        for rec in res.get("records", []):
            segs = rec.get("segments") if isinstance(rec, dict) else None
            if (rec.get("cell") or {}).get("scenario") == scenario and isinstance(segs, list) and segs:
                sizes = [s.get("n") for s in segs if isinstance(s, dict)]
                if all(isinstance(n, int) for n in sizes):
                    return [sum(sizes[:i]) for i in range(1, len(sizes))]
    return []


def _seed_stats(frame: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    """Per `by` group: mean and std over seeds of the per-seed mean of `value`."""
    per_seed = frame.groupby(by + ["seed"], dropna=False)[value].mean().reset_index()
    out = []
    for key, g in per_seed.groupby(by, dropna=False):
        s = Stat.of(g[value])
        out.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), value: s.mean, f"{value}_std": s.std})
    return pd.DataFrame(out, columns=by + [value, f"{value}_std"])


def severity_figure(board: Board, cells: pd.DataFrame, labels: dict[str, str], out: Path) -> dict[str, Any] | None:
    ids = [r.id for t in board.tables if t.slug.startswith("severity-") for r in t.entries]
    ids = list(dict.fromkeys(ids))
    mine = cells[(cells.benchmark == board.benchmark) & cells.id.isin(ids)]
    rated = mine[(mine.family == "covariate") & mine.severity.notna() & (mine.model == board.model)
                 & (mine.protocol == board.protocol)]
    if rated.empty:
        return None
    clean = mine[mine.family == "clean"].assign(severity=0)
    frame = pd.concat([rated, clean])[["id", "seed", "severity", "error"]].assign(error=lambda f: 100 * f.error)
    stats = _seed_stats(frame, ["id", "severity"], "error")
    curves = {labels[i]: stats[stats.id == i].astype({"severity": int}) for i in ids}
    fig = plots.error_vs_severity_figure(curves)
    plots.save(fig, out)
    points = {k: list(zip(v.severity, v.error)) for k, v in curves.items() if not v.empty}
    return {"src": f"plots/{out.name}", "caption": "Error vs severity: each point is the mean error over the "
            "corruptions at that severity (mean over seeds, bars: ± std over seeds); severity 0 is the clean test split.",
            "alt": curve_summary("Line chart", points, "severity", "error (%)")}


def online_figures(board: Board, online: pd.DataFrame, results: list[dict[str, Any]], labels: dict[str, str],
                   out_dir: Path) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(r.id for t in board.tables for r in t.entries))
    mine = online[(online.benchmark == board.benchmark) & online.id.isin(ids)]
    figures = []
    for scenario in dict.fromkeys(mine.scenario):
        sc = mine[mine.scenario == scenario]
        window = int(sc.window.iloc[0])
        stats = _seed_stats(sc.assign(error=100 * sc.error), ["id", "index"], "error")
        curves = {labels[i]: stats[stats.id == i].assign(seen=lambda f: (f["index"] + 1) * window) for i in ids
                  if (stats.id == i).any()}
        fig = plots.online_error_figure(curves, window, segment_starts(results, board.benchmark, scenario))
        name = f"{board.slug}-online-{_safe(scenario)}.svg"
        plots.save(fig, out_dir / name)
        points = {k: list(zip(v.seen, v.error)) for k, v in curves.items()}
        figures.append({"src": f"plots/{name}", "caption": f"Online error along the stream of {scenario}: the error of "
                        f"each window of {window} test images, in the order the method saw them (mean over seeds); "
                        "dotted lines mark where a new segment starts.",
                        "alt": curve_summary("Line chart", points, "test images seen", "error (%) per window")})
    return figures


def prior_window_figure(board: Board, cells: pd.DataFrame, results_by_id: dict[str, dict[str, Any]],
                        out: Path) -> dict[str, Any] | None:
    """Prior-estimation error against the window it was estimated from, over every protocol on this model."""
    mine = cells[(cells.benchmark == board.benchmark) & (cells.model == board.model) & (cells.family == "label")]
    if "prior_l1" not in mine or not mine.prior_l1.notna().any():
        return None
    mine = mine[mine.prior_l1.notna()].copy()
    mine["window"] = [int(b) if p == "episodic" and b == b and b is not None else int(n) if n == n else math.nan
                      for p, b, n in zip(mine.protocol, mine.batch_size, mine.get("n", pd.Series(math.nan, mine.index)))]
    mine = mine[mine.window.notna()]
    if mine.window.nunique() < 2:  # one window (every run on this model used one protocol): the table says it all
        return None
    mine["line"] = [_method_label(results_by_id.get(i, {}), m) for i, m in zip(mine.id, mine.method)]
    stats = _seed_stats(mine, ["line", "window"], "prior_l1")
    curves = {line: stats[stats.line == line] for line in dict.fromkeys(mine.line)}
    fig = plots.prior_error_vs_window_figure(curves)
    plots.save(fig, out)
    points = {k: list(zip(v.window, v.prior_l1)) for k, v in curves.items()}
    return {"src": f"plots/{out.name}", "caption": "Prior-estimation error (L1 between the true and the estimated class "
            "prior, mean over the label-shift scenarios and seeds) against the number of test images the estimate "
            "is computed from: one batch under the episodic protocol, the whole scenario otherwise. Every protocol "
            "run on this model is included.", "alt": curve_summary("Line chart", points, "window (images)", "prior L1")}


def _method_label(result: dict[str, Any], method: str) -> str:
    params = result.get("params") or {}
    shown = ", ".join(f"{k} {v}" for k, v in sorted(params.items()) if not isinstance(v, (dict, list)))
    return f"{method} ({shown})" if shown else method


def points_figure(board: Board, out: Path) -> dict[str, Any] | None:
    """The board's first table as points: one column per scenario, one marker per entry."""
    if not board.tables:
        return None
    table = board.tables[0]
    data = {r.label: {c.label: r.cells[c.key].mean for c in table.columns} for r in table.entries}
    matrix = pd.DataFrame(data, index=[c.label for c in table.columns])
    percent = table.metric in PERCENT_METRICS
    matrix = matrix * 100 if percent else matrix
    if matrix.empty or not matrix.notna().any().any():
        return None
    fig = plots.point_figure(matrix, ylabel=metric_label(table.metric), percent=percent)
    plots.save(fig, out)
    means = matrix.mean()
    alt = (f"Dot chart: {metric_label(table.metric)} per scenario ({', '.join(map(str, matrix.index))}) for "
           f"{matrix.notna().any().sum()} entries; mean over scenarios: "
           + "; ".join(f"{k} {v:.3g}" for k, v in means.dropna().items()))
    return {"src": f"plots/{out.name}", "caption": f"{table.title}, per scenario and entry (mean over seeds).", "alt": alt}


def line_points(results: list[dict[str, Any]], sets: list[str], protocol: str,
                labels: dict[str, str] | None = None) -> pd.DataFrame:
    """(set, model, entry, clean, natural) in percent: per entry with ok records on `protocol`, its clean
    accuracy and its accuracy on each of `sets` (the datasets natural scenarios play), means over seeds of
    the per-seed means."""
    rows = []
    for res in results:
        clean: dict[Any, list[float]] = {}
        natural: dict[str, dict[Any, list[float]]] = {}
        specs, checkpoints = [], set()
        for r in res.get("records", []):
            cell, acc = r.get("cell") or {}, (r.get("metrics") or {}).get("accuracy")
            if r.get("status") != "ok" or acc is None or protocol_of(res, r) != protocol:
                continue
            played = (cell.get("spec") or {}).get("dataset")
            if cell.get("family") == "clean":
                clean.setdefault(cell.get("seed"), []).append(acc)
            elif cell.get("family") == "natural" and played in sets:
                natural.setdefault(played, {}).setdefault(cell.get("seed"), []).append(acc)
            else:
                continue
            specs.append(model_spec(r))
            checkpoints.add((r.get("provenance") or {}).get("checkpoint_sha256"))
        if not clean or not natural:
            continue
        clean_mean = Stat.of([sum(v) / len(v) for v in clean.values()]).mean
        model = model_label(specs[0], checkpoints)
        for name in sets:
            if name in natural:
                mean = Stat.of([sum(v) / len(v) for v in natural[name].values()]).mean
                rows.append({"set": name, "model": model, "entry": (labels or {}).get(res["id"], res["name"]),
                             "clean": 100 * clean_mean, "natural": 100 * mean})
    return pd.DataFrame(rows, columns=["set", "model", "entry", "clean", "natural"])


def accuracy_on_the_line(board: Board, results: list[dict[str, Any]], labels: dict[str, str],
                         out: Path) -> dict[str, Any] | None:
    """The natural board's sets against clean accuracy, one point per model and entry (across benchmarks)."""
    sets = list(dict.fromkeys(
        (r.get("cell") or {}).get("spec", {}).get("dataset") for res in results if res.get("benchmark") == board.benchmark
        for r in res.get("records", []) if (r.get("cell") or {}).get("scenario") in board.scenarios))
    sets = [s for s in sets if s]
    points = line_points(results, sets, board.protocol, labels)
    if points.empty:
        return None
    fig = plots.accuracy_on_the_line_figure(points)
    plots.save(fig, out)
    alt = ("Scatter chart: accuracy on each natural test set against clean accuracy (%), one point per model and "
           "entry; " + "; ".join(f"{r.set}: {r.entry} on {r.model} {r.clean:.1f} -> {r.natural:.1f}"
                                 for r in points.itertuples()))
    return {"src": f"plots/{out.name}", "caption": "Accuracy on the line: each point is one model and entry, its "
            "accuracy on a natural test set against its clean accuracy (mean over seeds), with every entry on this "
            "protocol that has both, from this and the other benchmarks; solid lines are each set's least-squares "
            "fit, the dashed line is no drop from clean.", "alt": alt}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(name))
