"""The leaderboard as CSV (fractions, full precision), Markdown and LaTeX (percent, one decimal, the paper layout).

CSV cells of text that a spreadsheet would evaluate (starting with =, +, -, @, a tab or a
carriage return) are prefixed with an apostrophe, so they open as text; a text that itself
starts with an apostrophe gets one too, so `read_csv` can undo exactly what `to_csv` did.
Rows end in CR LF (RFC 4180), so any field holding a line break is quoted.
"""

from __future__ import annotations

import io
import math
import re

import pandas as pd

from .boards import Board, Row, Table
from .format import is_number, pct, points, shown

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NOTE = ("Error and accuracy in percent; each value is the mean over seeds, ± the standard deviation when there is "
        "more than one seed. Rank by the mean column; '=' marks ranks shared by entries within each other's spread. "
        "Published rows are quoted from their source; delta = ours minus published, in points.")


def csv_safe(value):
    """A text cell no spreadsheet evaluates; other values unchanged."""
    if isinstance(value, str) and value and (value[0] in FORMULA_START or value[0] == "'"):
        return "'" + value
    return value


def csv_unsafe(value):
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


def to_csv(frame: pd.DataFrame) -> str:
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(csv_safe)
    safe.columns = [csv_safe(str(c)) for c in safe.columns]
    buf = io.StringIO()
    # RFC 4180 line ends: the writer then quotes every field holding a CR or LF, so a CR inside a name can never
    # start a new row whose first cell a spreadsheet would evaluate
    safe.to_csv(buf, index=False, float_format="%.17g", lineterminator="\r\n")
    return buf.getvalue()


TEXT_COLUMNS = ("id", "entry", "benchmark", "model", "method", "protocol", "status", "scenario", "family", "row",
                "kind", "against", "citation")


def read_csv(text: str) -> pd.DataFrame:
    """What to_csv wrote, back as a frame (text columns as strings, the apostrophes removed)."""
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""],
                        dtype={c: str for c in TEXT_COLUMNS})
    frame.columns = [csv_unsafe(c) for c in frame.columns]
    for col in frame.columns:
        if col in TEXT_COLUMNS:
            frame[col] = frame[col].map(csv_unsafe)
    return frame


def table_frame(board: Board, table: Table) -> pd.DataFrame:
    """A board's table as fractions: one row per entry or published row, each column's mean and std, the mean."""
    rows = []
    for r in table.rows:
        row = {"benchmark": board.benchmark, "model": board.model_label, "family": board.family,
               "protocol": board.protocol, "table": table.title, "kind": r.kind, "row": r.label, "method": r.method,
               "rank": r.place.rank if r.place else None, "tied": r.shared_rank, "seeds": r.seeds}
        for c in table.columns:
            stat = r.cells.get(c.key)
            row[c.key] = stat.mean if stat and not stat.missing else math.nan
            row[f"{c.key}_std"] = stat.std if stat else math.nan
        row["mean"], row["mean_std"] = r.mean.mean, r.mean.std
        if r.kind == "published":
            row["against"] = r.against
            row["citation"] = r.published.citation if r.published else ""
            for k, d in r.deltas.items():
                row[f"{k}_delta"] = d
            row["mean_delta"] = r.delta_mean
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "rank" in frame:
        frame["rank"] = frame["rank"].astype("Int64")
    return frame


def _cell(table: Table, row: Row, key: str | None) -> str:
    stat = row.mean if key is None else row.cells.get(key)
    if stat is None or stat.missing:
        return ""
    text = shown(table.metric, stat.mean)
    if stat.n > 1 and is_number(stat.std):
        text += f" ± {shown(table.metric, stat.std)}"
    return text


def _rank_text(row: Row) -> str:
    if row.kind == "published":
        return "published"
    if row.place is None:
        return "–"
    return f"={row.place.rank}" if row.shared_rank else str(row.place.rank)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def table_markdown(board: Board, table: Table) -> str:
    head = ["rank", "entry", "seeds", *[c.label for c in table.columns], table.mean_label]
    lines = [f"#### {md_escape(board.title)}: {md_escape(table.title)}", "",
             "| " + " | ".join(md_escape(h) for h in head) + " |",
             "|---|---|---:|" + "---:|" * (len(table.columns) + 1)]
    for r in table.rows:
        label = md_escape(r.label) + (" (published)" if r.kind == "published" else "")
        cells = [_cell(table, r, c.key) for c in table.columns] + [_cell(table, r, None)]
        lines.append("| " + " | ".join([_rank_text(r), label, str(r.seeds or "")] + cells) + " |")
        if r.kind == "published" and r.against:
            deltas = [points(r.deltas.get(c.key)) for c in table.columns] + [points(r.delta_mean)]
            lines.append("| | " + md_escape(f"delta: {r.against} minus published") + " | | " + " | ".join(deltas) + " |")
    cites = sorted({r.published.citation for r in table.published_rows if r.published})
    lines += [""] + [f"Published: {md_escape(c)}" for c in cites] + ([""] if cites else [])
    return "\n".join(lines) + "\n"


