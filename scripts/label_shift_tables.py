"""Tables for the label-shift report, from the result files of a digits-label run.

    PYTHONPATH=src python -m shiftbench run --submissions leaderboard/submissions/digits-label
    PYTHONPATH=src python scripts/label_shift_tables.py [--results leaderboard/results]

Prints accuracy (%) per scenario for the entries named below, and the mean prior L1 error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from shiftbench.leaderboard.aggregate import load_results

DIRICHLET = ["Source (no adaptation)", "BBSE (hard, BCTS)", "MLLS (no calibration)", "MLLS + BCTS",
             "Oracle prior (BCTS, upper bound)"]
JOINT = ["Source (no adaptation)", "MLLS + BCTS", "BN-adapt", "Online EM + BN-adapt", "Label Shift Adapter + BN-adapt",
         "Label Shift Adapter + BN-adapt (prior from BN-adapt)", "TENT", "Online EM + TENT", "Label Shift Adapter + TENT",
         "Label Shift Adapter", "Oracle prior (BCTS, upper bound)"]


def frame(results_root: Path) -> pd.DataFrame:
    rows = []
    for res in load_results(results_root):
        if res.get("benchmark") != "digits-label":
            continue
        for r in res["records"]:
            m = r.get("metrics") or {}
            rows.append({"entry": res["name"], "scenario": r["cell"]["scenario"], "seed": r["cell"]["seed"],
                         "accuracy": 100 * m.get("accuracy", 0.0) if r["status"] == "ok" else 0.0,
                         "prior_l1": m.get("prior_l1")})
    return pd.DataFrame(rows)


def table(df: pd.DataFrame, entries: list[str], scenarios: list[str]) -> pd.DataFrame:
    sub = df[df.entry.isin(entries) & df.scenario.isin(scenarios)]
    t = sub.pivot_table(index="scenario", columns="entry", values="accuracy", aggfunc="mean")
    t = t.reindex(index=scenarios, columns=[e for e in entries if e in t.columns])
    t.loc["mean"] = t.mean()
    return t.round(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=Path("leaderboard/results"))
    args = ap.parse_args()
    df = frame(args.results)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 20)
    scen = sorted(df.scenario.unique())
    dirichlet = [s for s in scen if s.startswith("dirichlet-a0.1")]
    joint = [s for s in scen if s.startswith("joint-")]
    label = [s for s in scen if not s.startswith("joint-") and s != "clean"]
    print("Dirichlet(0.1) draws, accuracy %:\n", table(df, DIRICHLET, dirichlet).T.to_string(), "\n")
    print("Joint covariate x Dirichlet(0.1), accuracy %:\n", table(df, JOINT, joint).T.to_string(), "\n")
    print("All label scenarios, accuracy %:\n", table(df, sorted(df.entry.unique()), label).T.to_string(), "\n")
    l1 = df.dropna(subset=["prior_l1"]).groupby("entry").prior_l1.agg(["mean", "median"]).round(3)
    print("Prior estimation L1 over scenarios with a recorded target prior:\n", l1.to_string())


if __name__ == "__main__":
    main()
