"""The shift registry: every shift is a pure, seeded function ImageSet -> ImageSet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet
from ..core.params import validate_params
from ..core.registry import Registry

FAMILIES = ("covariate", "label", "concept", "translation", "natural")


@dataclass(frozen=True)
class ShiftInfo:
    name: str
    family: str
    fn: Callable[..., ImageSet]
    doc: str


SHIFTS: Registry[ShiftInfo] = Registry("shift", "shiftbench.shifts", "shiftbench.shifts")


def register_shift(name: str, family: str):
    """Decorator: fn(data: ImageSet, *, seed: int, **params) -> ImageSet."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}")
    return SHIFTS.decorator(name, lambda fn: ShiftInfo(name, family, fn, (fn.__doc__ or "").strip().split("\n")[0]))


def get_shift(name: str, *, source: str | None = None) -> ShiftInfo:
    return SHIFTS.get(name, source=source, field="shift")


def all_shifts() -> dict[str, ShiftInfo]:
    return SHIFTS.entries()


def check_shift_spec(spec: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """Validate {'shift': name, **params}; returns the spec with defaults filled."""
    spec = dict(spec)
    name = spec.pop("shift", None)
    if not isinstance(name, str):
        raise UserError("each shift needs a 'shift: NAME' entry", source=source, field="shifts")
    info = get_shift(name, source=source)
    return {"shift": name, **validate_params(info.fn, spec, source=source, what=f"shift '{name}'", field="")}


def apply_shifts(data: ImageSet, specs: list[dict[str, Any]], seed: int) -> ImageSet:
    """Apply shifts in order; shift i gets its own seed derived from (seed, i) so chains compose."""
    for i, spec in enumerate(specs):
        spec = dict(spec)
        info = get_shift(spec.pop("shift"))
        data = info.fn(data, seed=_child_seed(seed, i), **spec)
    return data


def _child_seed(seed: int, index: int) -> int:
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return int(torch.randint(0, 2**31 - 1, (1,), generator=g))


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))
