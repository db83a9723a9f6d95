"""Latent label shift through `shiftbench run`: the shift's domains and truth, the whole-segment trait, DDFA's
records against an independent recomputation, the oracle law, determinism, and the boards.

One tiny benchmark (digits, a 3-epoch width-8 CNN, two latent-label scenarios) is run twice into
separate stores; every law reads the result files those runs wrote.
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_project, submission
from shiftbench.cli.main import main
from shiftbench.methods.discovery.ddfa import ddfa, segment_features
from shiftbench.methods.discovery.matching import best_matching, matched_accuracy, prior_error
from shiftbench.models.forward import to_float
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace
from shiftbench.shifts import get_shift
from shiftbench.shifts.latent_label import latent_domains

BENCH = """\
name: tiny
dataset: digits
batch_size: 32
model: {arch: small_cnn, width: 8}
training: {name: erm, epochs: 3, lr: 0.05, batch_size: 64}
scenarios:
  - {name: latent-d10-c0.5, family: label, shifts: [{shift: latent_label_domains, n_domains: 10, concentration: 0.5}]}
  - {name: latent-d12-c3, family: label, shifts: [{shift: latent_label_domains, n_domains: 12, concentration: 3.0}]}
"""

PROBE = '''
import torch
from shiftbench.methods import Method


class SegmentProbe(Method):
    """The source model; reports the size of every call and the domains it was handed."""

    whole_segment = True

    def __init__(self):
        pass

    def setup(self, model, source):
        super().setup(model, source)
        self.calls = []

    @torch.no_grad()
    def predict(self, x):
        d = self.domains
        self.calls.append({"n": len(x), "domains": None if d is None else len(d),
                           "distinct": None if d is None else len(d.unique())})
        return self.model(x)

    def describe(self):
        return {"calls": self.calls}


class BatchProbe(SegmentProbe):
    whole_segment = False
'''

ENTRIES = {"source": "source", "oracle": "oracle_domain_prior", "ddfa": "ddfa", "kmeans": "kmeans_features",
           "segment-probe": "probe:SegmentProbe", "batch-probe": "probe:BatchProbe"}


def records(results) -> dict[str, dict[str, dict]]:
    """entry -> scenario -> record."""
    out: dict[str, dict[str, dict]] = {}
    for path in sorted(results.glob("tiny/*.json")):
        body = json.loads(path.read_text())
        for rec in body["records"]:
            assert rec["status"] == "ok", (body["name"], rec["error"])
            out.setdefault(body["name"], {})[rec["cell"]["scenario"]] = rec
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The project and the records of two runs of it (separate stores, same seeds)."""
    tmp = tmp_path_factory.mktemp("latent")
    root = make_project(tmp / "proj", {f"{name}.yaml": submission(name, method) for name, method in ENTRIES.items()},
                        benchmark=BENCH)
    (root / "probe.py").write_text(PROBE)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    mp.syspath_prepend(str(root))
    try:
        out = []
        for i in range(2):
            code = main(["run", "--quiet", "--device", "cpu", "--executor", "inline", "--store", str(tmp / f"store{i}"),
                         "--results", str(tmp / f"results{i}"), "--site", str(tmp / f"site{i}")])
            assert code == 0
            out.append(records(tmp / f"results{i}"))
        yield root, out, tmp
    finally:
        mp.undo()


# ---------------------------------------------------------------- the registered shift

def test_the_shift_hands_over_domains_and_the_realised_priors_in_a_shuffled_order():
    from shiftbench.data import load_dataset

    test = load_dataset("digits").split("test")
    fn = get_shift("latent_label_domains").fn
    out = fn(test, seed=5, n_domains=6, concentration=3.0)
    assert out.domain_names == tuple(f"domain-{d}" for d in range(6)) and out.domains is not None
    truth = torch.tensor(out.meta["domain_priors"], dtype=torch.float64)  # K x D
    counts = torch.zeros(10, 6, dtype=torch.float64)
    counts.index_put_((out.labels, out.domains), torch.ones(len(out), dtype=torch.float64), accumulate=True)
    torch.testing.assert_close(truth, counts / counts.sum(0, keepdim=True))
    draw = latent_domains(test.labels, 10, 6, 3.0, 5)
    assert len(out) == len(draw.rows) and not torch.equal(out.domains, draw.domains)  # same images, not class-sorted
    assert torch.equal(out.labels.sort().values, test.labels[draw.rows].sort().values)
    again = fn(test, seed=5, n_domains=6, concentration=3.0)
    assert torch.equal(again.images, out.images) and torch.equal(again.domains, out.domains)


# ---------------------------------------------------------------- the trait

def test_a_whole_segment_method_gets_each_segment_in_one_call_with_its_domains(runs):
    _, (first, _), _ = runs
    for scenario, rec in first["segment-probe"].items():
        n_domains = int(scenario.split("-d")[1].split("-")[0])
        n = rec["metrics"]["n"]
        assert rec["method_info"]["calls"] == [{"n": n, "domains": n, "distinct": n_domains}], scenario
        assert rec["metrics"]["accuracy"] == pytest.approx(first["source"][scenario]["metrics"]["accuracy"], abs=1e-9)
    for scenario, rec in first["batch-probe"].items():  # the same probe without the trait: batches, no domains
        calls = rec["method_info"]["calls"]
        assert [c["n"] for c in calls] == [min(32, rec["metrics"]["n"] - i) for i in range(0, rec["metrics"]["n"], 32)]
        assert all(c["domains"] is None for c in calls)


