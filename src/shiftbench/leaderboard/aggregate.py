"""Result files -> pandas tables.

Score of an entry on a benchmark: mean over shift families of the family's mean
accuracy over its scenarios (each scenario averaged over seeds). A failed cell
counts as accuracy 0 in the score, so failing is never better than trying, and
the number of failed cells is shown beside it. The `clean` scenario is reported
but not part of the score.

Every result file is one entry, identified by `id` = "<benchmark>/<file stem>",
so two files that claim the same name stay two rows (and are flagged, see
checks.py). Only entries without flags are ranked.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.hashing import config_hash
from ..shifts import FAMILIES

CELL_COLUMNS = ["id", "entry", "benchmark", "scenario", "family", "seed", "status", "message", "seconds"]
SUMMARY_COLUMNS = ["rank", "id", "entry", "benchmark", "method", "protocol", "score", *FAMILIES, "clean",
                   "failed", "cells", "status"]


def load_results(results_root: Path) -> list[dict[str, Any]]:
    """Every result file under results_root/<benchmark>/, with an `integrity` verdict attached."""
    out = []
    for path in sorted(Path(results_root).glob("*/*.json")):
        ident = f"{path.parent.name}/{path.stem}"
        try:
            body = json.loads(path.read_text())
            if not isinstance(body, dict):
                raise ValueError("top level is not an object")
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
            out.append({"path": str(path), "id": ident, "name": path.stem, "benchmark": path.parent.name,
                        "records": [], "integrity": f"unreadable: {e}"})
            continue
        body.setdefault("name", path.stem)
        body.setdefault("benchmark", path.parent.name)
        body.setdefault("records", [])
        body["name"] = str(body["name"])
        body["benchmark"] = str(body["benchmark"])
        body["path"] = str(path)
        body["id"] = ident
        recorded = body.get("records_sha256")
        body["integrity"] = "ok" if recorded == config_hash(body["records"], length=64) else "records edited after the run"
        out.append(body)
    return out


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def numeric_metrics(records: list[dict[str, Any]]) -> list[str]:
    """Names of the scalar numeric metrics found in any record (always accuracy), in display order."""
    from .format import metric_order

    names = {"accuracy"}
    for r in records:
        names.update(k for k, v in (r.get("metrics") or {}).items() if is_number(v))
    return metric_order(names)


def cells_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record; every numeric metric a record carries becomes a column."""
    all_records = [r for res in results for r in res.get("records", [])]
    metrics = [m for m in numeric_metrics(all_records) if m not in CELL_COLUMNS]
    rows = []
    for res in results:
        for r in res.get("records", []):
            c = r.get("cell", {})
            ok = r.get("status") == "ok"
            m = r.get("metrics") or {}
            row = {"id": res["id"], "entry": res["name"], "benchmark": res["benchmark"], "scenario": c.get("scenario"),
                   "family": c.get("family"), "seed": c.get("seed"), "status": r.get("status"), "message": r.get("error"),
                   "seconds": r.get("seconds") if is_number(r.get("seconds")) else None}
            for k in metrics:
                row[k] = m.get(k) if ok and is_number(m.get(k)) else None
            if not ok:
                row["accuracy"] = 0.0  # a failed cell scores 0, never better than trying
            rows.append(row)
    frame = pd.DataFrame(rows, columns=CELL_COLUMNS + metrics)
    frame[metrics + ["seconds"]] = frame[metrics + ["seconds"]].apply(pd.to_numeric, errors="coerce")
    return frame


def scenario_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """(id, entry, benchmark, scenario, family) -> mean over seeds of each metric, failed cells, seeds."""
    cells = cells_frame(results)
    keys = ["id", "entry", "benchmark", "scenario", "family"]
    metrics = [c for c in cells.columns if c not in CELL_COLUMNS] + ["seconds"]
    if cells.empty:
        return pd.DataFrame(columns=keys + metrics + ["failed", "seeds"])
    grouped = cells.assign(failed=cells.status.ne("ok")).groupby(keys, sort=False)
    agg = grouped[metrics].mean()
    agg["failed"] = grouped.failed.sum().astype(int)
    agg["seeds"] = grouped.seed.nunique()
    return agg.reset_index()


def summary_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per result file: family scores, overall score, rank (unflagged entries only), failed cells."""
    per_scenario = scenario_table(results)
    rows = []
    for res in results:
        sc = per_scenario[per_scenario.id == res["id"]]
        fam = sc.groupby("family").accuracy.mean()
        families = {f: float(fam[f]) if f in fam else math.nan for f in (*FAMILIES, "clean")}
        scored = [families[f] for f in FAMILIES if not math.isnan(families[f])]
        flags = res.get("flags", [])
        rows.append({
            "rank": math.nan, "id": res["id"], "entry": res["name"], "benchmark": res["benchmark"],
            "method": str(res.get("method", "")), "protocol": str(res.get("protocol") or (res.get("submission") or {}).get("protocol") or "per_scenario"),
            "score": sum(scored) / len(scored) if scored else math.nan, **families,
            "failed": int(sc.failed.sum()), "cells": len(res.get("records", [])),
            "status": "; ".join(dict.fromkeys([f["kind"] for f in flags] + ["oracle"] * bool(res.get("oracle")))) or "ok",
            "_ranked": res.get("ranked", not flags),
        })
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS + ["_ranked"])
    if table.empty:
        return table.drop(columns="_ranked")
    ranked = table._ranked.astype(bool) & table.score.notna()
    table.loc[ranked, "rank"] = table[ranked].groupby("benchmark").score.rank(ascending=False, method="min")
    table["rank"] = table["rank"].astype("Int64")
    table = table.sort_values(["benchmark", "rank", "score", "entry"], ascending=[True, True, False, True],
                              na_position="last", kind="stable")
    return table.drop(columns="_ranked").reset_index(drop=True)
