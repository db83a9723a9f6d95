"""`shiftbench validate` rejects a bad value of every parameter of every registered component, up front.

The walk covers methods (and a composite's nested base parameters), shifts, training recipes,
architectures and dataset loaders: for each parameter a value of the wrong type and, where the
parameter is bounded or a choice, a value out of range. Each must give exit code 2 and one line
naming the file and the field, before anything runs or is written.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Literal

import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import Field
from pydantic.fields import FieldInfo

from shiftbench.cli import main
from shiftbench.core.params import describe_params, params_model
from shiftbench.data.registry import LOAD_ARGS, LOADERS
from shiftbench.methods import METHODS
from shiftbench.models.architectures.registry import ARCHITECTURES, BUILD_ARGS
from shiftbench.models.recipes.registry import RECIPES, RUN_ARGS
from shiftbench.shifts.registry import SHIFTS

from conftest import make_project, submission

# values for required parameters, so that only the parameter under test is wrong
REQUIRED = {
    ("shift", "corruption_file"): {"dataset": "cifar10c", "corruption": "fog", "severity": 1},
    ("shift", "context_subset"): {"contexts": ["grid"]},
}
# what a constraint does not reach: these take any string or are checked when the data is read
NOT_BOUNDED = {("shift", "corruption_file", "corruption")}


def unwrap(annotation) -> tuple[typing.Any, list]:
    """(base type without Optional / Annotated, the annotated_types constraints found on the way)."""
    constraints = []
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0]
        elif origin is typing.Annotated:
            base, *meta = typing.get_args(annotation)
            for m in meta:
                constraints += m.metadata if isinstance(m, FieldInfo) else [m]
            annotation = base
        else:
            return annotation, constraints


def out_of_range(base, constraints) -> list:
    values = []
    for c in constraints:
        step = 1 if base is int else 1e-3
        if isinstance(c, Ge):
            values.append(c.ge - step)
        elif isinstance(c, Gt):
            values.append(c.gt)
        elif isinstance(c, Le):
            values.append(c.le + step)
        elif isinstance(c, Lt):
            values.append(c.lt)
    return values


def bad_values(field: FieldInfo) -> list[tuple[str, typing.Any]]:
    base, constraints = unwrap(field.annotation)
    constraints += list(field.metadata)
    origin = typing.get_origin(base)
    if origin is typing.Literal:
        return [("type", [[1]]), ("range", "no-such-choice")]
    if base is bool:
        return [("type", "maybe")]
    if base in (int, float):
        return [("type", "many")] + [("range", v) for v in out_of_range(base, constraints)]
    if base is str:
        return [("type", [1, 2])]
    if origin in (list, tuple):
        out = [("type", 5)]
        element = typing.get_args(base)[0] if typing.get_args(base) else typing.Any
        elem_base, elem_constraints = unwrap(element)
        out += [("range", [v]) for v in out_of_range(elem_base, elem_constraints)]
        if typing.get_origin(elem_base) is typing.Literal:
            out.append(("range", ["no-such-choice"]))
        return out
    if origin is dict or base is dict:
        return [("type", 5)]
    return []


def components():
    """(kind, name, callable whose signature declares the parameters, parameters not to walk)."""
    for name, cls in METHODS.entries().items():
        yield "method", name, cls, ("self", "data", "seed")
    for name, info in SHIFTS.entries().items():
        yield "shift", name, info.fn, ("self", "data", "seed")
    for name, fn in RECIPES.entries().items():
        yield "recipe", name, fn, RUN_ARGS
    for name, fn in ARCHITECTURES.entries().items():
        yield "arch", name, fn, BUILD_ARGS
    for name, fn in LOADERS.entries().items():
        yield "loader", name, fn, LOAD_ARGS


def cases():
    out = []
    for kind, name, fn, skip in components():
        for param, field in params_model(fn, tuple(skip)).model_fields.items():
            values = bad_values(field)
            assert values, f"{kind} {name}: no bad value for '{param}' ({field.annotation})"
            for label, value in values:
                out.append(pytest.param(kind, name, param, value, id=f"{kind}-{name}-{param}-{label}"))
    return out


def test_every_numeric_parameter_has_a_bound():
    """A new component must bound its numbers, so that the walk below can check them."""
    unbounded = []
    for kind, name, fn, skip in components():
        for param, field in params_model(fn, tuple(skip)).model_fields.items():
            base, constraints = unwrap(field.annotation)
            if base in (int, float) and not out_of_range(base, constraints + list(field.metadata)) \
                    and (kind, name, param) not in NOT_BOUNDED:
                unbounded.append(f"{kind} {name}.{param}")
    assert unbounded == []


@pytest.fixture(scope="module")
def walk_project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("walk"), {})


def write_case(root, kind, name, param, value) -> tuple[str, str]:
    """Files for one case; returns (the submission to validate, the file the error must name)."""
    tag = f"{kind}-{name}-{param}".replace("+", "plus").replace(":", "-")
    sub = root / "leaderboard" / "submissions" / f"{tag}.yaml"
    body = {"name": tag, "method": "source", "benchmark": "tiny", "seeds": [0]}
    bench = {"name": tag, "dataset": "digits", "model": {"arch": "small_cnn", "width": 8},
             "scenarios": [{"name": "clean", "family": "clean"}]}
    if kind == "method":
        body.update(method=name, params={param: value})
        named = sub
    elif kind == "recipe":
        body.update(training={"name": name, param: value})
        named = sub
    else:
        if kind == "shift":
            spec = {"shift": name, **REQUIRED.get((kind, name), {}), param: value}
            bench["scenarios"].append({"name": "walked", "family": "covariate", "shifts": [spec]})
        elif kind == "arch":
            bench["model"] = {"arch": name, param: value}
        elif kind == "loader":
            manifest = {"name": tag, "loader": name, "params": {param: value}}
            (root / "data_manifests" / f"{tag}.yaml").write_text(yaml.safe_dump(manifest))
            bench["dataset"] = tag
        body["benchmark"] = tag
        named = root / ("data_manifests" if kind == "loader" else "benchmarks") / f"{tag}.yaml"
        (root / "benchmarks" / f"{tag}.yaml").write_text(yaml.safe_dump(bench))
    sub.write_text(yaml.safe_dump(body))
    return str(sub), str(named)


@pytest.mark.parametrize("kind, name, param, value", cases())
def test_validate_rejects_a_bad_value(walk_project, monkeypatch, capsys, kind, name, param, value):
    monkeypatch.chdir(walk_project)
    sub, named = write_case(walk_project, kind, name, param, value)
    assert main(["validate", sub]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("shiftbench: error: "), err
    assert named.split("/")[-1] in err[0] and param in err[0], err[0]


@pytest.mark.parametrize("field, value", [("protocol", "sometimes"), ("seeds", ["a"]), ("method", 5)])
def test_validate_rejects_bad_submission_fields(walk_project, monkeypatch, capsys, field, value):
    monkeypatch.chdir(walk_project)
    sub = walk_project / "leaderboard" / "submissions" / f"field-{field}.yaml"
    sub.write_text(yaml.safe_dump({"name": field, "method": "source", "benchmark": "tiny", field: value}))
    assert main(["validate", str(sub)]) == 2
    err = capsys.readouterr().err
    assert sub.name in err and field in err


def test_validate_checks_a_composites_base_and_its_parameters(walk_project, monkeypatch, capsys):
    monkeypatch.chdir(walk_project)
    sub = walk_project / "leaderboard" / "submissions" / "nested.yaml"
    sub.write_text(submission("Nested", "online_em", "{base: tent, base_params: {lr: fast}}"))
    assert main(["validate", str(sub)]) == 2
    assert "params.base_params.lr" in capsys.readouterr().err
    sub.write_text(submission("Nested", "lsa", "{base: alpha_bn}"))  # alpha_bn replaces the layers lsa wraps
    assert main(["validate", str(sub)]) == 2
    assert "params.base" in capsys.readouterr().err
    sub.write_text(submission("Nested", "online_em", "{base: mlls}"))  # logit-only: cannot be a base
    assert main(["validate", str(sub)]) == 2
    assert "params.base" in capsys.readouterr().err
    sub.write_text(submission("Nested", "online_em", "{base: tent, base_params: {lr: 0.01}}"))
    assert main(["validate", str(sub)]) == 0


def test_a_bad_benchmark_batch_size_is_rejected(walk_project, monkeypatch, capsys):
    monkeypatch.chdir(walk_project)
    bench = {"name": "bs0", "dataset": "digits", "batch_size": 0, "scenarios": [{"name": "clean", "family": "clean"}]}
    (walk_project / "benchmarks" / "bs0.yaml").write_text(yaml.safe_dump(bench))
    sub = walk_project / "leaderboard" / "submissions" / "bs0.yaml"
    sub.write_text(submission("bs0", "source", benchmark="bs0"))
    assert main(["validate", str(sub)]) == 2
    err = capsys.readouterr().err
    assert "bs0.yaml" in err and "batch_size" in err


def test_listed_parameter_types_are_what_a_user_writes():
    def fn(x, *, margin: Annotated[float, Field(ge=0)] | None = 0.5, k: int = 3,
           opt: Literal["adam", "sgd"] = "sgd", base_params: dict | None = None):
        return x

    assert describe_params(fn, skip=("x",)) == {"margin": "float|None = 0.5", "k": "int = 3", "opt": "adam|sgd = 'sgd'",
                                   "base_params": "dict|None = None"}