# ---------------------------------------------------------------- metrics and laws

def test_ddfas_recorded_scores_equal_matching_py_on_an_independent_recomputation(runs):
    root, (first, _), _ = runs
    bench = load_benchmark("tiny")
    ws = Workspace(torch.device("cpu"), progress=False)
    for scenario, rec in first["ddfa"].items():
        cell = scenario_cell(bench, scenario)
        segment = ws.stream(cell)[0]
        model = ws.model(cell).model.eval()
        features, _ = segment_features(model, to_float(segment.model_view().images), ws.forward_batch(cell))
        n_domains = len(segment.domain_names)
        result = ddfa(features, segment.domains, 10, n_domains, seed=0)
        truth = torch.tensor(segment.meta["domain_priors"], dtype=torch.float64)
        mapping = best_matching(result.labels, segment.labels, 10)
        assert rec["metrics"]["matched_accuracy"] == pytest.approx(matched_accuracy(result.labels, segment.labels, 10),
                                                                   abs=1e-12)
        assert rec["metrics"]["domain_prior_l1"] == pytest.approx(prior_error(result.p_y_d, truth, mapping) / n_domains,
                                                                  abs=1e-9)
        torch.testing.assert_close(torch.tensor(rec["method_info"]["domain_prior_estimate"], dtype=torch.float64),
                                   result.p_y_d)


def test_every_entry_is_scored_by_matched_accuracy_at_least_its_plain_accuracy(runs):
    _, (first, _), _ = runs
    for name in ENTRIES:
        for scenario, rec in first[name].items():
            assert 0 <= rec["metrics"]["matched_accuracy"] <= 1, (name, scenario)
            assert rec["metrics"]["matched_accuracy"] >= rec["metrics"]["accuracy"] - 1e-12, (name, scenario)
            assert ("domain_prior_l1" in rec["metrics"]) == (name == "ddfa"), (name, scenario)


def test_the_source_model_with_the_true_domain_priors_beats_or_equals_the_source_model_on_average(runs):
    _, (first, _), _ = runs
    mean = {name: sum(r["metrics"]["accuracy"] for r in first[name].values()) / len(first[name])
            for name in ("source", "oracle")}
    assert mean["oracle"] >= mean["source"], mean


def test_two_runs_with_the_same_seeds_give_the_same_metrics(runs):
    _, (first, second), _ = runs
    assert sorted(first) == sorted(second)
    for name in first:
        for scenario in first[name]:
            assert first[name][scenario]["metrics"] == second[name][scenario]["metrics"], (name, scenario)
            assert first[name][scenario].get("method_info") == second[name][scenario].get("method_info")


def test_the_label_board_leads_with_matched_accuracy_and_the_index_headline_uses_it(runs):
    from shiftbench.leaderboard import load_boards

    _, (first, _), tmp = runs
    summary, boards = load_boards(tmp / "results0", tmp / "no-published")
    label = next(b for b in boards if b.family == "label")
    assert [t.metric for t in label.tables][:2] == ["matched_accuracy", "domain_prior_l1"]
    assert [r.method for r in label.tables[1].rows] == ["ddfa"]  # only DDFA recovers p_d(y)
    oracle = next(r for r in label.tables[0].rows if r.method == "oracle_domain_prior")
    assert oracle.oracle and oracle.place is None  # listed, never ranked
    summary = summary.set_index("entry")
    expected = sum(r["metrics"]["matched_accuracy"] for r in first["kmeans"].values()) / len(first["kmeans"])
    assert summary.loc["kmeans", "label"] == pytest.approx(expected, abs=1e-12)
    assert summary.loc["kmeans", "label"] > 2 * max(r["metrics"]["accuracy"] for r in first["kmeans"].values())
    assert any("Matched accuracy" in page.read_text() for page in (tmp / "site0").rglob("*.html"))


def test_cell_keys_cover_the_discovery_code(runs, monkeypatch):
    """Editing ddfa.py recomputes the entries that run it (ddfa, and the baselines that import its steps);
    editing matching.py (the metrics' code) recomputes every cell; the probe's cells only change with the evaluator."""
    from shiftbench.core import code_identity
    from shiftbench.run.plan import plan
    from shiftbench.run.submission import check_all

    root = runs[0]
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))

    def keys():
        checked = check_all(sorted((root / "leaderboard" / "submissions").glob("*.yaml")))
        cells = plan(checked, Workspace(torch.device("cpu"), progress=False)).values()
        return {(c.method, c.scenario): c.key for group in cells for c in group}

    unedited = code_identity.source_bytes

    def edited(suffix):
        monkeypatch.setattr(code_identity, "source_bytes",
                            lambda path: unedited(path) + (b"\n# edited\n" if path.as_posix().endswith(suffix) else b""))
        after = keys()
        return {cell[0] for cell in before if before[cell] != after[cell]}

    before = keys()
    assert edited("shiftbench/methods/discovery/ddfa.py") == {"ddfa", "kmeans_features", "oracle_domain_prior"}
    assert edited("shiftbench/methods/discovery/oracle_domain_prior.py") == {"oracle_domain_prior"}
    assert edited("shiftbench/methods/discovery/matching.py") == set(ENTRIES.values())
