"""Matplotlib figures for the site: error vs severity, online error along a stream, prior-estimation error
vs window, per-scenario points, accuracy on a natural test set vs clean accuracy, and the scenario x
entry heat map.

Each `*_figure` function returns a Figure (tests inspect it) and `save` writes it as SVG.
Figures are shown with <img>, so nothing in them can run in the page. Text is drawn as paths
with mathtext off (a '$' in a name is a dollar sign) and SVG ids are salted with a constant,
so the same results give byte-identical files.

Readability rules every figure follows: the legend lists only lines that have a point; a
value axis never spans less than a sensible minimum (MIN_SPAN; a 0.35-point range drawn
across the whole axis exaggerates noise); tick labels that would overlap are turned, then
thinned (`fit_tick_labels`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from typing import TYPE_CHECKING

from ..core.lazy import LazyModule

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# imported when a figure is drawn: a run whose site is kept draws none (matplotlib costs ~0.5 s to import)
mpl = LazyModule("matplotlib")
backend_agg = LazyModule("matplotlib.backends.backend_agg")
figure = LazyModule("matplotlib.figure")
ticker = LazyModule("matplotlib.ticker")

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
LINESTYLES = ("-", "--", ":")
RC = {"svg.hashsalt": "shiftbench", "svg.fonttype": "path", "text.parse_math": False, "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3}
MIN_SPAN_PERCENT = 10.0  # a percent axis shows at least 10 points
MIN_SPAN_OTHER = 0.1


def _styled(make):
    """Run a figure function under the site's rc settings (artists read them when they are created)."""

    @functools.wraps(make)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC):
            return make(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    fig = figure.Figure(figsize=(width, height), layout="constrained")
    backend_agg.FigureCanvasAgg(fig)  # a canvas that can measure text, for fit_tick_labels
    return fig


def save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mpl.rc_context(RC):
        fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def sensible_limits(values: Iterable[float], *, percent: bool, floor: float | None = 0.0) -> tuple[float, float]:
    """Axis limits around the finite values with a margin, never spanning less than the minimum span."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return (0.0, 100.0) if percent else (0.0, 1.0)
    lo, hi = min(xs), max(xs)
    span = max(hi - lo, MIN_SPAN_PERCENT if percent else MIN_SPAN_OTHER * max(1.0, abs(hi)))
    mid = (lo + hi) / 2
    lo, hi = mid - 0.55 * span, mid + 0.55 * span
    if floor is not None and lo < floor:
        lo, hi = floor, floor + 1.1 * span
    if percent and hi > 100:
        lo, hi = max(0.0 if floor is not None else lo, lo - (hi - 100)), 100.0
    return lo, hi


def _overlaps(boxes) -> bool:
    for a, b in zip(boxes, boxes[1:]):
        if a.overlaps(b):
            return True
    return False


def fit_tick_labels(fig: Figure, ax, axis: str = "x") -> None:
    """Turn the axis's tick labels, then show every k-th, until no two overlap."""
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    labels = [t for t in ticks if t.get_text()]
    if len(labels) < 2:
        return
    renderer = fig.canvas.get_renderer()

    def boxes():
        fig.draw_without_rendering()
        shown = [t for t in labels if t.get_visible()]
        return sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0 if axis == "x" else b.y0)

    if not _overlaps(boxes()):
        return
    if axis == "x":
        for t in labels:
            t.set_rotation(35)
            t.set_horizontalalignment("right")
            t.set_rotation_mode("anchor")
        if not _overlaps(boxes()):
            return
        for t in labels:
            t.set_rotation(90)
            t.set_horizontalalignment("center")
            t.set_rotation_mode("default")
    step = 2
    while _overlaps(boxes()) and step < len(labels):
        for i, t in enumerate(labels):
            t.set_visible(i % step == 0)
        step += 1


def one_line(text) -> str:
    """A name as one line of text (tabs and line breaks in a submitter's name are not drawable)."""
    return " ".join(str(text).split())


