"""How numbers and metric names are shown: fractions in percent, everything else with 4 significant digits."""

from __future__ import annotations

import math
from typing import Any

# Metrics stored as fractions in [0, 1]; shown in percent. Unknown metrics are shown as plain numbers.
PERCENT_METRICS = {"accuracy", "error", "ece", "balanced_accuracy", "worst_group_accuracy",
                   "group_average_accuracy", "consistency", "fooling_rate"}

LABELS = {
    "accuracy": "accuracy %", "error": "error %", "nll": "NLL", "ece": "ECE %",
    "balanced_accuracy": "balanced acc. %", "worst_group_accuracy": "worst-group acc. %",
    "group_average_accuracy": "group-avg acc. %", "consistency": "consistency %", "fooling_rate": "fooling rate %",
    "prior_l1": "prior L1 error", "n": "samples", "seconds": "seconds",
}

# Metrics where a lower value is better (used only to describe plots and columns).
LOWER_IS_BETTER = {"error", "nll", "ece", "prior_l1", "fooling_rate", "seconds"}


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not (isinstance(x, float) and math.isnan(x))


def metric_label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def pct(x: Any) -> str:
    """A fraction as a percentage with one decimal; '' for missing values."""
    if not is_number(x):
        return ""
    return f"{100 * x:.1f}"


def number(x: Any) -> str:
    if not is_number(x):
        return ""
    if isinstance(x, int) or float(x).is_integer() and abs(x) < 1e9:
        return f"{int(x):d}"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.3g}"
    return f"{x:.4g}"


def metric_value(name: str, x: Any) -> str:
    """A metric as shown in a table cell."""
    if name in PERCENT_METRICS:
        return pct(x)
    if name == "seconds" and is_number(x):
        return f"{x:.2f}"
    return number(x)


def sort_key(x: Any) -> str:
    """A machine-readable value for the table sorter (data-sort); '' sorts last."""
    return repr(float(x)) if is_number(x) else ""
