"""Concept shift: ColoredMNIST-style colour, relabelled subpopulations, MetaShift contexts, training recipes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import make_project, submission

from shiftbench.core.errors import UserError
from shiftbench.data import load_dataset
from shiftbench.data.tagged_digits import CONTEXTS
from shiftbench.evaluation import compute_metrics
from shiftbench.models import get_source_model
from shiftbench.models.recipes.adawac import mirror_ascent_step
from shiftbench.models.recipes.groupdro import update_group_weights
from shiftbench.run.runner import run_submissions
from shiftbench.run.submission import check_all
from shiftbench.shifts import apply_shifts
from shiftbench.shifts.metashift import context_distance, meta_graph, spectral_positions

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def train():
    return load_dataset("digits").source_train


def sd(p, n):
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("flip", [0.1, 0.9])
def test_colored_mnist_follows_domainbed(train, flip):
    out = apply_shifts(train, [{"shift": "colored_mnist", "colour_flip": flip}], seed=7)
    n = len(train)
    shape_label = (train.labels < 5).long()
    y = out.labels
    colour = out.groups % 2
    assert out.classes == ("digit >= 5", "digit < 5") and set(y.tolist()) <= {0, 1}
    assert abs((y != shape_label).double().mean().item() - 0.25) < 4 * sd(0.25, n)  # shape alone caps accuracy at 75%
    assert abs((colour != y).double().mean().item() - flip) < 4 * sd(flip, n)
    assert torch.equal(out.groups, 2 * y + colour)
    red, green = out.images[:, 0].flatten(1).amax(1) > 0, out.images[:, 1].flatten(1).amax(1) > 0
    assert not (red & (colour == 1)).any() and not (green & (colour == 0)).any() and out.images[:, 2].eq(0).all()
    again = apply_shifts(train, [{"shift": "colored_mnist", "colour_flip": flip}], seed=7)
    assert torch.equal(again.images, out.images) and torch.equal(again.labels, y)


@pytest.mark.parametrize("correlation", [0.9, 0.1])
def test_spurious_colour_correlation_is_configurable(train, correlation):
    out = apply_shifts(train, [{"shift": "spurious_colour", "correlation": correlation}], seed=3)
    colour = out.groups - 2 * out.labels
    small = (train.labels < 5).long()
    agree = (colour == 1 - small).double().mean().item()  # small digits red (0) when they agree
    assert abs(agree - correlation) < 4 * sd(correlation, len(train))
    assert torch.equal(out.labels, train.labels) and set(colour.tolist()) == {0, 1}


def test_relabel_subpopulation_moves_only_the_chosen_mass(train):
    out = apply_shifts(train, [{"shift": "relabel_subpopulation", "source_class": 1, "target_class": 7, "mass": 0.5}],
                       seed=0)
    assert torch.equal(out.images, train.images)  # p(x) unchanged
    changed = out.labels != train.labels
    assert torch.equal(changed, out.groups.bool())
    assert (train.labels[changed] == 1).all() and (out.labels[changed] == 7).all()
    ones = int((train.labels == 1).sum())
    assert abs(changed.sum().item() / ones - 0.5) < 4 * sd(0.5, ones)
    assert out.meta["relabelled_fraction"] == pytest.approx(changed.double().mean().item())


def test_worst_group_and_group_average_accuracy():
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    pred = torch.tensor([0, 1, 1, 1, 0, 0])
    groups = torch.tensor([0, 0, 1, 1, 1, 2])
    m = compute_metrics(torch.nn.functional.one_hot(pred, 2).float(), labels, groups=groups)
    assert m["worst_group_accuracy"] == pytest.approx(0.5)
    assert m["group_average_accuracy"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)


def sets(n, *members):
    out = torch.zeros(len(members), n, dtype=torch.bool)
    for i, m in enumerate(members):
        out[i, list(m)] = True
    return out


def test_meta_graph_is_the_thresholded_overlap_coefficient():
    w = meta_graph(sets(10, range(0, 4), range(2, 10), [0, 4, 5, 6, 7, 8]))
    assert w[0, 1] == pytest.approx(2 / 4)  # |A & B| / min(|A|, |B|)
    assert w[0, 2] == pytest.approx(1 / 4) and w[1, 2] == pytest.approx(5 / 6)
    assert torch.equal(w, w.T) and torch.all(w.diagonal() == 0)
    weak = meta_graph(sets(20, range(0, 10), range(9, 19)))
    assert weak[0, 1] == 0  # overlap 1 / 10 is below MetaShift's 0.2 threshold


def test_spectral_positions_match_networkx_spectral_layout():
    nx = pytest.importorskip("networkx")
    g = torch.Generator().manual_seed(0)
    w = torch.rand(9, 9, generator=g, dtype=torch.float64)
    w = torch.triu(w, 1)
    w = w + w.T
    pos = spectral_positions(w)
    ref = nx.spectral_layout(nx.from_numpy_array(w.numpy()), dim=5)
    ref = torch.stack([torch.as_tensor(ref[i], dtype=torch.float64) for i in range(9)])
    assert torch.allclose(torch.cdist(pos, pos), torch.cdist(ref, ref), atol=1e-9)  # equal up to eigenvector signs


def test_context_distance_laws():
    universe = load_dataset("tagged-digits").test.meta["tag_universe"]
    labels, tags = universe["labels"], universe["tags"]
    d = lambda a, b: context_distance(labels, tags, CONTEXTS, a, b)  # noqa: E731
    assert d(["checker"], ["checker"]) == 0
    assert d(["hstripes"], ["dots"]) == pytest.approx(d(["dots"], ["hstripes"]))
    assert d(["hstripes", "grid"], ["frame"]) == pytest.approx((d(["hstripes"], ["frame"]) + d(["grid"], ["frame"])) / 2)
    assert d(["hstripes"], ["grid"]) > 0
    assert math.isnan(context_distance(labels, tags, CONTEXTS, ["hstripes"], ["grid"], min_size=10_000))


def test_tagged_digits_neighbouring_contexts_co_occur_most():
    tags = load_dataset("tagged-digits").test.meta["tag_universe"]["tags"].double()
    co = tags.T @ tags
    k = len(CONTEXTS)
    near = torch.stack([co[i, i + 1] for i in range(k - 1)]).mean()
    far = torch.stack([co[i, j] for i in range(k) for j in range(k) if abs(i - j) >= 3]).mean()
    assert near > 4 * far
    assert tags.sum(1).min() >= 1 and tags.sum(1).max() <= 2


def test_context_subset_keeps_the_tagged_images_and_reports_the_distance():
    data = load_dataset("tagged-digits").test
    out = apply_shifts(data, [{"shift": "context_subset", "contexts": ["dots", "frame"], "reference": ["hstripes"]}],
                       seed=0)
    names = data.meta["tag_names"]
    keep = data.meta["tags"][:, [names.index("dots"), names.index("frame")]].any(1)
    assert torch.equal(out.images, data.images[keep]) and torch.equal(out.meta["tags"], data.meta["tags"][keep])
    u = data.meta["tag_universe"]
    expected = context_distance(u["labels"], u["tags"], names, ["hstripes"], ["dots", "frame"])
    assert out.meta["report"]["context_distance"] == pytest.approx(expected)
    m = compute_metrics(torch.randn(len(out), 10), out.labels, meta=out.meta)
    assert m["context_distance"] == pytest.approx(expected)  # the record shows it beside the accuracy
    with pytest.raises(ValueError, match="hstripes"):
        apply_shifts(data, [{"shift": "context_subset", "contexts": ["sofa"]}], seed=0)
    with pytest.raises(ValueError, match="context tags"):
        apply_shifts(load_dataset("digits").test, [{"shift": "context_subset", "contexts": ["dots"]}], seed=0)


def test_group_weights_step_is_exponentiated_gradient_on_the_simplex():
    q = torch.tensor([0.25, 0.25, 0.5])
    loss = torch.tensor([1.0, 3.0, 2.0])
    present = torch.tensor([True, True, False])
    new = update_group_weights(q, loss, present, eta=0.5)
    raw = torch.tensor([0.25 * math.exp(0.5), 0.25 * math.exp(1.5), 0.5])
    assert torch.allclose(new, raw / raw.sum()) and new.sum().item() == pytest.approx(1.0)
    assert new[1] > new[0]  # the worse group gains weight


def test_adawac_weights_move_towards_the_larger_loss():
    w = torch.full((3, 2), 0.5)
    ce, ac = torch.tensor([2.0, 0.1, 1.0]), torch.tensor([0.1, 2.0, 1.0])
    new = mirror_ascent_step(w, ce, ac, eta=1.0)
    b = 0.5 * torch.exp(ce) / (0.5 * torch.exp(ce) + 0.5 * torch.exp(ac))
    assert torch.allclose(new[:, 0], b) and torch.allclose(new.sum(1), torch.ones(3))
    assert new[0, 0] > 0.5 > new[1, 0] and new[2, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("recipe", [{"name": "groupdro", "eta": 0.1}, {"name": "adawac", "eta": 0.5}])
def test_recipes_train_and_are_cached_by_their_hash(train, recipe):
    data = apply_shifts(train.subset(torch.arange(192)), [{"shift": "spurious_colour", "correlation": 0.9}], seed=0)
    arch = {"arch": "small_cnn", "width": 4}
    recipe = {**recipe, "epochs": 1, "batch_size": 64}
    first = get_source_model(data, data, arch, recipe, 0, CPU, progress=False)
    again = get_source_model(data, data, arch, recipe, 0, CPU, progress=False)
    erm = get_source_model(data, data, arch, {"name": "erm", "epochs": 1, "batch_size": 64}, 0, CPU, progress=False)
    assert again.key == first.key and again.sha256 == first.sha256
    assert erm.key != first.key and erm.sha256 != first.sha256
    if recipe["name"] == "groupdro":
        assert first.info["groups_from"] == "groups"
        assert sum(first.info["group_weights"].values()) == pytest.approx(1.0, abs=1e-3)
        assert len(first.info["group_weights"]) == len(torch.unique(data.groups))
    else:
        assert 0 <= first.info["mean_supervised_weight"] <= 1


CONCEPT_BENCHMARK = """\
name: tiny-concept
dataset: digits
model: {arch: small_cnn, width: 4}
training: {name: erm, epochs: 1, batch_size: 128}
scenarios:
  - name: spurious
    family: concept
    train_shifts: [{shift: spurious_colour, correlation: 0.9}]
    shifts: [{shift: spurious_colour, correlation: 0.1}]
