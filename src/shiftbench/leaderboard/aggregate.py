"""Result files -> pandas tables.

Score of an entry on a benchmark: mean over shift families of the family's mean
accuracy over its scenarios (each scenario averaged over seeds). A failed cell
counts as accuracy 0 in the score, so failing is never better than trying, and
the number of failed cells is shown beside it. The `clean` scenario is reported
but not part of the score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..hashing import config_hash
from ..shifts import FAMILIES


def load_results(results_root: Path) -> list[dict[str, Any]]:
    """Every result file under results_root/<benchmark>/, with an `integrity` verdict attached."""
    out = []
    for path in sorted(Path(results_root).glob("*/*.json")):
        try:
            body = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            out.append({"path": str(path), "name": path.stem, "benchmark": path.parent.name, "records": [],
                        "integrity": f"unreadable: {e}"})
            continue
        body["path"] = str(path)
        recorded = body.get("records_sha256")
        body["integrity"] = "ok" if recorded == config_hash(body.get("records", []), length=64) else "records edited after the run"
        out.append(body)
    return out


def cells_frame(results: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for res in results:
        for r in res.get("records", []):
            c = r["cell"]
            m = r.get("metrics") or {}
            rows.append({
                "entry": res["name"], "benchmark": res["benchmark"], "scenario": c["scenario"], "family": c["family"],
                "seed": c["seed"], "status": r["status"], "error": r.get("error"),
                "accuracy": m.get("accuracy", 0.0) if r["status"] == "ok" else 0.0,
                **{k: m.get(k) for k in ("nll", "ece", "balanced_accuracy", "worst_group_accuracy", "consistency")},
                "seconds": r.get("seconds"),
            })
    return pd.DataFrame(rows, columns=["entry", "benchmark", "scenario", "family", "seed", "status", "error", "accuracy",
                                       "nll", "ece", "balanced_accuracy", "worst_group_accuracy", "consistency", "seconds"])


def scenario_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """(entry, benchmark, scenario, family) -> mean over seeds of each metric."""
    cells = cells_frame(results)
    if cells.empty:
        return cells
    numeric = ["accuracy", "nll", "ece", "balanced_accuracy", "worst_group_accuracy", "consistency", "seconds"]
    cells[numeric] = cells[numeric].apply(pd.to_numeric, errors="coerce")
    agg = cells.groupby(["entry", "benchmark", "scenario", "family"], sort=False)[numeric].mean().reset_index()
    failed = cells.assign(failed=cells.status.eq("failed")).groupby(["entry", "benchmark", "scenario"], sort=False).failed.sum()
    return agg.merge(failed.reset_index(), on=["entry", "benchmark", "scenario"])


def summary_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per (entry, benchmark): family scores, overall score, rank, failed cells."""
    per_scenario = scenario_table(results)
    cols = ["rank", "entry", "benchmark", "method", "score", *FAMILIES, "clean", "failed", "integrity"]
    if per_scenario.empty:
        return pd.DataFrame(columns=cols)
    fam = per_scenario.groupby(["entry", "benchmark", "family"]).accuracy.mean().unstack("family")
    for f in (*FAMILIES, "clean"):
        if f not in fam:
            fam[f] = float("nan")
    fam["score"] = fam[list(FAMILIES)].mean(axis=1, skipna=True)
    fam["failed"] = per_scenario.groupby(["entry", "benchmark"]).failed.sum()
    fam = fam.reset_index()
    meta = {(r["name"], r["benchmark"]): r for r in results}
    fam["method"] = [meta[(e, b)].get("method", "") for e, b in zip(fam.entry, fam.benchmark)]
    fam["integrity"] = [meta[(e, b)].get("integrity", "ok") for e, b in zip(fam.entry, fam.benchmark)]
    # oracle entries (they use test labels) are listed after the ranked ones, with rank "oracle"
    fam["oracle"] = [bool(meta[(e, b)].get("oracle", False)) for e, b in zip(fam.entry, fam.benchmark)]
    fam = fam.sort_values(["benchmark", "oracle", "score"], ascending=[True, True, False])
    ranks = fam[~fam.oracle].groupby("benchmark").score.rank(ascending=False, method="min").astype(int)
    fam["rank"] = ranks.reindex(fam.index).astype(object).where(~fam.oracle, "oracle")
    return fam[cols].reset_index(drop=True)
