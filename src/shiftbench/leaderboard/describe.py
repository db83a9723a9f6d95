"""Plain-text summaries of tables and figures, for screen readers (and anyone skimming)."""

from __future__ import annotations

from .boards import Row, Table
from .format import shown


def _value(table: Table, row: Row) -> str:
    text = shown(table.metric, row.mean.mean)
    unit = "%" if table.metric in ("error", "accuracy") or table.metric.endswith("accuracy") else ""
    spread = f" ± {shown(table.metric, row.mean.std)} over {row.mean.n} seeds" if row.mean.n > 1 else " (one seed)"
    return f"{row.label} {text}{unit}{spread}"


def table_summary(table: Table) -> str:
    """'Error (%) at severity 5: 4 entries ranked by mean (lower is better). Best: ... Worst: ... .'"""
    ranked = [r for r in table.entries if r.place is not None]
    direction = "lower" if table.lower_is_better else "higher"
    parts = [f"{table.title}: {len(table.entries)} entr{'y' if len(table.entries) == 1 else 'ies'} over "
             f"{len(table.columns)} column{'s' if len(table.columns) != 1 else ''}, ranked by the {table.mean_label} "
             f"({direction} is better)."]
    if ranked:
        parts.append(f"Best: {_value(table, ranked[0])}.")
        if len(ranked) > 1:
            parts.append(f"Last: {_value(table, ranked[-1])}.")
        tied = [r.label for r in ranked if r.shared_rank]
        if tied:
            parts.append(f"Within each other's spread (tied ranks): {', '.join(tied)}.")
    unranked = [r.label for r in table.entries if r.place is None]
    if unranked:
        parts.append(f"Not ranked (oracle, flagged or without a value): {', '.join(unranked)}.")
    pub = table.published_rows
    if pub:
        with_delta = [r for r in pub if r.against]
        parts.append(f"{len(pub)} published row{'s' if len(pub) != 1 else ''}"
                     + (f", {len(with_delta)} compared with our run of the same method and model." if with_delta
                        else ", none with a run of ours on the same model."))
    return " ".join(parts)


def curve_summary(kind: str, points: dict[str, list[tuple[float, float]]], x_name: str, y_name: str) -> str:
    """Alt text of a line chart: what it plots and where each line starts and ends."""
    lines = [f"{kind}: {y_name} against {x_name}, {len(points)} line{'s' if len(points) != 1 else ''}."]
    for label, pts in points.items():
        if pts:
            (x0, y0), (x1, y1) = pts[0], pts[-1]
            lines.append(f"{label}: {y0:.3g} at {x0:g}, {y1:.3g} at {x1:g}.")
    return " ".join(lines)
