"""Matplotlib SVG figures for the site: accuracy vs severity, scenario x entry heat maps, per-scenario points.

Figures are written as files and shown with <img>, so nothing in them can run
in the page. Text is drawn as paths with mathtext off (a '$' in a name is a
dollar sign) and the SVG ids are salted with a constant, so the same results
give byte-identical files.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.figure import Figure

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
LINESTYLES = ("-", "--", ":")
SEVERITY_IN_NAME = re.compile(r"^(?P<kind>.+)-s(?P<severity>\d+)$")
RC = {"svg.hashsalt": "shiftbench", "svg.fonttype": "path", "text.parse_math": False, "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3}


def severity_of(name: str, spec: Any | None = None) -> tuple[str, int] | None:
    """(corruption, severity) of a covariate scenario: from its shift spec when known, else from a name like 'x-s3'.

    A scenario of several segments (a sequence) or several severity-carrying shifts has no single severity.
    """
    if spec is not None:
        if spec.segments is not None and len(spec.segments) != 1:
            return None
        chain = spec.segment_chains()[0]
        rated = [s for s in chain if isinstance(s.get("severity"), int) and not isinstance(s.get("severity"), bool)]
        if len(rated) == 1:
            return str(rated[0]["shift"]), int(rated[0]["severity"])
        return None
    m = SEVERITY_IN_NAME.match(name)
    return (m["kind"], int(m["severity"])) if m else None


@contextmanager
def _figure(width: float, height: float):
    with rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def severity_plot(points: pd.DataFrame, clean: dict[str, float], labels: dict[str, str], path: Path) -> Path:
    """Mean accuracy over corruptions at each severity, one line per entry; severity 0 is the clean accuracy.

    points: columns id, severity, accuracy (fractions; one row per scenario).
    """
    with _figure(6.4, 3.6) as fig:
        ax = fig.add_subplot()
        for ident, label in labels.items():
            curve = points[points.id == ident].groupby("severity").accuracy.mean().sort_index()
            if curve.empty:
                continue
            xs, ys = list(curve.index), list(100 * curve.values)
            if ident in clean:
                xs, ys = [0] + xs, [100 * clean[ident]] + ys
            k = len(ax.lines)
            ax.plot(xs, ys, marker=MARKERS[k % len(MARKERS)], linestyle=LINESTYLES[k // len(MARKERS) % len(LINESTYLES)],
                    linewidth=1.6, markersize=5, label=label)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("accuracy (%), mean over corruptions")
        ax.xaxis.set_major_locator(_integer_locator())
        fig.legend(fontsize=8, frameon=False, loc="outside right upper")
        return _save(fig, path)


def _integer_locator():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def heatmap(matrix: pd.DataFrame, path: Path, *, title: str = "accuracy (%)") -> Path:
    """matrix: scenarios x entry labels, values in percent (NaN = no result)."""
    rows, cols = matrix.shape
    with _figure(max(4.0, 1.2 + 0.9 * cols), max(2.0, 0.9 + 0.24 * rows)) as fig:
        ax = fig.add_subplot()
        ax.grid(False)
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        ax.set_xticks(range(cols), [str(c) for c in matrix.columns], rotation=30, ha="right")
        ax.set_yticks(range(rows), [str(r) for r in matrix.index])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        for i in range(rows):
            for j in range(cols):
                v = values[i, j]
                if np.isfinite(v):
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7,
                            color="black" if v > 60 else "white")
        fig.colorbar(image, ax=ax, label=title, shrink=0.8)
        return _save(fig, path)


def point_plot(matrix: pd.DataFrame, path: Path, *, ylabel: str) -> Path:
    """One column of points per scenario (rows), one marker per entry (columns), slightly offset so none hide."""
    rows, cols = matrix.shape
    with _figure(max(4.5, 2.5 + 0.8 * rows), 3.2) as fig:
        ax = fig.add_subplot()
        x = np.arange(rows)
        spread = min(0.5, 0.1 * cols)
        for j, col in enumerate(matrix.columns):
            offset = (j / max(cols - 1, 1) - 0.5) * spread if cols > 1 else 0.0
            ax.plot(x + offset, matrix[col].to_numpy(dtype=float), linestyle="none", marker=MARKERS[j % len(MARKERS)],
                    markersize=6, label=str(col))
        ax.set_xticks(x, [str(r) for r in matrix.index], rotation=20, ha="right")
        ax.set_xlim(-0.6, rows - 0.4)
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)
        fig.legend(fontsize=8, frameon=False, loc="outside right upper")
        return _save(fig, path)
