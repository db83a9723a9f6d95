"""How numbers and metric names are shown, in one place for the page, the exports and the terminal.

Fractions are shown in percent with one decimal by `pct` and nothing else, so the terminal and
the page can never round the same number differently; a spread is shown as `mean ± std`.
"""

from __future__ import annotations

import math
from typing import Any

# Metrics stored as fractions in [0, 1]; shown in percent. Unknown metrics are shown as plain numbers.
PERCENT_METRICS = {"accuracy", "error", "ece", "balanced_accuracy", "worst_group_accuracy",
                   "group_average_accuracy", "consistency", "fooling_rate", "matched_accuracy"}

LABELS = {
    "accuracy": "accuracy %", "error": "error %", "nll": "NLL", "ece": "ECE %",
    "balanced_accuracy": "balanced acc. %", "worst_group_accuracy": "worst-group acc. %",
    "group_average_accuracy": "group-avg acc. %", "consistency": "consistency %", "fooling_rate": "fooling rate %",
    "prior_l1": "prior L1 error", "n": "samples", "seconds": "seconds",
    "matched_accuracy": "matched acc. %", "domain_prior_l1": "p_d(y) L1 error",
}

# Column order in tables; metrics not listed follow in alphabetical order.
ORDER = ["matched_accuracy", "accuracy", "balanced_accuracy", "worst_group_accuracy", "group_average_accuracy",
         "consistency", "fooling_rate", "prior_l1", "domain_prior_l1", "nll", "ece", "error", "n"]

# Metrics where a lower value is better (used only to describe plots and columns).
LOWER_IS_BETTER = {"error", "nll", "ece", "prior_l1", "domain_prior_l1", "fooling_rate", "seconds"}


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not (isinstance(x, float) and math.isnan(x))


def metric_order(names) -> list[str]:
    rank = {m: i for i, m in enumerate(ORDER)}
    return sorted(dict.fromkeys(names), key=lambda m: (rank.get(m, len(rank)), m))


def metric_label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def pct(x: Any) -> str:
    """A fraction as a percentage with one decimal (correctly rounded from the float); '' for missing values."""
    if not is_number(x):
        return ""
    return f"{100 * x:.1f}"


def points(x: Any) -> str:
    """A difference of two fractions in percentage points, signed: '+1.2', '-0.4'."""
    if not is_number(x):
        return ""
    text = f"{100 * x:+.1f}"
    return "+0.0" if text == "-0.0" else text


def shown(name: str, x: Any) -> str:
    """A value of metric `name` as every table shows it: percent for fractions, else `number`."""
    return pct(x) if name in PERCENT_METRICS else number(x)


def with_spread(name: str, mean: Any, std: Any, n: int) -> str:
    """'12.3 ± 0.4' when there is a spread (n > 1), else the value alone."""
    if not is_number(mean):
        return ""
    if n > 1 and is_number(std):
        return f"{shown(name, mean)} ± {shown(name, std)}"
    return shown(name, mean)


def number(x: Any) -> str:
    """Integers as integers; other values with 3 decimals (so a column lines up), very small or large ones in e-notation."""
    if not is_number(x):
        return ""
    if isinstance(x, int):
        return f"{x:d}"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e6):
        return f"{x:.3g}"
    return f"{x:.3f}"


def metric_value(name: str, x: Any) -> str:
    """A metric as shown in a table cell."""
    if name in PERCENT_METRICS:
        return pct(x)
    if name == "seconds" and is_number(x):
        return f"{x:.2f}"
    if name == "n" and is_number(x):
        return f"{round(x):d}"
    return number(x)


def sort_key(x: Any) -> str:
    """A machine-readable value for the table sorter (data-sort); '' sorts last."""
    return repr(float(x)) if is_number(x) else ""