"""


def test_training_recipe_is_chosen_per_submission(tmp_path, monkeypatch):
    dro = "training: {name: groupdro, epochs: 1, batch_size: 128, eta: 0.1}\n"
    root = make_project(tmp_path / "proj", {
        "erm.yaml": submission("ERM", "source", benchmark="tiny-concept"),
        "dro.yaml": submission("DRO", "source", benchmark="tiny-concept", extra=dro),
    })
    (root / "benchmarks" / "tiny-concept.yaml").write_text(CONCEPT_BENCHMARK)
    monkeypatch.chdir(root)
    subs = sorted((root / "leaderboard" / "submissions").glob("*.yaml"))
    report = run_submissions(check_all(subs), device="cpu", progress=False, results_root=tmp_path / "results")
    recs = {json.loads(p.read_text())["name"]: json.loads(p.read_text())["records"][0] for p in report.result_files}
    assert recs["DRO"]["cell"]["training"]["name"] == "groupdro" and recs["DRO"]["cell"]["training"]["eta"] == 0.1
    assert recs["ERM"]["cell"]["training"]["name"] == "erm"  # the benchmark's own recipe, defaults filled
    assert recs["DRO"]["provenance"]["model_key"] != recs["ERM"]["provenance"]["model_key"]
    assert {"worst_group_accuracy", "group_average_accuracy"} <= set(recs["DRO"]["metrics"])
    (root / "leaderboard" / "submissions" / "bad.yaml").write_text(
        submission("Bad", "source", benchmark="tiny-concept", extra="training: {name: nope}\n"))
    with pytest.raises(UserError, match="nope"):
        check_all([root / "leaderboard" / "submissions" / "bad.yaml"])
