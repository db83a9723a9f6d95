"""From checked submissions to the grid of cells, each with its full content key.

A cell's key covers the code it runs through one hash per component (core/code_identity.py):
  evaluator  run/compute.py and what it imports (the stream, protocols, metrics, Method base, forward)
  method     the method's module and its imports (for a composite, its base's too)
  shifts     the modules of the shifts its scenario applies
  model      the architecture's module
so editing one method's file recomputes that method's cells, editing a shift the scenarios that
use it, and editing the evaluator every cell.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..core.version import __version__
from ..core.code_identity import code_hash
from ..methods import method_classes
from ..models import ARCHITECTURES
from ..shifts import get_shift
from .benchmark import Benchmark
from .cell import Cell
from .submission import CheckedSubmission
from .workspace import Workspace

EVALUATOR = ("shiftbench.run.compute",)


def cells_of(checked: CheckedSubmission) -> list[Cell]:
    """The submission's cells (seed-major), before the facts that need data and models are filled in;
    none for the scenarios its method cannot run (checked.unsupported)."""
    sub, bench = checked.submission, checked.benchmark
    return [
        Cell(benchmark=bench.name, scenario=s.name, family=s.family, spec=s.resolved(), dataset=bench.dataset,
             model=bench.model, training=checked.training, method=sub.method, params=checked.params,
             protocol=sub.protocol, seed=seed, batch_size=bench.batch_size_of(s), version=__version__)
        for seed in sub.seeds for s in bench.scenarios if s.name not in checked.unsupported
    ]


def scenario_cell(bench: Benchmark, scenario: str, *, method: str = "source", params: dict[str, Any] | None = None,
                  protocol: str = "per_scenario", seed: int = 0) -> Cell:
    """A cell of one scenario, its facts not yet filled: enough for a Workspace to build its stream
    and source model (scripts and tests that look at one scenario use it)."""
    s = bench.scenario(scenario)
    return Cell(benchmark=bench.name, scenario=s.name, family=s.family, spec=s.resolved(), dataset=bench.dataset,
                model=bench.model, training=bench.training, method=method, params=params or {}, protocol=protocol,
                seed=seed, batch_size=bench.batch_size_of(s), version=__version__)


def code_identity(cell: Cell, memo: dict[Any, str] | None = None) -> dict[str, str]:
    memo = {} if memo is None else memo
    order = cell.spec["stream"]["label_order"]  # the stream's order is a shift too
    chains = cell.spec["segments"] + [cell.spec["train_shifts"]] + ([[order]] if order else [])
    shifts = sorted({spec["shift"] for chain in chains for spec in chain})
    parts = {
        "evaluator": ("evaluator",),
        "method": ("method", cell.method, repr(sorted(cell.params.items()))),
        "shifts": ("shifts", *shifts),
        "model": ("model", cell.model.get("arch", "small_cnn")),
    }
    objects = {
        "evaluator": lambda: EVALUATOR,
        "method": lambda: method_classes(cell.method, cell.params),
        "shifts": lambda: [get_shift(name).fn for name in shifts],
        "model": lambda: [ARCHITECTURES.get(cell.model.get("arch", "small_cnn"))],
    }
    out = {}
    for component, key in parts.items():
        if key not in memo:
            memo[key] = code_hash(objects[component]())
        out[component] = memo[key]
    return out


def plan(checked: list[CheckedSubmission], workspace: Workspace) -> dict[str, list[Cell]]:
    """submission path -> its cells with data sha256, checkpoint sha256 and code identity filled
    (training or loading every source model the grid needs, once)."""
    memo: dict[Any, str] = {}
    out = {}
    for c in checked:
        cells = []
        for cell in cells_of(c):
            cell = replace(cell, data_sha256=workspace.cell_data_sha256(cell), code=code_identity(cell, memo))
            if cell.spec.get("dataset"):
                workspace.class_columns(cell)  # a played set of classes the model lacks stops the run here
            cells.append(replace(cell, checkpoint_sha256=workspace.model(cell).sha256))
        out[c.path] = cells
    return out
