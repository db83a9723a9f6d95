"""Accuracy vs consistency under translation: crop selection at several margins against the other entries.

`plot_translation_tradeoff(results_or_frame, out_path)` takes either the result
bodies `load_results` returns or a DataFrame with one row per point (columns
entry, method, margin, accuracy, consistency) and writes an SVG.
Consistency is `pairwise_consistency` where a scenario reports it (all-shift
grids), else `consistency` (agreement of the two views of translate/translate_pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

COLUMNS = ["entry", "method", "margin", "accuracy", "consistency"]


def translation_points(results: list[dict[str, Any]], benchmark: str | None = None) -> pd.DataFrame:
    """One row per entry: mean accuracy and consistency over its translation-family cells that ran."""
    rows = []
    for res in results:
        if benchmark is not None and res.get("benchmark") != benchmark:
            continue
        accs, cons = [], []
        for r in res.get("records", []):
            m = r.get("metrics") or {}
            if r.get("status") != "ok" or r["cell"].get("family") != "translation":
                continue
            c = m.get("pairwise_consistency", m.get("consistency"))
            if c is None:
                continue
            accs.append(m["accuracy"])
            cons.append(c)
        if accs:
            rows.append({"entry": res["name"], "method": res.get("method", ""),
                         "margin": (res.get("params") or {}).get("margin"),
                         "accuracy": sum(accs) / len(accs), "consistency": sum(cons) / len(cons)})
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_translation_tradeoff(results_or_frame: list[dict[str, Any]] | pd.DataFrame, out_path: str | Path,
                              title: str = "Translation: accuracy vs consistency") -> Path | None:
    """Write the SVG; returns its path, or None when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = results_or_frame if isinstance(results_or_frame, pd.DataFrame) else translation_points(results_or_frame)
    if frame.empty:
        return None
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # real <text> in the SVG: searchable, crisp
        return _draw(plt, frame, Path(out_path), title)


def _draw(plt, frame: pd.DataFrame, out: Path, title: str) -> Path:
    crop = frame[frame.method == "crop_select"].sort_values("margin")
    others = frame[frame.method != "crop_select"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if not crop.empty:
        ax.plot(100 * crop.consistency, 100 * crop.accuracy, "o-", color="tab:blue", label="crop selection")
        for _, r in crop.iterrows():
            ax.annotate(f"m={int(r.margin) if r.margin == r.margin else '?'}", (100 * r.consistency, 100 * r.accuracy),
                        textcoords="offset points", xytext=(5, 4), fontsize=8)
    markers = "s^vD<>p*"
    for i, (_, r) in enumerate(others.iterrows()):
        ax.plot(100 * r.consistency, 100 * r.accuracy, markers[i % len(markers)], color="tab:red" if i == 0 else None,
                label=str(r.entry))
    ax.set_xlabel("consistency under translation (%)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    fig.savefig(tmp, format="svg")
    plt.close(fig)
    tmp.replace(out)
    return out
