"""Submissions (leaderboard/submissions/*.yaml): a method with its parameters, run on a benchmark.

Everything in a submission is bounded, since a stranger may write one: the benchmark is a
registered benchmark's name (never a path), seeds are distinct integers in [0, 2^32) and at
most MAX_SEEDS of them, and the free-text fields have length limits.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..core.config import parse_model, read_yaml
from ..core.errors import UserError
from ..core.names import NAME_RULE, is_name
from ..core.paths import project_root
from ..methods import check_method, method_classes
from ..models.recipes import check_recipe
from .benchmark import Benchmark, load_benchmark

MAX_SEEDS = 100
SEED_LIMIT = 1 << 32


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    method: str = Field(min_length=1, max_length=300)
    params: dict[str, Any] = Field(default_factory=dict)
    benchmark: str = "digits"
    seeds: list[Annotated[int, Field(ge=0, lt=SEED_LIMIT, strict=True)]] = Field(
        default_factory=lambda: [0], min_length=1, max_length=MAX_SEEDS)
    protocol: Literal["episodic", "per_scenario", "continual"] = "per_scenario"
    training: dict[str, Any] | None = Field(None, description="source-model recipe; default: the benchmark's")
    authors: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    url: str | None = Field(None, max_length=2000)
    notes: str = Field("", max_length=10_000)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be blank")
        if name != name.strip():
            raise ValueError("must not start or end with spaces (two names differing only there look the same)")
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name):
            raise ValueError("must not hold control or invisible formatting characters")
        return name

    @field_validator("method")
    @classmethod
    def _method_spec(cls, method: str) -> str:
        if method != method.strip() or any(unicodedata.category(ch) in ("Cc", "Cf", "Zs") for ch in method):
            raise ValueError("must be a method name or an import path 'pkg.module:Class', without spaces")
        return method

    @field_validator("benchmark")
    @classmethod
    def _benchmark_name(cls, benchmark: str) -> str:
        if not is_name(benchmark):
            raise ValueError(f"must be the name of a benchmark in benchmarks/ ({NAME_RULE}), not a path")
        return benchmark

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"seeds must be distinct; repeated: {', '.join(map(str, repeated[:5]))}")
        return seeds


class CheckedSubmission(BaseModel):
    """A submission with its method resolved, parameters filled with defaults, and benchmark loaded."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    submission: Submission
    path: str
    params: dict[str, Any]
    training: dict[str, Any]  # the source-model recipe, the submission's or else the benchmark's, defaults filled
    benchmark: Benchmark
    raw: dict[str, Any]
    unsupported: dict[str, str] = {}  # scenario -> why the method cannot run it (no cells are planned)


def submissions_dir() -> Path:
    return project_root() / "leaderboard" / "submissions"


def check_submission(path: Path) -> CheckedSubmission:
    source = str(path)
    raw = read_yaml(path)
    sub = parse_model(Submission, raw, source)
    params = check_method(sub.method, sub.params, source=source)
    bench = load_benchmark(sub.benchmark, referrer=source)
    if bench.name != sub.benchmark:  # cells and records are filed under the name inside the file
        raise UserError(f"benchmarks/{sub.benchmark}.yaml calls itself '{bench.name[:100]}'; a benchmark's name must "
                        "equal its file's name", source=source, field="benchmark")
    training = bench.training if sub.training is None else check_recipe(sub.training, source=source)
    unsupported = unsupported_scenarios(sub.method, params, bench)
    if unsupported and len(unsupported) == len(bench.scenarios):
        raise UserError(f"'{sub.method}' cannot run any scenario of benchmark '{bench.name}': "
                        f"{next(iter(unsupported.values()))}", source=source, field="method")
    return CheckedSubmission(submission=sub, path=source, params=params, training=training, benchmark=bench, raw=raw,
                             unsupported=unsupported)


def unsupported_scenarios(method: str, params: dict[str, Any], bench: Benchmark) -> dict[str, str]:
    """The benchmark's scenarios the method cannot run, each with the reason: all of them when the
    benchmark's model lacks what the method (or, for a composite, its base) requires (BatchNorm
    layers, a CLIP head), else those whose test batches are smaller than it can adapt from."""
    classes = method_classes(method, params)
    lacking = model_lacks(sorted({t for cls in classes for t in cls.requires}), bench)
    if lacking:
        return {s.name: lacking for s in bench.scenarios}
    need = max(cls.min_batch_size for cls in classes)
    return {s.name: f"batch size {bench.batch_size_of(s)} < {need}, the smallest '{method}' can adapt from"
            for s in bench.scenarios if bench.batch_size_of(s) < need}


def model_lacks(required: list[str], bench: Benchmark) -> str | None:
    """Why the benchmark's model cannot serve a method that requires these traits, or None."""
    if not required:
        return None
    from ..data import load_manifest
    from ..models.traits import LACKS, model_traits

    names = load_manifest(bench.dataset).class_names
    traits = model_traits(bench.model, len(names) if names else 10)
    missing = [t for t in required if traits is not None and t not in traits]
    if not missing:
        return None
    return f"the benchmark's model ({bench.model.get('arch', 'small_cnn')}) {LACKS[missing[0]]}"


def check_all(paths: list[Path]) -> list[CheckedSubmission]:
    """Validate every file first, so that bad input stops the run before anything is written."""
    checked = [check_submission(p) for p in paths]
    seen: dict[tuple[str, str], str] = {}
    for c in checked:
        key = (c.submission.benchmark, c.submission.name)
        if key in seen:
            raise UserError(f"submission name '{c.submission.name}' is already used by {seen[key]}",
                            source=c.path, field="name")
        seen[key] = c.path
    return checked
