"""Training recipes for the source model, by name: `training: {name: NAME, ...params}`.

A recipe is fn(model, train, val, *, seed, device, progress, **params) -> info dict; its typed
keyword parameters are the `training:` fields it accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Literal

from pydantic import Field

from ...core.params import validate_params
from ...core.registry import Registry

# the parameters every SGD recipe shares, with the bounds that keep a typo from running for days
Epochs = Annotated[int, Field(ge=1, le=1000)]
LearningRate = Annotated[float, Field(gt=0, le=10)]
BatchSize = Annotated[int, Field(ge=1, le=65_536)]
WeightDecay = Annotated[float, Field(ge=0, le=1)]
# float64 by default: float32 SGD is chaotic enough that the CPU's kernels (AVX2, AVX512, none) alone gave
# source models 15 points apart under shift; in float64 they train to the same float32 weights
Precision = Literal["float64", "float32"]

RUN_ARGS = ("model", "train", "val", "seed", "device", "progress")

RECIPES: Registry[Callable[..., dict[str, Any]]] = Registry("training recipe", "shiftbench.models.recipes",
                                                            "shiftbench.recipes")


def register_recipe(name: str):
    """Decorator: fn(model, train, val, *, seed, device, progress, **params) -> info dict."""
    return RECIPES.decorator(name)


def check_recipe(training: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """{'name': recipe, **params} validated, defaults filled."""
    params = dict(training)
    name = params.pop("name", "erm")
    fn = RECIPES.get(name, source=source, field="training.name")
    return {"name": name, **validate_params(fn, params, source=source, what=f"training recipe '{name}'",
                                            skip=RUN_ARGS, field="training")}
