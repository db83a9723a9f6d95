"""Shifts: covariate, label, concept and translation families, all pure and seeded."""

from .registry import FAMILIES, ShiftInfo, all_shifts, apply_shifts, check_shift_spec, get_shift, register_shift

__all__ = ["FAMILIES", "ShiftInfo", "all_shifts", "apply_shifts", "check_shift_spec", "get_shift", "register_shift"]
