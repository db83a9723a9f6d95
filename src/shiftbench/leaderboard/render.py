"""Render the leaderboard as a self-contained static site (Jinja2 with autoescape; no CDN, no network).

Layout of site_dir:
  index.html                       per benchmark: its boards (by model, family, protocol) and every entry's
                                   headline number per family, with trust warnings
  results.csv, scenarios.csv       exports (fractions; text cells safe for spreadsheets)
  static/                          leaderboard.js (sorting, filtering), style.css
  <benchmark>/<family>.html        the family's boards: one per (model, protocol), tables with mean ± std
                                   over seeds, ranks with ties, published rows with deltas, plots
  <benchmark>/exports/<board>.{csv,md,tex}   each board's tables (the .tex in the paper layout)
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

from ..core.version import __version__
from ..core.errors import UserError
from ..core.params import short_repr
from ..core.paths import public_paths
from ..shifts import FAMILIES
from . import figures, plots
from .aggregate import HEADLINE, cells_frame, load_results, numeric_metrics, scenario_table, summary_table
from .boards import Board, build_boards, segments_frame
from .checks import annotate, current_benchmark_hashes
from .describe import table_summary
from .export import NOTE, table_frame, table_latex, table_markdown, to_csv
from .format import is_number, metric_label, metric_value, pct, points, shown, sort_key, with_spread
from .published import Published, load_published, published_dir
from .site_inputs import INPUTS_FILE, site_inputs_key, unchanged

MARKER = ".shiftbench-site"
LEGACY = {"index.html"}  # what the first, single-page leaderboard wrote (no marker)
PROVENANCE_ORDER = ("shiftbench_version", "git_commit", "torch_version", "python_version", "device", "data_sha256",
                    "checkpoint_sha256", "model_key")
STATIC_FILES = ("leaderboard.js", "style.css")
HIDDEN_METRICS = {"error"}  # = 1 - accuracy; stated once in the note instead of a column everywhere


def environment() -> Environment:
    env = Environment(loader=PackageLoader("shiftbench.leaderboard", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=pct, metric=lambda x, name: metric_value(name, x), sortkey=sort_key, label=metric_label,
                       points=points, shown=lambda x, name: shown(name, x))
    env.globals.update(version=__version__, families=FAMILIES, note=NOTE, headline=HEADLINE,
                       with_spread=with_spread, is_number=is_number)
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
    """id -> name for tables and plots; a name that several files of one benchmark share gets its file stem appended."""
    names = [(r["benchmark"], r["name"]) for r in results]
    return {r["id"]: r["name"] if names.count((r["benchmark"], r["name"])) == 1
            else f"{r['name']} [{r['id'].split('/')[-1]}]" for r in results}


def group_sizes(results: list[dict[str, Any]], benchmark: str, scenarios: list[str]) -> list[dict[str, Any]]:
    """Per scenario: the test groups' sizes as the shift reported them (metrics.group_sizes), seed 0 first."""
    out = []
    for scenario in scenarios:
        found = None
        for res in results:
            if res["benchmark"] != benchmark:
                continue
            for rec in sorted(res.get("records", []), key=lambda r: (r.get("cell") or {}).get("seed", 0)):
                sizes = (rec.get("metrics") or {}).get("group_sizes")
                if (rec.get("cell") or {}).get("scenario") == scenario and isinstance(sizes, dict) and sizes:
                    found = sizes
                    break
            if found:
                break
        if found:
            items = sorted(found.items(), key=lambda kv: str(kv[0]))
            out.append({"scenario": scenario, "groups": items, "smallest": min(int(v) for _, v in items)})
    return out


