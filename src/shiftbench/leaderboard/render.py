"""Render the leaderboard site with Jinja2 (autoescape on: everything a submitter wrote is text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__
from ..shifts import FAMILIES
from ..store import atomic_write_text
from .aggregate import load_results, scenario_table, summary_table


def environment() -> Environment:
    env = Environment(loader=PackageLoader("shiftbench.leaderboard", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True))
    env.filters["pct"] = lambda x: "" if x is None or x != x else f"{100 * x:.1f}"
    return env


def provenance_of(result: dict[str, Any]) -> dict[str, Any]:
    for r in result.get("records", []):
        if r.get("status") == "ok":
            p = dict(r.get("provenance", {}))
            for k in ("scenario_sha256", "config_hash"):
                p.pop(k, None)
            return p
    return {}


def build_site(results_root: Path, site_dir: Path) -> Path:
    """Write site_dir/index.html from every result file; returns its path."""
    results = load_results(results_root)
    summary = summary_table(results)
    per_scenario = scenario_table(results)
    benchmarks = []
    for bench in sorted(summary.benchmark.unique()) if not summary.empty else []:
        rows = summary[summary.benchmark == bench].to_dict("records")
        sc = per_scenario[per_scenario.benchmark == bench]
        pivot = sc.pivot_table(index=["family", "scenario"], columns="entry", values="accuracy", sort=False)
        order = [r["entry"] for r in rows]
        pivot = pivot.reindex(columns=order)
        scenarios = [{"family": fam, "scenario": name, "values": [pivot.loc[(fam, name), e] for e in order]}
                     for fam, name in pivot.index]
        entries = [r for r in results if r["benchmark"] == bench]
        benchmarks.append({"name": bench, "rows": rows, "entries_order": order, "scenarios": scenarios,
                           "entries": [{"name": r["name"], "method": r.get("method"), "params": r.get("params", {}),
                                        "submission": r.get("submission", {}), "integrity": r.get("integrity"),
                                        "provenance": provenance_of(r),
                                        "failures": [(x["cell"]["scenario"], x.get("error"))
                                                     for x in r.get("records", []) if x.get("status") == "failed"]}
                                       for r in entries]})
    html = environment().get_template("index.html.j2").render(
        benchmarks=benchmarks, families=FAMILIES, version=__version__)
    out = Path(site_dir) / "index.html"
    atomic_write_text(out, html)
    return out
