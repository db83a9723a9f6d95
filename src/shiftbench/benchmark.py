"""Benchmark definitions (benchmarks/NAME.yaml): a dataset, a source model and named scenarios.

A scenario is a chain of shifts applied to the test split, optionally a chain
applied to the training split (the model trained on it is then specific to the
scenario, as a spurious correlation needs), or several segments played in order
(a sequence, where the continual protocol carries state across segments).
`matrix` expands one scenario template into many: '{c}' in names and shift
parameters takes each value in turn.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import parse_model, read_yaml
from .errors import UserError
from .hashing import config_hash
from .paths import project_root
from .shifts import FAMILIES, check_shift_spec

SCENARIO_FAMILIES = ("clean",) + FAMILIES


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    family: Literal["clean", "covariate", "label", "concept", "translation"]
    description: str = ""
    split: Literal["test", "source_val"] = "test"
    shifts: list[dict[str, Any]] = Field(default_factory=list)
    segments: list[list[dict[str, Any]]] | None = None
    train_shifts: list[dict[str, Any]] = Field(default_factory=list)
    matrix: dict[str, list[Any]] | None = None

    def segment_chains(self) -> list[list[dict[str, Any]]]:
        return self.segments if self.segments is not None else [self.shifts]


class Benchmark(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    dataset: str
    batch_size: int = Field(64, ge=1)
    model: dict[str, Any] = Field(default_factory=lambda: {"arch": "small_cnn"})
    training: dict[str, Any] = Field(default_factory=lambda: {"name": "erm"})
    scenarios: list[ScenarioSpec]

    @field_validator("scenarios")
    @classmethod
    def _expand(cls, scenarios: list[ScenarioSpec]) -> list[ScenarioSpec]:
        out = [s for spec in scenarios for s in expand_matrix(spec)]
        names = [s.name for s in out]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenario names must be unique; repeated: {', '.join(dupes)}")
        return out

    def scenario(self, name: str) -> ScenarioSpec:
        for s in self.scenarios:
            if s.name == name:
                return s
        raise UserError(f"unknown scenario '{name}' in benchmark '{self.name}'")

    def content_hash(self) -> str:
        return config_hash(self.model_dump(mode="json"))


def _substitute(value: Any, binding: dict[str, Any]) -> Any:
    if isinstance(value, str):
        for k, v in binding.items():
            if value == "{" + k + "}":
                return v
        return value.format(**binding) if "{" in value else value
    if isinstance(value, list):
        return [_substitute(v, binding) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, binding) for k, v in value.items()}
    return value


def expand_matrix(spec: ScenarioSpec) -> list[ScenarioSpec]:
    if not spec.matrix:
        return [spec]
    keys = list(spec.matrix)
    raw = spec.model_dump(exclude={"matrix"})
    return [ScenarioSpec(**_substitute(raw, dict(zip(keys, combo))))
            for combo in itertools.product(*(spec.matrix[k] for k in keys))]


def benchmarks_dir() -> Path:
    return project_root() / "benchmarks"


def benchmark_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return benchmarks_dir() / f"{name_or_path}.yaml"


def known_benchmarks() -> list[str]:
    folder = benchmarks_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


_cache: dict[str, Benchmark] = {}


def load_benchmark(name_or_path: str | Path, *, referrer: str | None = None) -> Benchmark:
    """Parse and fully validate a benchmark, including every shift's parameters."""
    path = benchmark_path(name_or_path)
    if not path.exists():
        raise UserError(f"unknown benchmark '{name_or_path}'; known: {', '.join(known_benchmarks()) or 'none'}",
                        source=referrer, field="benchmark" if referrer else None)
    stat = path.stat()
    key = f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"  # an edited file is read again
    if key not in _cache:
        source = str(path)
        bench = parse_model(Benchmark, read_yaml(path), source)
        for s in bench.scenarios:
            for chain in s.segment_chains() + [s.train_shifts]:
                chain[:] = [check_shift_spec(spec, source=f"{source}: scenario '{s.name}'") for spec in chain]
        _cache[key] = bench
    return _cache[key]
