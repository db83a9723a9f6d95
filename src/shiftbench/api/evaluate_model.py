"""`shiftbench.evaluate`: evaluate a model with one or more methods on a named benchmark, from Python.

    >>> import shiftbench
    >>> table = shiftbench.evaluate(my_net, methods=["source", "bn_adapt"], benchmark="digits")

It runs exactly what the command line runs: every (scenario, method, seed) is a cell with the
same content key, found in or added to the same cell store, so a notebook and `shiftbench run`
share their work; it returns the cells as a pandas DataFrame, and with `leaderboard=True`
writes one result file per method into the leaderboard and rebuilds the site.

A user's nn.Module is saved to the model cache first (api/user_model.py) and loaded from there
like any checkpoint, so it can run in another process; it takes images in [0, 1] (give
`mean`/`std` to normalise) of the benchmark's size and returns logits.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
from torch import nn

from ..core.errors import UserError
from ..core.hashing import canonical_json
from ..leaderboard.aggregate import load_results, scenario_table
from ..methods import check_method, method_classes
from ..run.benchmark import Benchmark, check_model_spec, load_benchmark
from ..run.runner import RunReport, run_submissions
from ..run.store import Store
from ..run.submission import CheckedSubmission, Submission, model_lacks
from .user_model import save_user_model


def _model_spec(model: Any, bench: Benchmark, head: str | None, mean: Any, std: Any, name: str | None) -> dict[str, Any]:
    if model is None:
        return dict(bench.model)
    if isinstance(model, nn.Module):
        return save_user_model(model, head=head, mean=mean, std=std, name=name)
    if isinstance(model, dict):
        spec = dict(model)
        check_model_spec(spec, source="evaluate(model=...)")
        return spec
    raise UserError(f"model must be an nn.Module, a model spec (dict) or None, got {type(model).__name__}",
                    field="model")


def _scenarios(bench: Benchmark, names: Iterable[str] | None, fixed_weights: bool):
    """The scenarios to run. A given model (fixed weights) cannot serve a scenario that trains its own source
    model on shifted training data (`train_shifts`, e.g. a spurious colour): those are left out, with a warning,
    unless named, which is an error."""
    needs_training = {s.name for s in bench.scenarios if s.train_shifts}
    if names is None:
        if fixed_weights and needs_training:
            warnings.warn(f"left out {len(needs_training)} scenario(s) that train their own source model "
                          f"({', '.join(sorted(needs_training))}): a given model cannot serve them", stacklevel=3)
            return [s for s in bench.scenarios if s.name not in needs_training]
        return bench.scenarios
    wanted = list(names)
    known = {s.name for s in bench.scenarios}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise UserError(f"unknown scenario(s) {', '.join(map(repr, unknown))} in benchmark '{bench.name}'; known: "
                        f"{', '.join(sorted(known))}", field="scenarios")
    trained = sorted(set(wanted) & needs_training) if fixed_weights else []
    if trained:
        raise UserError(f"scenario(s) {', '.join(trained)} train their own source model on shifted data "
                        "(train_shifts); a given model cannot serve them", field="scenarios")
    return [s for s in bench.scenarios if s.name in wanted]


def checked_submissions(model_spec: dict[str, Any], methods: list[str], bench: Benchmark, *, params: dict[str, Any],
                        seeds: list[int], protocol: str, label: str, scenarios) -> list[CheckedSubmission]:
    """One submission per method, on the benchmark with this model (its definition hash unchanged: the
    scenarios are the benchmark's, the model is the entry's and every record names it)."""
    variant = bench.model_copy(update={"model": model_spec, "scenarios": list(scenarios)})
    out = []
    for method in methods:
        raw = {"name": f"{label} · {method}", "method": method, "params": params.get(method, {}),
               "benchmark": bench.name, "seeds": seeds, "protocol": protocol,
               "notes": f"evaluated from Python (shiftbench.evaluate) on model {canonical_json(model_spec)}"}
        sub = Submission(**raw)
        checked = check_method(method, sub.params, source="evaluate(params=...)")
        lacking = model_lacks(sorted({t for cls in method_classes(method, checked) for t in cls.requires}), variant)
        if lacking:  # before any work, as validation says it for a submission
            raise UserError(f"'{method}' cannot run on this model: {lacking}", field="methods")
        out.append(CheckedSubmission(submission=sub, path=f"shiftbench.evaluate({method})", params=checked,
                                     training=bench.training, benchmark=variant, raw=raw))
    return out


def evaluate(model: nn.Module | dict[str, Any] | None = None, methods: str | Iterable[str] = ("source",),
             benchmark: str | Path = "digits", *, params: dict[str, dict[str, Any]] | None = None,
             seeds: Iterable[int] = (0,), protocol: str = "per_scenario", scenarios: Iterable[str] | None = None,
             name: str | None = None, head: str | None = None, mean: Any = None, std: Any = None,
             device: str = "auto", store: str | Path | None = None, leaderboard: bool = False,
             results: str | Path | None = None, progress: bool = False) -> pd.DataFrame:
    """Evaluate `model` with each of `methods` on every scenario of `benchmark`; one row per (method, scenario).

    model: an nn.Module (saved to the model cache, identified by the sha256 of its state dict), a model spec
        such as {"arch": "small_cnn", "width": 16} (trained by the suite, cached), or None for the benchmark's.
    methods: method names (`shiftbench methods`), or import paths 'pkg.module:Class'.
    params: method -> its parameters, e.g. {"tent": {"lr": 1e-4}}.
    scenarios: only these scenarios of the benchmark (default: all).
    name: the entries' name prefix (default: the module's class name, or the benchmark's model).
    head / mean / std: the module's classifier layer (default: its last nn.Linear) and input normalisation.
    store: the cell store (default: the cache's, shared with `shiftbench run`).
    leaderboard: write the result files into leaderboard/results/ (or `results`) and rebuild the site.
    Returns columns entry, method, protocol, scenario, family, seeds, failed, and every metric with its
    standard deviation over seeds (`<metric>_std`); accuracies are fractions.
    """
    from ..leaderboard.render import build_site

    bench = load_benchmark(benchmark)
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods:
        raise UserError("give at least one method", field="methods")
    spec = _model_spec(model, bench, head, mean, std, name)
    label = name or spec.get("name") or spec.get("weights") or spec.get("arch", "model")
    checked = checked_submissions(spec, methods, bench, params=params or {}, seeds=[int(s) for s in seeds],
                                  protocol=protocol, label=str(label),
                                  scenarios=_scenarios(bench, scenarios, any(spec.get(k) for k in ("checkpoint", "weights"))))
    with tempfile.TemporaryDirectory(prefix="shiftbench-evaluate-") as tmp:
        root = Path(results) if results else (Path(tmp) if not leaderboard else None)
        report = run_submissions(checked, device=device, store=Store(Path(store) if store else None),
                                 results_root=root, progress=progress)
        table = _table(report)
        if leaderboard:
            folder = report.result_files[0].parent.parent
            build_site(folder, folder.parent / "site")
    return table


def _table(report: RunReport) -> pd.DataFrame:
    bodies = [r for r in load_results(report.result_files[0].parent.parent)
              if Path(r["path"]).resolve() in {p.resolve() for p in report.result_files}]
    table = scenario_table(bodies)
    metrics = [c for c in table.columns if c not in ("id", "entry", "benchmark", "scenario", "family", "method",
                                                      "protocol", "model", "failed", "seeds")]
    front = ["entry", "method", "protocol", "scenario", "family", "seeds", "failed"]
    return table[front + [m for m in metrics if not m.startswith("seconds")]].reset_index(drop=True)
