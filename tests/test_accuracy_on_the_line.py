"""The accuracy-on-the-line figure of a natural board: which numbers become points, and what is drawn."""

from __future__ import annotations

import numpy as np
import pytest

from shiftbench.leaderboard import plots
from shiftbench.leaderboard.figures import line_points


def rec(scenario, family, acc, seed=0, dataset=None, protocol="per_scenario", status="ok", weights="cifar10-resnet20"):
    spec = {"split": "test", **({"dataset": dataset} if dataset else {})}
    return {"cell": {"scenario": scenario, "family": family, "seed": seed, "protocol": protocol, "spec": spec,
                     "model": {"weights": weights}},
            "status": status, "metrics": {"accuracy": acc}, "provenance": {"checkpoint_sha256": weights[-2:] * 32}}


def result(ident, benchmark, records):
    return {"id": ident, "name": ident, "benchmark": benchmark, "records": records, "submission": {}}


def test_points_are_seed_means_of_clean_and_of_each_played_set():
    results = [
        result("a", "cifar10-natural", [
            rec("clean", "clean", 0.90, seed=0), rec("clean", "clean", 0.92, seed=1),
            rec("v6", "natural", 0.80, seed=0, dataset="cifar10.1-v6"),
            rec("v6", "natural", 0.84, seed=1, dataset="cifar10.1-v6"),
            rec("c102", "natural", 0.70, seed=0, dataset="cifar10.2"),
            rec("v6", "natural", 0.10, seed=2, dataset="cifar10.1-v6", protocol="continual"),  # another protocol
            rec("c102", "natural", 0.0, seed=1, dataset="cifar10.2", status="failed"),  # failed: not a number
            rec("to-x", "natural", 0.5, seed=0),  # a natural scenario of domains, no played set: not a point
        ]),
        result("b", "cifar10-natural-resnet56", [
            rec("clean", "clean", 0.94, weights="cifar10-resnet56"),
            rec("v6", "natural", 0.87, dataset="cifar10.1-v6", weights="cifar10-resnet56")]),
        result("c", "cifar10-natural", [rec("v6", "natural", 0.6, dataset="cifar10.1-v6")]),  # no clean: no point
    ]
    points = line_points(results, ["cifar10.1-v6", "cifar10.2"], "per_scenario")
    got = {(p.entry, p.set): (round(p.clean, 6), round(p.natural, 6)) for p in points.itertuples()}
    assert got == {("a", "cifar10.1-v6"): (91.0, 82.0), ("a", "cifar10.2"): (91.0, 70.0),
                   ("b", "cifar10.1-v6"): (94.0, 87.0)}
    assert set(points.model) == {"cifar10-resnet20 · 20202020", "cifar10-resnet56 · 56565656"}  # one per model


def test_figure_draws_each_point_each_sets_fit_and_the_diagonal():
    import pandas as pd

    points = pd.DataFrame({"set": ["v6", "v6", "v6", "c102"], "model": ["r20", "r56", "r110", "r20"],
                           "entry": ["s"] * 4, "clean": [91.7, 93.4, 93.7, 91.7], "natural": [84.0, 86.5, 87.2, 80.0]})
    fig = plots.accuracy_on_the_line_figure(points)
    ax = fig.axes[0]
    lines = {tuple(np.round(line.get_xdata(), 3)): line for line in ax.get_lines()}
    markers = [line for line in ax.get_lines() if line.get_linestyle() == "None"]
    assert [list(m.get_xdata()) for m in markers] == [[91.7, 93.4, 93.7], [91.7]]
    assert [list(m.get_ydata()) for m in markers] == [[84.0, 86.5, 87.2], [80.0]]
    # v6's least-squares line, by the normal equations; c102 has one clean accuracy: no line
    x, y = np.array([91.7, 93.4, 93.7]), np.array([84.0, 86.5, 87.2])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    fit = lines[(91.7, 93.7)]
    assert fit.get_ydata()[1] - fit.get_ydata()[0] == pytest.approx(slope * 2.0)
    assert fit.get_ydata()[0] == pytest.approx(y.mean() + slope * (91.7 - x.mean()))
    diagonal = next(line for line in ax.get_lines() if line.get_linestyle() == "--")
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["v6", "c102"]