def _legend(fig: Figure, ax) -> None:
    """Below the axes, in as many columns as fit, so long entry names never squeeze the plot itself."""
    handles, names = ax.get_legend_handles_labels()
    names = [one_line(n) for n in names]
    if handles:
        longest = max(len(n) for n in names)
        columns = max(1, min(len(names), int(fig.get_figwidth() * 12 // (longest + 6))))
        fig.legend(handles, names, fontsize=8, frameon=False, loc="outside lower center", ncols=columns)


def _plot_with_spread(ax, xs, ys, errs, k: int, label: str) -> None:
    kw = dict(marker=MARKERS[k % len(MARKERS)], linestyle=LINESTYLES[k // len(MARKERS) % len(LINESTYLES)],
              linewidth=1.6, markersize=5, label=label)
    if any(e is not None and math.isfinite(e) and e > 0 for e in errs):
        ax.errorbar(xs, ys, yerr=[e if e is not None and math.isfinite(e) else 0.0 for e in errs], capsize=2, **kw)
    else:
        ax.plot(xs, ys, **kw)


@_styled
def error_vs_severity_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """curves: label -> frame with columns severity, error, error_std (errors in percent; severity 0 = clean)."""
    fig = _figure(6.6, 3.2 + 0.16 * len(curves))
    ax = fig.add_subplot()
    shown = []
    for label, curve in curves.items():
        curve = curve.dropna(subset=["error"]).sort_values("severity")
        if curve.empty:
            continue
        _plot_with_spread(ax, curve.severity.tolist(), curve.error.tolist(), curve.error_std.tolist(), len(shown), label)
        shown.extend(curve.error.tolist())
    ax.set_xlabel("severity (0 = clean test split)")
    ax.set_ylabel("error (%), mean over corruptions")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylim(*sensible_limits(shown, percent=True))
    _legend(fig, ax)
    fit_tick_labels(fig, ax)
    return fig


@_styled
def online_error_figure(curves: dict[str, pd.DataFrame], window: int, boundaries: list[int] | None = None) -> Figure:
    """curves: label -> frame with columns seen (images so far), error (percent), error_std. One line per entry;
    dotted verticals where a new segment starts."""
    fig = _figure(6.6, 3.0 + 0.16 * len(curves))
    ax = fig.add_subplot()
    shown = []
    for label, curve in curves.items():
        curve = curve.dropna(subset=["error"])
        if curve.empty:
            continue
        k = len(ax.get_legend_handles_labels()[0])
        ax.plot(curve.seen, curve.error, marker=MARKERS[k % len(MARKERS)], markersize=3,
                linestyle=LINESTYLES[k // len(MARKERS) % len(LINESTYLES)], linewidth=1.4, label=label)
        shown.extend(curve.error.tolist())
    for b in boundaries or []:
        ax.axvline(b, color="0.6", linestyle=":", linewidth=1)
    ax.set_xlabel(f"test images seen (error of each window of {window})")
    ax.set_ylabel("error (%) in the window")
    ax.set_ylim(*sensible_limits(shown, percent=True))
    _legend(fig, ax)
    fit_tick_labels(fig, ax)
    return fig


@_styled
def prior_error_vs_window_figure(curves: dict[str, pd.DataFrame]) -> Figure:
    """curves: label -> frame with columns window (images the estimate saw), prior_l1, prior_l1_std."""
    fig = _figure(6.6, 3.0 + 0.16 * len(curves))
    ax = fig.add_subplot()
    shown = []
    for label, curve in curves.items():
        curve = curve.dropna(subset=["prior_l1"]).sort_values("window")
        if curve.empty:
            continue
        k = len(ax.get_legend_handles_labels()[0])
        _plot_with_spread(ax, curve.window.tolist(), curve.prior_l1.tolist(), curve.prior_l1_std.tolist(), k, label)
        shown.extend(curve.prior_l1.tolist())
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # plain numbers: mathtext is off
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("window: test images the prior estimate is computed from (log scale)")
    ax.set_ylabel("prior-estimation error (L1)")
    ax.set_ylim(*sensible_limits(shown, percent=False))
    _legend(fig, ax)
    fit_tick_labels(fig, ax)
    return fig


@_styled
def point_figure(matrix: pd.DataFrame, *, ylabel: str, percent: bool) -> Figure:
    """One column of points per scenario (rows), one marker per entry (columns), slightly offset so none hide.
    Entries without any point are left out (and out of the legend)."""
    matrix = matrix.loc[:, matrix.notna().any(axis=0)]
    rows, cols = matrix.shape
    fig = _figure(max(6.0, 2.5 + 0.8 * rows), 3.4 + 0.16 * cols)  # the legend below: a line per entry at most
    ax = fig.add_subplot()
    x = np.arange(rows)
    spread = min(0.5, 0.1 * cols)
    for j, col in enumerate(matrix.columns):
        offset = (j / max(cols - 1, 1) - 0.5) * spread if cols > 1 else 0.0
        ax.plot(x + offset, matrix[col].to_numpy(dtype=float), linestyle="none", marker=MARKERS[j % len(MARKERS)],
                markersize=6, label=str(col))
    ax.set_xticks(x, [one_line(r) for r in matrix.index])
    ax.set_xlim(-0.6, rows - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*sensible_limits(matrix.to_numpy(dtype=float).ravel(), percent=percent))
    ax.grid(axis="x", visible=False)
    _legend(fig, ax)
    fit_tick_labels(fig, ax)
    return fig


@_styled
def accuracy_on_the_line_figure(points: pd.DataFrame) -> Figure:
    """points: columns set, model, clean, natural (percent): one marker per (model, natural test set), one
    marker style per set, each set's least-squares line where it has two clean accuracies or more, and the
    dashed diagonal (no drop from clean), as "accuracy on the line" (Recht et al. 2019; Miller et al. 2021)
    reads them."""
    sets = list(dict.fromkeys(points["set"]))
    fig = _figure(5.6, 4.4 + 0.16 * len(sets))
    ax = fig.add_subplot()
    for k, name in enumerate(sets):
        mine = points[points["set"] == name]
        line = ax.plot(mine.clean, mine.natural, linestyle="none", marker=MARKERS[k % len(MARKERS)], markersize=6,
                       label=name)[0]
        if mine.clean.nunique() >= 2:
            slope, intercept = np.polyfit(mine.clean.to_numpy(float), mine.natural.to_numpy(float), 1)
            xs = np.array([mine.clean.min(), mine.clean.max()])
            ax.plot(xs, slope * xs + intercept, color=line.get_color(), linewidth=1, alpha=0.7)
    lo, hi = sensible_limits(list(points.clean) + list(points.natural), percent=True)
    ax.plot([lo, hi], [lo, hi], color="0.5", linestyle="--", linewidth=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("clean accuracy (%)")
    ax.set_ylabel("accuracy on the natural test set (%)")
    _legend(fig, ax)
    fit_tick_labels(fig, ax)
    return fig


@_styled
def heatmap_figure(matrix: pd.DataFrame, *, title: str = "accuracy (%)") -> Figure:
    """matrix: scenarios x entry labels, values in percent (NaN = no result)."""
    rows, cols = matrix.shape
    longest = max((len(one_line(c)) for c in matrix.columns), default=0)  # entry names may be turned upright
    widest = max((len(one_line(r)) for r in matrix.index), default=0)  # scenario names beside the rows
    fig = _figure(max(4.0, 2.0 + 0.9 * cols + 0.07 * widest), max(2.5, 1.2 + 0.24 * rows + 0.07 * longest))
    ax = fig.add_subplot()
    ax.grid(False)
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(cols), [one_line(c) for c in matrix.columns])
    ax.set_yticks(range(rows), [one_line(r) for r in matrix.index])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(rows):
        for j in range(cols):
            v = values[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color="black" if v > 60 else "white")
    fig.colorbar(image, ax=ax, label=title, shrink=0.8)
    fit_tick_labels(fig, ax)
    return fig
