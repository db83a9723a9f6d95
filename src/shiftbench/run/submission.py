"""Submissions (leaderboard/submissions/*.yaml): a method with its parameters, run on a benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.config import parse_model, read_yaml
from ..core.errors import UserError
from ..core.paths import project_root
from ..methods import check_method, method_classes
from ..models.recipes import check_recipe
from .benchmark import Benchmark, load_benchmark


class Submission(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    method: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    benchmark: str = "digits"
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    protocol: Literal["episodic", "per_scenario", "continual"] = "per_scenario"
    training: dict[str, Any] | None = Field(None, description="source-model recipe; default: the benchmark's")
    authors: list[str] = Field(default_factory=list)
    url: str | None = None
    notes: str = ""


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
    training = bench.training if sub.training is None else check_recipe(sub.training, source=source)
    unsupported = unsupported_scenarios(sub.method, params, bench)
    if unsupported and len(unsupported) == len(bench.scenarios):
        raise UserError(f"'{sub.method}' cannot run any scenario of benchmark '{bench.name}': "
                        f"{next(iter(unsupported.values()))}", source=source, field="method")
    return CheckedSubmission(submission=sub, path=source, params=params, training=training, benchmark=bench, raw=raw,
                             unsupported=unsupported)


def unsupported_scenarios(method: str, params: dict[str, Any], bench: Benchmark) -> dict[str, str]:
    """The benchmark's scenarios whose test batches are smaller than the method (or, for a composite,
    its base) can adapt from, each with the reason."""
    need = max(cls.min_batch_size for cls in method_classes(method, params))
    return {s.name: f"batch size {bench.batch_size_of(s)} < {need}, the smallest '{method}' can adapt from"
            for s in bench.scenarios if bench.batch_size_of(s) < need}


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
