"""The leaderboard as CSV (fractions, full precision), Markdown and LaTeX (percent, one decimal)."""

from __future__ import annotations

import io
import re

import pandas as pd

from ..shifts import FAMILIES
from .format import pct

NOTE = ("Accuracy in percent (higher is better; error = 100 - accuracy). Score = mean over shift families of each "
        "family's mean accuracy; a failed cell counts as 0; clean is not scored. Flagged entries are not ranked.")
TABLE_COLUMNS = ["rank", "entry", "method", "protocol", "score", *FAMILIES, "clean", "failed", "status"]
PERCENT_COLUMNS = {"score", *FAMILIES, "clean"}


def to_csv(summary: pd.DataFrame) -> str:
    buf = io.StringIO()
    summary.to_csv(buf, index=False, float_format="%.17g", lineterminator="\n")
    return buf.getvalue()


def read_csv(text: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""],
                        dtype={"entry": str, "method": str, "protocol": str, "status": str, "id": str, "benchmark": str})
    frame["rank"] = frame["rank"].astype("Int64")
    return frame


def _cells(row, escape) -> list[str]:
    out = []
    for col in TABLE_COLUMNS:
        v = row[col]
        if col in PERCENT_COLUMNS:
            out.append(pct(v))
        elif col == "rank":
            out.append("" if pd.isna(v) else str(int(v)))
        else:
            out.append(escape(str(v)))
    return out


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def to_markdown(summary: pd.DataFrame) -> str:
    parts = []
    for bench, table in summary.groupby("benchmark", sort=True):
        parts.append(f"### {md_escape(str(bench))}\n")
        parts.append("| " + " | ".join(TABLE_COLUMNS) + " |")
        parts.append("|" + "|".join("---" if c in ("entry", "method", "protocol", "status") else "---:"
                                    for c in TABLE_COLUMNS) + "|")
        for _, row in table.iterrows():
            parts.append("| " + " | ".join(_cells(row, md_escape)) + " |")
        parts.append("")
    parts.append(NOTE)
    return "\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in " ".join(text.split()))


def to_latex(summary: pd.DataFrame) -> str:
    """One booktabs tabular per benchmark."""
    header = [tex_escape(c) for c in TABLE_COLUMNS]
    align = "".join("l" if c in ("entry", "method", "protocol", "status") else "r" for c in TABLE_COLUMNS)
    parts = [f"% {NOTE}", "% needs \\usepackage{booktabs}"]
    for bench, table in summary.groupby("benchmark", sort=True):
        parts += [f"% benchmark: {tex_escape(str(bench))}", f"\\begin{{tabular}}{{{align}}}", "\\toprule",
                  " & ".join(header) + r" \\", "\\midrule"]
        for _, row in table.iterrows():
            parts.append(" & ".join(_cells(row, tex_escape)) + r" \\")
        parts += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(parts)
