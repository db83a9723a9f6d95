"""Translation shift: realistic views keep a margin, the evaluator crops, the metrics and crop selection hold their laws."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
import torch
from conftest import REPO

from shiftbench.core.imageset import centre_crop
from shiftbench.data import load_dataset
from shiftbench.evaluation import compute_metrics, run_stream
from shiftbench.evaluation.metrics import translation_metrics
from shiftbench.leaderboard.plots_translation import plot_translation_tradeoff, translation_points
from shiftbench.methods import Method, create_method
from shiftbench.models import get_source_model
from shiftbench.models.forward import forward
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace
from shiftbench.shifts import apply_shifts
from shiftbench.shifts.translation import crop_at, grid_offsets, ring_offsets

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def tiny_model(digits):
    """A width-8 CNN trained for 6 epochs (~84% test accuracy): a few seconds, once per test session."""
    torch.manual_seed(0)
    return get_source_model(digits.source_train, digits.source_val, {"arch": "small_cnn", "width": 8},
                            {"name": "erm", "epochs": 6, "lr": 0.05, "batch_size": 64}, 0, CPU, progress=False).model


def windows_at(data, offsets):
    """The model's window moved by each (dy, dx), straight from the canvas (what realistic views must show)."""
    return crop_at(data.images, data.window, offsets[:, 0], offsets[:, 1])


@pytest.mark.parametrize("distance", [1, 2])
def test_grid_view_centres_are_the_moved_windows(digits, distance):
    data = digits.test.subset(torch.arange(40))
    out = apply_shifts(data, [{"shift": "translate_grid", "distance": distance}], seed=0)
    v = (2 * distance + 1) ** 2
    assert out.image_size == data.image_size - 2 * distance and out.window == data.window
    assert torch.equal(out.source_index, torch.arange(40).repeat_interleave(v))
    offsets = torch.tensor(out.meta["view_offsets"]).repeat(40, 1)
    expected = windows_at(data.subset(out.source_index), offsets)
    assert torch.equal(centre_crop(out.images, out.window), expected)
    assert torch.equal(out.labels, data.labels.repeat_interleave(v))


def test_translate_views_are_centre_and_a_ring_shift(digits):
    data = digits.test.subset(torch.arange(30))
    out = apply_shifts(data, [{"shift": "translate", "distance": 2}], seed=3)
    seen = centre_crop(out.images, out.window)
    assert torch.equal(seen[0::2], windows_at(data, torch.zeros(30, 2, dtype=torch.long)))
    ring = ring_offsets(2)
    for i in range(30):  # the second view is the window moved by some offset at Chebyshev distance exactly 2
        candidates = windows_at(data.subset(torch.full((len(ring),), i)), ring)
        assert any(torch.equal(seen[2 * i + 1], c) for c in candidates)


def test_pair_views_lie_within_the_range(digits):
    data = digits.test.subset(torch.arange(20))
    out = apply_shifts(data, [{"shift": "translate_pair", "max_shift": 2}], seed=1)
    seen = centre_crop(out.images, out.window)
    grid = grid_offsets(2)
    for row in range(len(out)):
        i = int(out.source_index[row])
        candidates = windows_at(data.subset(torch.full((len(grid),), i)), grid)
        assert any(torch.equal(seen[row], c) for c in candidates)


