"""Result files -> pandas tables: one row per cell, per (entry, scenario) over seeds, per entry.

A failed cell counts as the worst value of every bounded metric (accuracy 0, error 1, ...), so
failing is never better than trying; the number of failed cells is shown beside every entry.
Seeds are never averaged away: every aggregate carries its standard deviation over seeds and
the number of seeds (`<metric>_std`, `seeds`).

The per-entry summary has no score across shift families: methods pull in opposite directions
on different families, so one average would rank nothing. It keeps one headline number per
family (see HEADLINE), each a mean over that family's scenarios, where an average means
something; boards.py holds the per-scenario tables.

Every result file is one entry, identified by `id` = "<benchmark>/<file stem>", so two files
that claim the same name stay two rows (and are flagged, see checks.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.hashing import config_hash
from ..shifts import FAMILIES
from .format import LOWER_IS_BETTER, PERCENT_METRICS, metric_order
from .model_label import model_key, model_label, model_spec
from .scenario_kind import corruption_of, record_segments, spec_segments

CELL_COLUMNS = ["id", "entry", "benchmark", "scenario", "family", "seed", "status", "message", "seconds", "method",
                "protocol", "model", "checkpoint", "batch_size", "corruption", "severity"]
# The one number per family that the index shows: (metric, what it means).
HEADLINE = {
    "covariate": ("error", "mean error over the covariate scenarios (every corruption and severity, and sequences)"),
    "label": ("matched_accuracy", "mean accuracy over the label-shift scenarios (where classes are discovered, "
                                  "latent label shift: the Hungarian-matched accuracy)"),
    "concept": ("worst_group_accuracy", "mean worst-group accuracy over the concept scenarios"),
    "translation": ("consistency", "mean consistency over the translation scenarios"),
    "natural": ("accuracy", "mean accuracy over the natural-shift scenarios (real test sets and domains)"),
    "clean": ("accuracy", "accuracy on the unshifted test split"),
}
SUMMARY_COLUMNS = ["id", "entry", "benchmark", "model", "method", "protocol", "seeds",
                   *[c for f in (*FAMILIES, "clean") for c in (f, f"{f}_std")], "failed", "cells", "status"]


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
    names = {"accuracy"}
    for r in records:
        names.update(k for k, v in (r.get("metrics") or {}).items() if is_number(v))
    return metric_order(names)


def failed_value(metric: str) -> float:
    """What a failed cell counts as: the worst value of a bounded metric, else missing."""
    if metric in PERCENT_METRICS:
        return 1.0 if metric in LOWER_IS_BETTER else 0.0
    return math.nan


def protocol_of(result: dict[str, Any], record: dict[str, Any]) -> str:
    return str(record.get("cell", {}).get("protocol") or (result.get("submission") or {}).get("protocol") or "")


def cells_frame(results: list[dict[str, Any]], specs: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per record; every numeric metric a record carries becomes a column.

    specs: benchmark -> scenario -> its current definition, for records that do not carry their shift chains.
    """
    all_records = [r for res in results for r in res.get("records", [])]
    metrics = [m for m in numeric_metrics(all_records) if m not in CELL_COLUMNS]
    rows = []
    for res in results:
        for r in res.get("records", []):
            if not isinstance(r, dict):
                continue
            c = r.get("cell", {})
            ok = r.get("status") == "ok"
            chains = record_segments(r) or spec_segments((specs or {}).get(res["benchmark"], {}).get(c.get("scenario")))
            kind = corruption_of(c.get("scenario"), chains) if c.get("family") == "covariate" else None
            m = r.get("metrics") or {}
            row = {"id": res["id"], "entry": res["name"], "benchmark": res["benchmark"], "scenario": c.get("scenario"),
                   "family": c.get("family"), "seed": c.get("seed"), "status": r.get("status"), "message": r.get("error"),
                   "seconds": r.get("seconds") if is_number(r.get("seconds")) else None,
                   "method": str(c.get("method") or res.get("method", "")), "protocol": protocol_of(res, r),
                   "model": model_key(model_spec(r)), "checkpoint": (r.get("provenance") or {}).get("checkpoint_sha256"),
                   "batch_size": c.get("batch_size"), "corruption": kind[0] if kind else None,
                   "severity": kind[1] if kind else None}
            for k in metrics:
                row[k] = (m.get(k) if is_number(m.get(k)) else None) if ok else failed_value(k)
            rows.append(row)
    frame = pd.DataFrame(rows, columns=CELL_COLUMNS + metrics)
    frame[metrics + ["seconds"]] = frame[metrics + ["seconds"]].apply(pd.to_numeric, errors="coerce")
    return frame


