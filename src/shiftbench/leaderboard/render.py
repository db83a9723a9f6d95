"""Render the leaderboard as a self-contained static site (Jinja2 with autoescape; no CDN, no network).

Layout of site_dir:
  index.html                       every benchmark's ranked table, with trust warnings
  results.csv, scenarios.csv       exports (accuracies as fractions)
  static/                          leaderboard.js (sorting, filtering), style.css
  <benchmark>/<family>.html        per-family view: accuracy matrix, all metrics, SVG plots
  <benchmark>/scenarios.html       every scenario x entry, with the heat map
  <benchmark>/entries/<id>.html    one page per entry (+ <id>.json, the result file as it was read)
  <benchmark>/plots/*.svg

The site is built in a fresh folder beside site_dir and swapped in at the end,
so a failed build leaves the previous site intact and deleted entries vanish.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from .. import __version__
from ..core.errors import UserError
from ..core.params import short_repr
from ..core.paths import public_paths
from ..shifts import FAMILIES
from . import plots
from .aggregate import load_results, numeric_metrics, scenario_table, summary_table
from .checks import annotate, current_benchmark_hashes
from .export import NOTE, to_csv
from .format import LOWER_IS_BETTER, PERCENT_METRICS, metric_label, metric_order, metric_value, pct, sort_key

MARKER = ".shiftbench-site"
LEGACY = {"index.html"}  # what the first, single-page leaderboard wrote (no marker)
PROVENANCE_ORDER = ("shiftbench_version", "git_commit", "torch_version", "python_version", "device", "data_sha256",
                    "checkpoint_sha256", "model_key")
STATIC_FILES = ("leaderboard.js", "style.css")
# Per family, the metric that deserves its own plot beside accuracy (when present in the results).
FAMILY_PLOTS = {"translation": ["consistency", "fooling_rate"], "label": ["prior_l1"],
                "concept": ["worst_group_accuracy"]}
HIDDEN_METRICS = {"error"}
NOT_METRICS = {"id", "entry", "benchmark", "scenario", "family", "failed", "seeds", "accuracy", "seconds"}  # = 1 - accuracy; stated once in the note instead of a column everywhere


def environment() -> Environment:
    env = Environment(loader=PackageLoader("shiftbench.leaderboard", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, metric=lambda x, name: metric_value(name, x), sortkey=sort_key,
                       label=metric_label)
    env.globals.update(version=__version__, families=FAMILIES, note=NOTE)
    return env


def path_part(name: str) -> str:
    """A file-name-safe form of a benchmark name or file stem."""
    s = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in str(name)).strip(".")
    return s or "_"


def safe_url(url: Any) -> str | None:
    """Only http(s) links are rendered as links; anything else (javascript:, data:) stays text."""
    if not isinstance(url, str):
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def provenance_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each provenance field with its distinct values across the entry's cells (and how many cells have each)."""
    fields: dict[str, dict[str, int]] = {}
    for r in result.get("records", []):
        for k, v in (r.get("provenance") or {}).items():
            if k in ("scenario_sha256", "config_hash", "benchmark_hash"):  # per cell, or shown below
                continue
            text = v if isinstance(v, str) else json.dumps(v)
            fields.setdefault(k, {})
            fields[k][text] = fields[k].get(text, 0) + 1
    seconds = sum(r["seconds"] for r in result.get("records", []) if isinstance(r.get("seconds"), (int, float)))
    order = {k: i for i, k in enumerate(PROVENANCE_ORDER)}
    rows = [{"field": k, "values": list(v.items())}
            for k, v in sorted(fields.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))]
    rows.append({"field": "seconds (sum over cells)", "values": [(f"{seconds:.1f}", None)]})
    return rows


def entry_labels(results: list[dict[str, Any]]) -> dict[str, str]:
    """id -> name for plots and column heads; a name shared by several files gets its file stem appended."""
    names = [r["name"] for r in results]
    return {r["id"]: r["name"] if names.count(r["name"]) == 1 else f"{r['name']} [{r['id'].split('/')[-1]}]"
            for r in results}