def to_markdown(summary: pd.DataFrame, boards: list[Board]) -> str:
    parts = []
    for bench, table in summary.groupby("benchmark", sort=True):
        parts.append(f"### {md_escape(str(bench))}\n")
        cols = ["entry", "model", "method", "protocol", "seeds", "covariate", "label", "concept", "translation", "clean",
                "failed", "status"]
        parts.append("| " + " | ".join(cols) + " |")
        parts.append("|" + "|".join("---:" if c in ("seeds", "covariate", "label", "concept", "translation", "clean",
                                                      "failed") else "---" for c in cols) + "|")
        for _, row in table.iterrows():
            cells = []
            for c in cols:
                if c in ("covariate", "label", "concept", "translation", "clean"):
                    v, s = row[c], row[f"{c}_std"]
                    cells.append(pct(v) + (f" ± {pct(s)}" if is_number(s) else ""))
                else:
                    cells.append(md_escape(str(row[c])))
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
        for board in boards:
            if board.benchmark == bench:
                parts.extend(table_markdown(board, t) for t in board.tables)
    parts.append(NOTE)
    return "\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in " ".join(str(text).split()))


def _tex_cell(table: Table, row: Row, key: str | None, best: bool) -> str:
    stat = row.mean if key is None else row.cells.get(key)
    if stat is None or stat.missing:
        return "--"
    text = shown(table.metric, stat.mean)
    if stat.n > 1 and is_number(stat.std):
        text += r"{\scriptsize$\pm$" + shown(table.metric, stat.std) + "}"
    return r"\textbf{" + text + "}" if best else text


def _best(table: Table, key: str | None) -> set[int]:
    """Positions of the ranked rows with the best value of the column (bold in the paper layout)."""
    values = [(i, (r.mean if key is None else r.cells.get(key))) for i, r in enumerate(table.rows)
              if r.kind == "entry" and r.place is not None]
    values = [(i, s.mean) for i, s in values if s is not None and not s.missing]
    if len(values) < 2:
        return set()
    top = (min if table.lower_is_better else max)(v for _, v in values)
    return {i for i, v in values if v == top}


def table_latex(board: Board, table: Table) -> str:
    """The paper layout: method x column (corruptions) + mean; published rows below a rule, with their source."""
    heads = [tex_escape(c.label.replace("_", " ")) for c in table.columns] + [tex_escape(table.mean_label.capitalize())]
    best = {c.key: _best(table, c.key) for c in table.columns}
    best_mean = _best(table, None)
    lines = [f"% {tex_escape(board.title)}: {tex_escape(table.title)}", "\\begin{tabular}{l" + "r" * len(heads) + "}",
             "\\toprule", "Method & " + " & ".join(heads) + r" \\", "\\midrule"]
    entries = [(i, r) for i, r in enumerate(table.rows) if r.kind == "entry"]
    for i, r in entries:
        cells = [_tex_cell(table, r, c.key, i in best[c.key]) for c in table.columns] + [
            _tex_cell(table, r, None, i in best_mean)]
        lines.append(tex_escape(r.label) + " & " + " & ".join(cells) + r" \\")
    published = table.published_rows
    if published:
        lines.append("\\midrule")
        for r in published:
            cells = [_tex_cell(table, r, c.key, False) for c in table.columns] + [_tex_cell(table, r, None, False)]
            lines.append(tex_escape(f"{r.label} (published)") + " & " + " & ".join(cells) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    for cite in sorted({r.published.citation for r in published if r.published}):
        lines.append(f"% published: {tex_escape(cite)}")
    return "\n".join(lines) + "\n"


def to_latex(boards: list[Board]) -> str:
    parts = [f"% {NOTE}", "% needs \\usepackage{booktabs}", ""]
    for board in boards:
        parts.extend(table_latex(board, t) for t in board.tables)
    return "\n".join(parts)