def metric_columns(cells: pd.DataFrame) -> list[str]:
    return [c for c in cells.columns if c not in CELL_COLUMNS]


def scenario_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """(id, scenario) -> each metric's mean and standard deviation over seeds, failed cells, seeds."""
    cells = cells_frame(results)
    keys = ["id", "entry", "benchmark", "scenario", "family", "method", "protocol", "model"]
    metrics = metric_columns(cells) + ["seconds"]
    if cells.empty:
        return pd.DataFrame(columns=keys + [c for m in metrics for c in (m, f"{m}_std")] + ["failed", "seeds"])
    grouped = cells.assign(failed=cells.status.ne("ok")).groupby(keys, sort=False, dropna=False)
    mean, std = grouped[metrics].mean(), grouped[metrics].std(ddof=1)
    agg = pd.concat([mean, std.add_suffix("_std")], axis=1)[[c for m in metrics for c in (m, f"{m}_std")]]
    agg["failed"] = grouped.failed.sum().astype(int)
    agg["seeds"] = grouped.seed.nunique()
    return agg.reset_index()


def headline_metric(family: str, available) -> str:
    """The family's headline metric, or accuracy where the cells do not report it."""
    metric = HEADLINE.get(family, ("accuracy", ""))[0]
    return metric if metric in available else "accuracy"


def per_seed_family_means(cells: pd.DataFrame) -> pd.DataFrame:
    """(id, family, seed) -> the family's headline metric averaged over its scenarios at that seed."""
    parts = []
    for family, fam in cells.groupby("family", sort=False):
        metric = headline_metric(family, fam.columns)
        values = fam.assign(value=fam[metric].where(fam[metric].notna(), fam.accuracy if metric != "accuracy" else None))
        parts.append(values.groupby(["id", "family", "seed"], dropna=False).value.mean().reset_index())
    return pd.concat(parts) if parts else pd.DataFrame(columns=["id", "family", "seed", "value"])


def summary_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per result file: the model, each family's headline number (mean and std over seeds), failed cells."""
    cells = cells_frame(results)
    seeds = per_seed_family_means(cells)
    rows = []
    for res in results:
        mine = cells[cells.id == res["id"]]
        spec = next((r.get("cell", {}).get("model") for r in res.get("records", []) if isinstance(r, dict)), None)
        row = {"id": res["id"], "entry": res["name"], "benchmark": res["benchmark"],
               "model": model_label(spec if isinstance(spec, dict) else {}, set(mine.checkpoint.dropna())),
               "method": str(res.get("method", "")),
               "protocol": str(res.get("protocol") or (res.get("submission") or {}).get("protocol") or "")
               or ", ".join(sorted(set(mine.protocol.dropna()))) or "per_scenario",
               "seeds": int(mine.seed.nunique()), "failed": int(mine.status.ne("ok").sum()),
               "cells": len(res.get("records", []))}
        for family in (*FAMILIES, "clean"):
            values = seeds[(seeds.id == res["id"]) & (seeds.family == family)].value.dropna()
            row[family] = float(values.mean()) if len(values) else math.nan
            row[f"{family}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        flags = res.get("flags", [])
        row["status"] = "; ".join(dict.fromkeys([f["kind"] for f in flags] + ["oracle"] * bool(res.get("oracle")))) or "ok"
        rows.append(row)
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return table.sort_values(["benchmark", "model", "entry"], kind="stable").reset_index(drop=True)