def test_cyclic_views_roll_the_window(digits):
    data = digits.test.subset(torch.arange(10))
    out = apply_shifts(data, [{"shift": "translate_grid", "distance": 1, "mode": "cyclic"}], seed=0)
    centre = centre_crop(data.images, data.window)
    for row, (dy, dx) in enumerate(out.meta["view_offsets"] * 10):
        assert torch.equal(out.images[row], torch.roll(centre[row // 9], (dy, dx), (1, 2)))


def test_realistic_shift_beyond_the_canvas_is_refused(digits):
    with pytest.raises(ValueError, match="larger than the window"):
        apply_shifts(digits.test, [{"shift": "translate_grid", "distance": 3}], seed=0)


class Recorder(Method):
    """Keeps what the evaluator hands to predict."""

    def __init__(self, full: bool):
        self.full, self.seen, self.windows = full, [], []

    @property
    def sees_full_image(self):
        return self.full

    def predict(self, x):
        self.seen.append(x.clone())
        self.windows.append(self.window)
        return torch.zeros(len(x), 10)


@pytest.mark.parametrize("full", [False, True])
def test_evaluator_crops_unless_the_method_sees_the_full_image(digits, tiny_model, full):
    seg = apply_shifts(digits.test.subset(torch.arange(20)), [{"shift": "translate_grid", "distance": 1}], seed=0)
    rec = Recorder(full)
    rec.setup(tiny_model, None)
    run_stream(rec, [seg], "per_scenario", 64, CPU)
    got = torch.cat(rec.seen)
    want = seg.images.float() / 255 if full else centre_crop(seg.images, seg.window).float() / 255
    assert torch.equal(got, want)
    if full:
        assert rec.windows == [seg.window] * len(rec.windows)
    # cached source logits (for logit-only methods) see the same centred window as ordinary methods
    base = forward(tiny_model, seg, 512, CPU)
    with torch.no_grad():
        assert torch.allclose(base, tiny_model(centre_crop(seg.images, seg.window).float() / 255), atol=1e-5)


def test_workspace_segments_keep_the_full_images():
    bench = load_benchmark(REPO / "benchmarks" / "digits.yaml")
    seg = Workspace(CPU, progress=False).stream(scenario_cell(bench, "translate-realistic-d1"))[0]
    assert seg.image_size == 30 and seg.window == 28


def brute_force_metrics(pred, labels, offsets):
    """Definitions applied literally: every ordered pair of independent uniform shifts, every 1-px neighbour."""
    v = len(offsets)
    p, y = pred.view(-1, v), labels.view(-1, v)
    pairs = [float(sum(int(row[a] == row[b]) for a, b in itertools.product(range(v), repeat=2)) / v**2) for row in p]
    centre = offsets.index([0, 0])
    ring = [k for k, (dy, dx) in enumerate(offsets) if max(abs(dy), abs(dx)) == 1]
    fooled = [float(any(row[k] != row[centre] for k in ring)) for row in p]
    acc = [float((p[:, k] == y[:, k]).double().mean()) for k in range(v)]
    return sum(pairs) / len(pairs), sum(fooled) / len(fooled), acc


def test_translation_metrics_match_their_definitions():
    g = torch.Generator().manual_seed(0)
    offsets = grid_offsets(1).tolist()
    labels = torch.randint(0, 4, (50,), generator=g).repeat_interleave(9)
    pred = torch.where(torch.rand(450, generator=g) < 0.8, labels, torch.randint(0, 4, (450,), generator=g))
    pred[:9] = 2  # one image whose views all agree
    m = translation_metrics(pred, labels, offsets)
    pairwise, fooling, acc = brute_force_metrics(pred, labels, offsets)
    assert m["pairwise_consistency"] == pytest.approx(pairwise)
    assert m["fooling_rate"] == pytest.approx(fooling)
    assert list(m["accuracy_by_shift"].values()) == pytest.approx(acc)
    assert m["worst_shift_accuracy"] == pytest.approx(min(acc))
    assert set(m["accuracy_by_shift"]) == {f"{dy},{dx}" for dy, dx in offsets}


def test_compute_metrics_reads_view_offsets_only_for_the_image_major_layout():
    offsets = grid_offsets(1).tolist()
    labels = torch.arange(4).repeat_interleave(9)
    logits = torch.nn.functional.one_hot(labels, 4).float()
    index = torch.arange(4).repeat_interleave(9)
    m = compute_metrics(logits, labels, source_index=index, meta={"view_offsets": offsets})
    assert m["fooling_rate"] == 0 and m["pairwise_consistency"] == 1 and m["consistency"] == 1
    shuffled = compute_metrics(logits, labels, source_index=index.flip(0), meta={"view_offsets": offsets})
    assert "fooling_rate" not in shuffled and shuffled["consistency"] == 1


def crop_select(margin=2, mode="realistic", model=None, window=28):
    m = create_method("crop_select", {"margin": margin, "mode": mode})
    m.setup(model if model is not None else torch.nn.Identity(), None)
    m.window = window
    return m


def test_circular_crop_selection_is_invariant_to_every_integer_circular_shift(digits, tiny_model):
    x = centre_crop(digits.test.images[:6], 28).float() / 255
    shifts = list(itertools.product(range(28), repeat=2))
    rolled = torch.cat([torch.roll(x, s, (2, 3)) for s in shifts])  # 784 shifted copies of the batch
    method = crop_select(mode="circular", model=tiny_model)
    with torch.no_grad():
        pred = method.predict(rolled).argmax(1).view(len(shifts), 6)
        plain = tiny_model(rolled).argmax(1).view(len(shifts), 6)
    assert (pred == pred[0]).all()  # 100% identical predictions under every shift
    assert not (plain == plain[0]).all()  # the model alone is not invariant, so the test has teeth
    inputs = method.select(rolled).view(len(shifts), 6, 3, 28, 28)
    assert torch.equal(inputs, inputs[:1].expand_as(inputs))


def test_realistic_crop_follows_the_content_when_the_argmax_is_inside():
    data = load_dataset("digits-wide").test.subset(torch.arange(60))
    views = apply_shifts(data, [{"shift": "translate_grid", "distance": 1}], seed=0)
    method = crop_select(margin=3, window=28)
    crops = method.select(views.images.float() / 255).view(60, 9, 3, 28, 28)
    inside = ~method.last_on_border.view(60, 9)
    centre = views.meta["view_offsets"].index([0, 0])
    pairs = 0
    for i, k in itertools.product(range(60), range(9)):
        if inside[i, k] and inside[i, centre]:
            assert torch.equal(crops[i, k], crops[i, centre])
            pairs += 1
    assert pairs > 60 * 4


def test_margin_zero_is_the_source_model(digits, tiny_model):
    seg = apply_shifts(digits.test.subset(torch.arange(64)), [{"shift": "translate", "distance": 1}], seed=0)
    source, cs = create_method("source"), create_method("crop_select", {"margin": 0})
    for m in (source, cs):
        m.setup(tiny_model, None)
    a = run_stream(source, [seg], "per_scenario", 64, CPU)[0]
    b = run_stream(cs, [seg], "per_scenario", 64, CPU)[0]
    assert torch.equal(a, b)


def test_realistic_crop_selection_is_at_least_as_consistent_as_the_source_on_digits(tiny_model):
    bench = load_benchmark(REPO / "benchmarks" / "digits.yaml")
    ws = Workspace(CPU, progress=False)
    for name in ("translate-realistic-d1",):
        seg = ws.stream(scenario_cell(bench, name))[0]
        out = {}
        for method_name, params in (("source", {}), ("crop_select", {"margin": 1})):
            m = create_method(method_name, params)
            m.setup(tiny_model, None)
            logits = run_stream(m, [seg], "per_scenario", bench.batch_size, CPU)[0]
            out[method_name] = compute_metrics(logits, seg.labels, source_index=seg.source_index)["consistency"]
        assert out["crop_select"] >= out["source"]


def test_tradeoff_plot_from_results(tmp_path):
    def result(name, method, params, rows):
        recs = [{"status": "ok", "cell": {"family": fam}, "metrics": {"accuracy": a, **m}} for fam, a, m in rows]
        return {"name": name, "method": method, "params": params, "benchmark": "b", "records": recs}

    results = [
        result("Source", "source", {}, [("translation", 0.9, {"consistency": 0.8}), ("clean", 1.0, {})]),
        result("RICS m=2", "crop_select", {"margin": 2},
               [("translation", 0.8, {"pairwise_consistency": 0.9, "consistency": 0.1}),
                ("translation", 0.6, {"consistency": 1.0})]),
    ]
    points = translation_points(results)
    assert points.set_index("entry").loc["RICS m=2", ["accuracy", "consistency"]].tolist() == pytest.approx([0.7, 0.95])
    assert points.set_index("entry").loc["Source", "accuracy"] == pytest.approx(0.9)
    out = plot_translation_tradeoff(results, tmp_path / "t.svg")
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    text = out.read_text()
    assert "crop selection" in text and "Source" in text
    assert plot_translation_tradeoff(pd.DataFrame(columns=["entry", "method", "margin", "accuracy", "consistency"]),
                                     tmp_path / "none.svg") is None