class SiteBuilder:
    def __init__(self, out: Path, results: list[dict[str, Any]]):
        self.out = out
        self.env = environment()
        self.results = results
        self.summary = summary_table(results)
        self.per_scenario = scenario_table(results)

    def write(self, rel: str, template: str, **context) -> None:
        depth = rel.count("/")
        html = self.env.get_template(template).render(root="../" * depth, **context)
        target = self.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")

    def build(self) -> None:
        static = self.out / "static"
        static.mkdir(parents=True)
        for name in STATIC_FILES:
            (static / name).write_bytes(resources.files("shiftbench.leaderboard").joinpath("static", name).read_bytes())
        benches = [self.benchmark(b) for b in sorted({r["benchmark"] for r in self.results})]
        self.write("index.html", "index.html.j2", benchmarks=benches, page="index")
        (self.out / "results.csv").write_text(to_csv(self.summary))
        (self.out / "scenarios.csv").write_text(to_csv(self.per_scenario))
        (self.out / MARKER).write_text("built by shiftbench leaderboard; this folder is replaced on every build\n")

    def benchmark(self, bench: str) -> dict[str, Any]:
        results = [r for r in self.results if r["benchmark"] == bench]
        rows = self.summary[self.summary.benchmark == bench].to_dict("records")
        folder = path_part(bench)
        spec = _load_spec(bench)
        by_id = {r["id"]: r for r in results}
        for row in rows:
            res = by_id[row["id"]]
            row["href"] = f"{folder}/entries/{path_part(row['id'].split('/')[-1])}.html"
            row["flags"] = res.get("flags", [])
            row["oracle"] = res.get("oracle", False)
            row["rank"] = None if pd.isna(row["rank"]) else int(row["rank"])
        info = {"name": bench, "folder": folder, "rows": rows, "description": spec.description if spec else "",
                "hash": spec.content_hash() if spec else None,
                "flagged": [r for r in rows if r["flags"]], "views": []}
        ordered = [r["id"] for r in rows]
        labels = entry_labels([by_id[i] for i in ordered])
        specs = {s.name: s for s in spec.scenarios} if spec else {}
        scen = self.per_scenario[self.per_scenario.benchmark == bench]
        self.scenario_rank = scenario_order(specs, scen)
        scen = scen.assign(_s=scen.scenario.map(self.scenario_rank), _e=scen.id.map(ordered.index))
        scen = scen.sort_values(["_s", "_e"], kind="stable").drop(columns=["_s", "_e"])
        mark_best(rows)
        present = [f for f in FAMILIES if (scen.family == f).any()]
        info["views"] = [{"family": f, "href": f"{folder}/{f}.html"} for f in present]  # before any page links them
        for family in present:
            self.family_page(info, family, scen[scen.family == family], ordered, labels, specs, scen)
        self.scenarios_page(info, scen, ordered, labels)
        for row in rows:
            self.entry_page(info, by_id[row["id"]], row)
        return info

    def matrix(self, frame: pd.DataFrame, ordered: list[str], labels: dict[str, str], metric: str) -> pd.DataFrame:
        scenarios = list(dict.fromkeys(frame.scenario))
        m = frame.pivot_table(index="scenario", columns="id", values=metric, aggfunc="mean", dropna=False)
        m = m.reindex(index=scenarios, columns=[i for i in ordered if i in set(frame.id)])
        return m.rename(columns=labels)

    def matrix_rows(self, m: pd.DataFrame, metric: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
        failed = frame.groupby("scenario").failed.sum() if not frame.empty else {}
        return [{"scenario": s, "values": [(metric_value(metric, v), sort_key(v)) for v in m.loc[s].tolist()],
                 "failed": int(failed.get(s, 0))} for s in m.index]

    def family_page(self, info, family, fam, ordered, labels, specs, scen) -> None:
        folder = info["folder"]
        figures = []
        acc = self.matrix(fam, ordered, labels, "accuracy")
        if family == "covariate":
            points = [{"id": r.id, "scenario": r.scenario, "accuracy": r.accuracy, "severity": sev[1]}
                      for r in fam.itertuples() if (sev := plots.severity_of(r.scenario, specs.get(r.scenario) if specs else None))]
            if points:
                clean = scen[scen.family == "clean"].groupby("id").accuracy.mean().to_dict()
                plots.severity_plot(pd.DataFrame(points), clean, {i: labels[i] for i in ordered},
                                    self.out / folder / "plots" / "covariate-severity.svg")
                figures.append({"src": "plots/covariate-severity.svg",
                                "caption": "Accuracy vs severity: each point is the mean accuracy over the corruptions "
                                           "at that severity; severity 0 is the clean test split. Sequences are left out."})
        for metric in FAMILY_PLOTS.get(family, []):
            if metric in fam and fam[metric].notna().any():
                m = self.matrix(fam, ordered, labels, metric)
                m = 100 * m if metric in PERCENT_METRICS else m
                plots.point_plot(m, self.out / folder / "plots" / f"{family}-{metric}.svg", ylabel=metric_label(metric))
                better = "lower" if metric in LOWER_IS_BETTER else "higher"
                figures.append({"src": f"plots/{family}-{metric}.svg",
                                "caption": f"{metric_label(metric)} per scenario ({better} is better)."})
        metrics = metric_order(["accuracy"] + [c for c in fam.columns
                                               if c not in NOT_METRICS | HIDDEN_METRICS and fam[c].notna().any()])
        long_rows = [{"scenario": r["scenario"], "entry": r["entry"], "id": r["id"], "failed": r["failed"],
                      "values": [(metric_value(m, r[m]), sort_key(r[m])) for m in metrics]}
                     for r in fam.to_dict("records")]
        hrefs = {row["id"]: row["href"].split("/", 1)[1] for row in info["rows"]}
        self.write(f"{folder}/{family}.html", "family.html.j2", bench=info, family=family, page=family,
                   columns=list(acc.columns), acc_rows=self.matrix_rows(acc, "accuracy", fam), figures=figures,
                   metrics=metrics, long_rows=long_rows, hrefs=hrefs)

    def scenarios_page(self, info, scen, ordered, labels) -> None:
        folder = info["folder"]
        acc = self.matrix(scen, ordered, labels, "accuracy")
        figures = []
        if not acc.empty:
            plots.heatmap(100 * acc, self.out / folder / "plots" / "all-heatmap.svg")
            figures.append({"src": "plots/all-heatmap.svg", "caption": "Accuracy (%) per scenario and entry."})
        families = scen.drop_duplicates("scenario").set_index("scenario").family.to_dict()
        rows = self.matrix_rows(acc, "accuracy", scen)
        for r in rows:
            r["family"] = families.get(r["scenario"], "")
        self.write(f"{folder}/scenarios.html", "scenarios.html.j2", bench=info, page="scenarios",
                   columns=list(acc.columns), acc_rows=rows, figures=figures)

    def entry_page(self, info, result, row) -> None:
        folder = info["folder"]
        stem = path_part(result["id"].split("/")[-1])
        last = len(self.scenario_rank)
        records = sorted(result.get("records", []), key=lambda r: (
            self.scenario_rank.get(r.get("cell", {}).get("scenario"), last), str(r.get("cell", {}).get("scenario")),
            r.get("cell", {}).get("seed", 0)))
        metrics = [m for m in numeric_metrics(records) if m not in HIDDEN_METRICS]
        cells = []
        for r in records:
            c, m = r.get("cell", {}), r.get("metrics") or {}
            ok = r.get("status") == "ok"
            segs = [s.get("accuracy") for s in r.get("segments") or [] if isinstance(s, dict)]
            info_text = json.dumps(r.get("method_info"), sort_keys=True, default=str) if r.get("method_info") else ""
            cells.append({"scenario": c.get("scenario"), "family": c.get("family"), "seed": c.get("seed"),
                          "status": r.get("status"), "ok": ok,
                          "values": [(metric_value(k, m.get(k)) if ok else "", sort_key(m.get(k)) if ok else "")
                                     for k in metrics],
                          "segments": " · ".join(pct(a) for a in segs), "method_info": info_text,
                          "seconds": (metric_value("seconds", r.get("seconds")), sort_key(r.get("seconds")))})
        failures = [{"scenario": r.get("cell", {}).get("scenario"), "seed": r.get("cell", {}).get("seed"),
                     "error": public_paths(str(r.get("error") or "(no message)")),
                     "traceback": public_paths(str(r.get("traceback") or ""))}
                    for r in records if r.get("status") != "ok"]
        submission = result.get("submission")
        sub_yaml = yaml.safe_dump(submission, sort_keys=False, allow_unicode=True) if isinstance(submission, dict) else ""
        raw = self.out / folder / "entries" / f"{stem}.json"
        raw.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result["path"], raw)
        self.write(f"{folder}/entries/{stem}.html", "entry.html.j2", bench=info, page="entry", row=row, result=result,
                   submission_yaml=sub_yaml, url=safe_url((submission or {}).get("url") if isinstance(submission, dict) else None),
                   metrics=metrics, cells=cells, failures=failures, provenance=provenance_rows(result),
                   has_segments=any(c["segments"] for c in cells), has_info=any(c["method_info"] for c in cells),
                   raw=f"{stem}.json", family_scores=[(f, row.get(f)) for f in (*FAMILIES, "clean")])