class SiteBuilder:
    def __init__(self, out: Path, results: list[dict[str, Any]], published: list[Published]):
        self.out = out
        self.env = environment()
        self.results = results
        self.by_id = {r["id"]: r for r in results}
        entries = pd.Series([r["benchmark"] for r in results], dtype=object).value_counts().to_dict()
        names = sorted(set(entries) | {p.benchmark for p in published}, key=lambda b: (-entries.get(b, 0), b))
        self.specs = {b: _load_spec(b) for b in names}  # the most-entered benchmark first, published-only last
        scen_specs = {b: {s.name: s for s in spec.scenarios} if spec else {} for b, spec in self.specs.items()}
        self.cells = cells_frame(results, scen_specs)
        self.summary = summary_table(results)
        self.per_scenario = scenario_table(results)
        self.labels = entry_labels(results)
        chains = {b: {n: s.stream.played_chains(s.segment_chains()) for n, s in sc.items()} for b, sc in scen_specs.items()}
        plays = {b: {n: s.stream.layout() for n, s in sc.items()} for b, sc in scen_specs.items()}
        self.boards = build_boards(results, self.cells, segments_frame(results), published, chains, self.labels, plays)
        self.online = figures.online_frame(results)

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
        benches = [self.benchmark(b) for b in self.specs]
        self.write("index.html", "index.html.j2", benchmarks=benches, page="index")
        (self.out / "results.csv").write_text(to_csv(self.summary))
        (self.out / "scenarios.csv").write_text(to_csv(self.per_scenario))
        (self.out / MARKER).write_text("built by shiftbench leaderboard; this folder is replaced on every build\n")

    def benchmark(self, bench: str) -> dict[str, Any]:
        results = [r for r in self.results if r["benchmark"] == bench]
        rows = self.summary[self.summary.benchmark == bench].to_dict("records")
        folder = path_part(bench)
        spec = self.specs.get(bench)
        for row in rows:
            res = self.by_id[row["id"]]
            row["href"] = f"{folder}/entries/{path_part(row['id'].split('/')[-1])}.html"
            row["flags"] = res.get("flags", [])
            row["oracle"] = res.get("oracle", False)
        boards = [b for b in self.boards if b.benchmark == bench]
        present = [f for f in FAMILIES if any(b.family == f for b in boards)]
        seeds = sorted({r["seeds"] for r in rows})
        info = {"name": bench, "folder": folder, "rows": rows, "description": spec.description if spec else "",
                "hash": spec.content_hash() if spec else None, "flagged": [r for r in rows if r["flags"]],
                "views": [{"family": f, "href": f"{folder}/{f}.html"} for f in present],
                "boards": [self.board_link(b, folder) for b in boards], "has_results": bool(results),
                "mixed_seeds": len(seeds) > 1, "seed_counts": seeds,
                "models": sorted({b.model_label for b in boards}), "protocols": sorted({b.protocol for b in boards})}
        for family in present:
            self.family_page(info, family, [b for b in boards if b.family == family])
        if results:
            self.scenarios_page(info)
            for row in rows:
                self.entry_page(info, self.by_id[row["id"]], row)
        return info

    def board_link(self, board: Board, folder: str) -> dict[str, Any]:
        first = board.tables[0] if board.tables else None
        leaders = [r for r in first.rows if r.place and r.place.rank == 1] if first else []
        best = leaders[0] if leaders else None
        return {"href": f"{folder}/{board.family}.html#board-{board.slug}", "family": board.family,
                "protocol": board.protocol, "model": board.model_label, "published_only": board.published_only,
                "entries": len({r.id for t in board.tables for r in t.entries}),
                "published": sum(len(t.published_rows) for t in board.tables),
                "best": (best.label if len(leaders) == 1 else f"{len(leaders)} entries tied") if best else None,
                "best_value": with_spread(first.metric, best.mean.mean,
                                                                                best.mean.std, best.mean.n) if best else "",
                "table": first.title if first else ""}

    def board_context(self, board: Board, folder: str) -> dict[str, Any]:
        plot_dir = self.out / folder / "plots"
        figs = []
        if board.family == "covariate" and not board.published_only:
            fig = figures.severity_figure(board, self.cells, self.labels, plot_dir / f"{board.slug}-severity.svg")
            figs += [fig] if fig else []
            figs += figures.online_figures(board, self.online, self.results, self.labels, plot_dir)
        elif board.family == "label":
            fig = figures.prior_window_figure(board, self.cells, self.by_id, plot_dir / f"{board.slug}-prior-window.svg")
            figs += [fig] if fig else []
        elif board.family == "natural" and not board.published_only:
            fig = figures.accuracy_on_the_line(board, self.results, self.labels,
                                               plot_dir / f"{board.slug}-accuracy-on-the-line.svg")
            figs += [fig] if fig else []
        elif board.family in ("concept", "translation"):
            fig = figures.points_figure(board, plot_dir / f"{board.slug}-points.svg")
            figs += [fig] if fig else []
        exports = self.out / folder / "exports"
        exports.mkdir(parents=True, exist_ok=True)
        if board.tables:
            frame = pd.concat([table_frame(board, t) for t in board.tables], ignore_index=True)
            (exports / f"{board.slug}.csv").write_text(to_csv(frame))
            (exports / f"{board.slug}.md").write_text("\n".join(table_markdown(board, t) for t in board.tables))
            (exports / f"{board.slug}.tex").write_text("% needs \\usepackage{booktabs}\n"
                                                       + "\n".join(table_latex(board, t) for t in board.tables))
        hrefs = {r["id"]: f"entries/{path_part(r['id'].split('/')[-1])}.html" for r in self.results}
        tables = [{"t": t, "summary": table_summary(t), "rows": [self.row_context(t, r, hrefs) for r in t.rows],
                   "citations": sorted({(r.published.citation, r.published.source, safe_url(r.published.url),
                                         r.published.setting.notes) for r in t.published_rows if r.published})}
                  for t in board.tables]
        sizes = group_sizes(self.results, board.benchmark, board.scenarios) if board.family == "concept" else []
        return {"board": board, "tables": tables, "figures": figs, "group_sizes": sizes,
                "exports": f"exports/{board.slug}"}

    def row_context(self, table, row, hrefs) -> dict[str, Any]:
        cells = []
        for c in table.columns:
            stat = row.cells.get(c.key)
            failed = row.failed.get(c.key, 0)
            cells.append({"text": with_spread(table.metric, stat.mean, stat.std, stat.n) if stat else "",
                          "n": stat.n if stat else 0, "sort": sort_key(stat.mean) if stat else "",
                          "failed": failed, "delta": points(row.deltas.get(c.key)) if row.deltas else ""})
        mean = {"text": with_spread(table.metric, row.mean.mean, row.mean.std, row.mean.n), "n": row.mean.n,
                "sort": sort_key(row.mean.mean), "delta": points(row.delta_mean)}
        return {"row": row, "cells": cells, "mean": mean, "href": hrefs.get(row.id) if row.id else None}

    def family_page(self, info: dict[str, Any], family: str, boards: list[Board]) -> None:
        folder = info["folder"]
        contexts = [self.board_context(b, folder) for b in boards]
        self.write(f"{folder}/{family}.html", "family.html.j2", bench=info, family=family, page=family, boards=contexts,
                   models=sorted({b.model_label for b in boards}), protocols=sorted({b.protocol for b in boards}))

    def scenarios_page(self, info) -> None:
        folder, bench = info["folder"], info["name"]
        scen = self.per_scenario[self.per_scenario.benchmark == bench]
        ordered = [r["id"] for r in info["rows"]]
        spec = self.specs.get(bench)
        rank = scenario_order({s.name: s for s in spec.scenarios} if spec else {}, scen)
        scenarios = sorted(dict.fromkeys(scen.scenario), key=lambda s: rank.get(s, len(rank)))
        acc = scen.pivot_table(index="scenario", columns="id", values="accuracy", aggfunc="mean", dropna=False)
        acc = acc.reindex(index=scenarios, columns=[i for i in ordered if i in set(scen.id)])
        figs = []
        if not acc.empty:
            plots.save(plots.heatmap_figure(100 * acc.rename(columns=self.labels)), self.out / folder / "plots" / "all-heatmap.svg")
            figs.append({"src": "plots/all-heatmap.svg", "caption": "Accuracy (%) per scenario and entry (mean over seeds).",
                         "alt": f"Heat map of accuracy for {acc.shape[0]} scenarios and {acc.shape[1]} entries."})
        families = scen.drop_duplicates("scenario").set_index("scenario").family.to_dict()
        std = scen.pivot_table(index="scenario", columns="id", values="accuracy_std", aggfunc="mean", dropna=False)
        n = scen.pivot_table(index="scenario", columns="id", values="seeds", aggfunc="max", dropna=False)
        failed = scen.groupby("scenario").failed.sum()
        rows = []
        for s in acc.index:
            values = []
            for i in acc.columns:
                m = acc.loc[s, i]
                sd = std.loc[s, i] if s in std.index and i in std.columns else float("nan")
                k = int(n.loc[s, i]) if s in n.index and i in n.columns and n.loc[s, i] == n.loc[s, i] else 0
                values.append((with_spread("accuracy", m, sd, k), sort_key(m)))
            rows.append({"scenario": s, "family": families.get(s, ""), "values": values, "failed": int(failed.get(s, 0))})
        self.write(f"{folder}/scenarios.html", "scenarios.html.j2", bench=info, page="scenarios",
                   columns=[self.labels[i] for i in acc.columns], acc_rows=rows, figures=figs)

    def entry_page(self, info, result, row) -> None:
        folder = info["folder"]
        stem = path_part(result["id"].split("/")[-1])
        spec = self.specs.get(info["name"])
        order = {s.name: i for i, s in enumerate(spec.scenarios)} if spec else {}
        records = sorted([r for r in result.get("records", []) if isinstance(r, dict)], key=lambda r: (
            order.get(r.get("cell", {}).get("scenario"), len(order)), str(r.get("cell", {}).get("scenario")),
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
        boards = [self.board_link(b, "..") for b in self.boards
                  if b.benchmark == info["name"] and any(r.id == result["id"] for t in b.tables for r in t.entries)]
        headline = [{"family": f, "what": HEADLINE[f][1], "value": with_spread(HEADLINE[f][0], row[f], row[f"{f}_std"],
                                                                              row["seeds"])}
                    for f in (*FAMILIES, "clean") if is_number(row[f])]
        self.write(f"{folder}/entries/{stem}.html", "entry.html.j2", bench=info, page="entry", row=row, result=result,
                   submission_yaml=sub_yaml, url=safe_url((submission or {}).get("url") if isinstance(submission, dict) else None),
                   metrics=metrics, cells=cells, failures=failures, provenance=provenance_rows(result),
                   has_segments=any(c["segments"] for c in cells), has_info=any(c["method_info"] for c in cells),
                   raw=f"{stem}.json", headline=headline, boards=boards)


def scenario_order(specs: dict[str, Any], scen: pd.DataFrame) -> dict[str, int]:
    """Scenario -> position: the benchmark definition's order, then (for scenarios it no longer has) by family and name."""
    family_rank = {f: i for i, f in enumerate(("clean", *FAMILIES))}
    known = list(specs)
    extra = sorted({(family_rank.get(f, 99), s) for s, f in zip(scen.scenario, scen.family) if s not in specs})
    return {s: i for i, s in enumerate(known + [s for _, s in extra])}


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


def load_boards(results_root: Path, published_folder: Path | None = None) -> tuple[pd.DataFrame, list[Board]]:
    """(the per-entry summary, every board) for the exports the command line prints."""
    results = load_annotated(results_root)
    builder = SiteBuilder(Path("."), results, load_published(published_folder))
    return builder.summary, builder.boards


def build_site(results_root: Path, site_dir: Path, benchmark_hashes: dict[str, str | None] | None = None,
               published_folder: Path | None = None) -> Path:
    """Write the whole site into site_dir (replacing a previous build); returns the path of index.html.
    A site built from the same inputs (site_inputs.py) is kept as it is.

    published_folder: the reference numbers (default leaderboard/published of the project)."""
    site_dir = Path(site_dir)
    if site_dir.exists() and not site_dir.is_dir():
        raise UserError("is a file; the site needs a folder (choose another --site)", source=str(site_dir))
    ours = site_dir.is_dir() and ((site_dir / MARKER).exists() or {p.name for p in site_dir.iterdir()} <= LEGACY)
    if site_dir.exists() and not ours:
        raise UserError("refusing to replace a folder that shiftbench did not build (no .shiftbench-site marker); "
                        "choose an empty or new --site folder", source=str(site_dir))
    published_folder = published_dir() if published_folder is None else Path(published_folder)
    key = site_inputs_key(results_root, published_folder, benchmark_hashes)
    if ours and unchanged(site_dir, key):
        return site_dir / "index.html"
    results = load_annotated(results_root, benchmark_hashes)
    published = load_published(published_folder)
    try:
        site_dir.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_builds(site_dir)
        tmp = Path(tempfile.mkdtemp(dir=site_dir.parent, prefix=f".{site_dir.name}.building-{os.getpid()}-"))
    except OSError as e:
        raise UserError(f"cannot build the site here ({e.strerror})", source=str(site_dir)) from None
    tmp.chmod(0o755)
    try:
        SiteBuilder(tmp, results, published).build()
        (tmp / INPUTS_FILE).write_text(key + "\n")
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