def scenario_order(specs: dict[str, Any], scen: pd.DataFrame) -> dict[str, int]:
    """Scenario -> position: the benchmark definition's order, then (for scenarios it no longer has) by family and name."""
    family_rank = {f: i for i, f in enumerate(("clean", *FAMILIES))}
    known = list(specs)
    extra = sorted({(family_rank.get(f, 99), s) for s, f in zip(scen.scenario, scen.family) if s not in specs})
    return {s: i for i, s in enumerate(known + [s for _, s in extra])}


def mark_best(rows: list[dict[str, Any]]) -> None:
    """row['best']: the score columns where this ranked row has the highest value among ranked rows."""
    ranked = [r for r in rows if r["rank"] is not None]
    for r in rows:
        r["best"] = set()
    for col in ("score", *FAMILIES, "clean"):
        values = [r[col] for r in ranked if r[col] == r[col]]
        if len(values) > 1:
            top = max(values)
            for r in ranked:
                if r[col] == top:
                    r["best"].add(col)


def _load_spec(bench: str):
    from ..run.benchmark import load_benchmark

    try:
        return load_benchmark(bench)
    except UserError:
        return None


def shape_problem(result: dict[str, Any]) -> str | None:
    """Why a result file read as JSON cannot be shown as an entry (None: it can)."""
    records = result.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return "records is not a list of objects"
    for r in records:
        if not isinstance(r.get("cell", {}), dict):
            return "a record's cell is not an object"
        for name, kind in (("metrics", dict), ("provenance", dict), ("segments", list)):
            if r.get(name) is not None and not isinstance(r[name], kind):
                return f"a record's {name} is not a{'n object' if kind is dict else ' list'}"
        cell = r.get("cell", {})
        for name, kind in (("scenario", str), ("family", str), ("seed", int)):
            if cell.get(name) is not None and (not isinstance(cell[name], kind) or isinstance(cell[name], bool)):
                return f"a record's cell.{name} is not a{'n integer' if kind is int else ' string'}"
    if result.get("submission") is not None and not isinstance(result["submission"], dict):
        return "submission is not an object"
    return None


def load_annotated(results_root: Path, benchmark_hashes: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Result files with their trust flags, checked against the current benchmark definitions.

    A file whose shape is wrong (records that are not objects, and the like) is listed as
    unreadable with no records, never allowed to stop the build of everyone else's pages."""
    results = load_results(results_root)
    for res in results:
        problem = shape_problem(res)
        if problem:
            res.update(records=[], integrity=f"unreadable: {problem}", submission=None)
        for name in ("method", "protocol"):
            if name in res and not isinstance(res[name], str):
                res[name] = short_repr(res[name])
    if benchmark_hashes is None:
        benchmark_hashes = current_benchmark_hashes({r["benchmark"] for r in results})
    return annotate(results, benchmark_hashes)


def build_site(results_root: Path, site_dir: Path, benchmark_hashes: dict[str, str | None] | None = None) -> Path:
    """Write the whole site into site_dir (replacing a previous build); returns the path of index.html."""
    site_dir = Path(site_dir)
    if site_dir.exists() and not site_dir.is_dir():
        raise UserError("is a file; the site needs a folder (choose another --site)", source=str(site_dir))
    ours = site_dir.is_dir() and ((site_dir / MARKER).exists() or {p.name for p in site_dir.iterdir()} <= LEGACY)
    if site_dir.exists() and not ours:
        raise UserError("refusing to replace a folder that shiftbench did not build (no .shiftbench-site marker); "
                        "choose an empty or new --site folder", source=str(site_dir))
    results = load_annotated(results_root, benchmark_hashes)
    try:
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_builds(site_dir)
        tmp = Path(tempfile.mkdtemp(dir=site_dir.parent, prefix=f".{site_dir.name}.building-{os.getpid()}-"))
    except OSError as e:
        raise UserError(f"cannot build the site here ({e.strerror})", source=str(site_dir)) from None
    tmp.chmod(0o755)
    try:
        SiteBuilder(tmp, results).build()
        old = None
        if site_dir.exists():
            old = site_dir.with_name(f".{site_dir.name}.old-{os.getpid()}-{tmp.name.rsplit('-', 1)[-1]}")
            site_dir.rename(old)
        tmp.rename(site_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the site ({e.strerror}); the previous site is unchanged",
                        source=str(e.filename or site_dir)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return site_dir / "index.html"


def remove_abandoned_builds(site_dir: Path, stale_after_s: float = 3600) -> None:
    """Delete the half-built and old copies of site_dir that a killed build left beside it: those whose
    process is gone (their names carry its pid), or without a pid and older than stale_after_s."""
    for path in site_dir.parent.glob(f".{site_dir.name}.*-*"):
        kind, _, rest = path.name[len(site_dir.name) + 2:].partition("-")
        if kind not in ("building", "old") or not path.is_dir() or path.is_symlink():
            continue
        pid = rest.split("-", 1)[0]
        if pid.isdigit():
            if _alive(int(pid)):
                continue
        elif time.time() - path.stat().st_mtime < stale_after_s:
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
