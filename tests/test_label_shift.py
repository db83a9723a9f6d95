"""Label shift: estimators, calibration, corrections, shift builders, the adapter, oracle entries.

The synthetic problem has known posteriors: K = 5 unit-variance Gaussian classes in 2-d
with means on a circle of radius 2.5 (Bayes accuracy about 86%), so the source model's
logits are exactly log p(y) - |x - mu_y|^2 / 2.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from shiftbench.core.imageset import ImageSet
from shiftbench.evaluation import run_stream
from shiftbench.evaluation.metrics import prior_estimation_error
from shiftbench.leaderboard.aggregate import summary_table
from shiftbench.methods import SourceContext, create_method
from shiftbench.methods.labelshift import (
    adjust_logits,
    bbse_prior,
    confusion_matrix,
    fit_calibrator,
    mlls_em,
    predicted_distribution,
    rlls_prior,
)
from shiftbench.methods.prior.adapter import PriorAdapter, delta_sizes, install_delta_layers, set_deltas
from shiftbench.methods.prior.adapter_training import get_adapter
from shiftbench.models.architectures.small_cnn import SmallCNN
from shiftbench.shifts.label import label_correlated_order, minority_classes, tweak_one

K, N = 5, 10_000
ANGLES = torch.arange(K, dtype=torch.float64) * 2 * math.pi / K
MEANS = 2.5 * torch.stack([ANGLES.cos(), ANGLES.sin()], 1)
UNIFORM = torch.full((K,), 1.0 / K, dtype=torch.float64)


def sample(prior: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.multinomial(prior, n, replacement=True, generator=g)
    return MEANS[y] + torch.randn(n, 2, generator=g, dtype=torch.float64), y


def bayes_logits(x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    return prior.log() - 0.5 * torch.cdist(x, MEANS) ** 2


def dirichlet(alpha: float, k: int, g: torch.Generator) -> torch.Tensor:
    q = torch._standard_gamma(torch.full((k,), alpha, dtype=torch.float64), generator=g)
    return q / q.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_em_and_bbse_recover_a_dirichlet_prior(seed):
    g = torch.Generator().manual_seed(seed)
    q = dirichlet(1.0, K, g)
    x_val, y_val = sample(UNIFORM, N, g)
    x_tgt, _ = sample(q, N, g)
    probs = bayes_logits(x_tgt, UNIFORM).softmax(1)
    confusion = confusion_matrix(bayes_logits(x_val, UNIFORM).softmax(1), y_val)
    assert (mlls_em(probs, UNIFORM) - q).abs().sum() <= 0.05
    assert (bbse_prior(confusion, predicted_distribution(probs)) - q).abs().sum() <= 0.05
    soft = confusion_matrix(bayes_logits(x_val, UNIFORM).softmax(1), y_val, soft=True)
    assert (bbse_prior(soft, predicted_distribution(probs, soft=True)) - q).abs().sum() <= 0.05
    assert (rlls_prior(confusion, predicted_distribution(probs), 0.0) - q).abs().sum() <= 0.05


def test_em_on_source_prior_data_gives_unit_weights():
    g = torch.Generator().manual_seed(3)
    p = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
    x, _ = sample(p, N, g)
    w = mlls_em(bayes_logits(x, p).softmax(1), p) / p
    assert (w - 1).abs().max() <= 0.05


def test_rlls_is_bbse_without_penalty_and_no_shift_under_a_large_one():
    g = torch.Generator().manual_seed(4)
    q = dirichlet(1.0, K, g)
    x_val, y_val = sample(UNIFORM, N, g)
    x_tgt, _ = sample(q, N, g)
    confusion = confusion_matrix(bayes_logits(x_val, UNIFORM).softmax(1), y_val)
    mu = predicted_distribution(bayes_logits(x_tgt, UNIFORM).softmax(1))
    assert (rlls_prior(confusion, mu, 0.0) - bbse_prior(confusion, mu)).abs().max() < 1e-4
    val_prior = confusion.sum(0)
    gaps = [(rlls_prior(confusion, mu, d) - val_prior).abs().sum().item() for d in (0.0, 0.05, 0.1, 0.2, 10.0)]
    assert all(a >= b - 1e-4 for a, b in zip(gaps, gaps[1:]))  # more penalty, never more shift
    assert gaps[0] > 0.3 and gaps[-1] < 1e-4


def test_bbse_falls_back_to_least_squares_on_a_singular_confusion_matrix():
    confusion = torch.tensor([[0.25, 0.25, 0.0], [0.0, 0.0, 0.25], [0.25, 0.0, 0.0]], dtype=torch.float64)
    q = bbse_prior(confusion, torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    assert torch.isfinite(q).all() and abs(q.sum().item() - 1) < 1e-12 and (q >= 0).all()


def test_calibration_lowers_held_out_nll_of_a_miscalibrated_model():
    g = torch.Generator().manual_seed(5)
    distortion = torch.tensor([1.0, -0.5, 0.0, 0.7, -1.2], dtype=torch.float64)

    def miscalibrated(x):  # overconfident and biased
        return 3.0 * bayes_logits(x, UNIFORM) + distortion

    x_fit, y_fit = sample(UNIFORM, N, g)
    x_eval, y_eval = sample(UNIFORM, N, g)
    raw_nll = F.cross_entropy(miscalibrated(x_eval), y_eval).item()
    bayes_nll = F.cross_entropy(bayes_logits(x_eval, UNIFORM), y_eval).item()
    nll = {}
    for kind in ("ts", "bcts", "vs"):
        cal = fit_calibrator(miscalibrated(x_fit), y_fit, kind)
        nll[kind] = F.cross_entropy(cal(miscalibrated(x_eval)), y_eval).item()
    assert nll["bcts"] < nll["ts"] < raw_nll
    assert nll["bcts"] - bayes_nll < 0.01 and nll["vs"] - bayes_nll < 0.01
    bcts = fit_calibrator(miscalibrated(x_fit), y_fit, "bcts")
    assert abs(bcts.scale.item() - 1 / 3) < 0.02  # recovers the temperature
    recovered = bcts.bias + distortion / 3  # and undoes the bias, up to a constant
    assert (recovered - recovered.mean()).abs().max() < 0.1  # the distortion is up to 0.4


def test_calibration_of_a_calibrated_model_is_near_identity_and_none_is_exact():
    g = torch.Generator().manual_seed(6)
    x, y = sample(UNIFORM, N, g)
    z = bayes_logits(x, UNIFORM)
    assert abs(fit_calibrator(z, y, "ts").scale.item() - 1) < 0.05
    assert torch.equal(fit_calibrator(z, y, "none")(z), z)


def test_calibration_stays_finite_on_perfectly_separated_data():
    z = torch.tensor([[5.0, 0.0], [0.0, 5.0]] * 50)
    y = torch.tensor([0, 1] * 50)
    assert fit_calibrator(z, y, "bcts").scale.item() < 10  # plain maximum likelihood would diverge


def test_logit_adjustment_with_the_true_prior_is_the_bayes_posterior():
    g = torch.Generator().manual_seed(7)
    p = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
    q = dirichlet(1.0, K, g)
    x, _ = sample(q, 1000, g)
    adjusted = adjust_logits(bayes_logits(x, p), q, p).softmax(1)
    torch.testing.assert_close(adjusted, bayes_logits(x, q).softmax(1), rtol=0, atol=1e-12)


def test_prior_estimation_error_metrics():
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    out = prior_estimation_error({"prior_estimate": [0.5, 0.5, 0.0]}, {"target_prior": [0.25, 0.5, 0.25]}, p)
    assert out["prior_l1"] == pytest.approx(0.5)
    assert out["weight_mse"] == pytest.approx(((0.5 - 1) ** 2 + (2 - 2) ** 2 + (1 - 0) ** 2) / 3)
    assert prior_estimation_error({}, {"target_prior": [1.0]}, p) == {}


# --- shift builders ----------------------------------------------------------------------------

def pool(per_class: int = 30, k: int = 10) -> ImageSet:
    labels = torch.arange(k).repeat_interleave(per_class)
    images = torch.arange(len(labels), dtype=torch.int64).remainder(256).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2)
    return ImageSet(images.contiguous(), labels, tuple(str(i) for i in range(k)))


def test_tweak_one_reaches_its_prior():
    out = tweak_one(pool(), seed=0, rho=0.9, target_class=3, n=2000)
    designed = torch.full((10,), 0.1 / 9, dtype=torch.float64)
    designed[3] = 0.9
    realised = out.class_prior()
    assert (realised - designed).abs().max() <= 10 / 2000  # floor(n q_k) exact, the remainder is < K samples
    assert out.meta["target_prior"] == realised.tolist()


def test_minority_classes_reach_their_prior():
    out = minority_classes(pool(), seed=1, m=3, p=0.02, n=3000)
    realised = out.class_prior()
    minority = out.meta["minority_classes"]
    assert len(minority) == 3
    for c in range(10):
        expected = 0.02 if c in minority else (1 - 0.06) / 7
        assert abs(realised[c].item() - expected) <= 10 / 3000
    with pytest.raises(ValueError, match="m \\* p"):
        minority_classes(pool(), seed=0, m=5, p=0.3)


def distinct_classes_per_batch(labels: torch.Tensor, batch: int = 32) -> float:
    return sum(len(torch.unique(labels[i : i + batch])) for i in range(0, len(labels), batch)) / math.ceil(len(labels) / batch)


def test_label_correlated_order():
    data = pool(per_class=64)
    shuffled = data.subset(torch.randperm(len(data), generator=torch.Generator().manual_seed(0)))
    sorted_ = label_correlated_order(shuffled, seed=0, concentration=0.0)
    assert (sorted_.labels.diff() >= 0).all()
    assert torch.equal(sorted_.images.flatten(1).sum(1).sort().values, data.images.flatten(1).sum(1).sort().values)
    correlated = label_correlated_order(shuffled, seed=0, concentration=0.1, chunks=20)
    assert torch.equal(correlated.labels.sort().values, data.labels)  # a reordering, nothing added or lost
    assert distinct_classes_per_batch(correlated.labels) < 0.5 * distinct_classes_per_batch(shuffled.labels)
    loose = label_correlated_order(shuffled, seed=0, concentration=100.0, chunks=20)
    assert distinct_classes_per_batch(loose.labels) > distinct_classes_per_batch(correlated.labels) + 3
    again = label_correlated_order(shuffled, seed=0, concentration=0.1, chunks=20)
    assert torch.equal(again.labels, correlated.labels) and torch.equal(again.images, correlated.images)


# --- label shift adapter -------------------------------------------------------------------------

def tiny_model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=10, in_channels=1, width=4)
    with torch.no_grad():  # non-trivial running statistics, as a trained model has
        model.train()
        model(torch.rand(64, 1, 12, 12))
    return model.eval()


def test_adapter_at_the_source_prior_is_exactly_the_source_model():
    model = tiny_model()
    x = torch.rand(16, 1, 12, 12)
    expected = model(x)
    adapted = copy.deepcopy(model)
    wrappers = install_delta_layers(adapted, bn_layers=2)
    prior = torch.tensor([0.05, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], dtype=torch.float64)
    torch.manual_seed(1)
    adapter = PriorAdapter(prior, delta_sizes(wrappers), hidden=16)
    for prm in adapter.parameters():  # an arbitrary (trained-looking) adapter, not a zero one
        torch.nn.init.normal_(prm)
    with torch.no_grad():
        deltas = adapter(prior.float())
        assert all(torch.equal(d, torch.zeros_like(d)) for d in deltas)
        set_deltas(wrappers, deltas)
        assert torch.equal(adapted(x), expected)
        set_deltas(wrappers, adapter(torch.full((10,), 0.1)))
        assert not torch.allclose(adapted(x), expected)


def test_adapter_is_trained_once_and_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path))
    from shiftbench.methods.prior import adapter_training

    monkeypatch.setattr(adapter_training, "_memo", {})
    model = tiny_model()
    train = ImageSet(torch.randint(0, 256, (40, 1, 12, 12), dtype=torch.uint8), torch.arange(10).repeat(4),
                     tuple(str(i) for i in range(10)))
    recipe = {"normalization": "batch", "steps": 3, "batch_size": 8, "alphas": [0.5], "lr": 1e-2, "bn_layers": 1,
              "hidden": 8, "bayes_adjust": True, "seed": 0}
    prior = train.class_prior()
    first, info = get_adapter(model, "sha", train, prior, recipe, torch.device("cpu"))
    assert (tmp_path / "adapters" / f"{info['adapter_key']}.pt").exists()
    monkeypatch.setattr(adapter_training, "_memo", {})
    monkeypatch.setattr(adapter_training, "train_adapter", lambda *a, **k: pytest.fail("retrained a cached adapter"))
    second, info2 = get_adapter(model, "sha", train, prior, recipe, torch.device("cpu"))
    assert info2 == info
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert adapter_training.adapter_key("sha", train, prior, {**recipe, "steps": 4}) != info["adapter_key"]
    assert adapter_training.adapter_key("other sha", train, prior, recipe) != info["adapter_key"]


# --- methods on a stream -------------------------------------------------------------------------

def context_for(model, n_val: int = 200, seed: int = 0) -> tuple[SourceContext, list[ImageSet]]:
    g = torch.Generator().manual_seed(seed)
    classes = tuple(str(i) for i in range(10))
    val = ImageSet(torch.randint(0, 256, (n_val, 1, 12, 12), dtype=torch.uint8, generator=g),
                   torch.arange(10).repeat(n_val // 10), classes)
    test = ImageSet(torch.randint(0, 256, (150, 1, 12, 12), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (150,), generator=g), classes)
    ctx = SourceContext(model=model, val=val, prior=val.class_prior(), device=torch.device("cpu"), seed=0,
                        batch_size=64, train=val, model_sha256="test", target_priors=[(len(test), test.class_prior())])
    return ctx, [test]


def evaluate(spec: str, params: dict, model, protocol: str = "per_scenario") -> tuple[torch.Tensor, object]:
    ctx, segments = context_for(model)
    method = create_method(spec, params)
    base = None
    if method.logit_only:
        from shiftbench.models.forward import forward

        base = [forward(model, s, 64, ctx.device) for s in segments]
    method.setup(model if method.logit_only else copy.deepcopy(model), ctx)
    return torch.cat(run_stream(method, segments, protocol, 32, ctx.device, base)), method


def test_online_em_on_the_source_model_equals_logit_only_mlls():
    model = tiny_model(2)
    online, _ = evaluate("online_em", {"base": "source", "calibration": "none"}, model)
    mlls, _ = evaluate("mlls", {"calibration": "none"}, model)
    torch.testing.assert_close(online, mlls, rtol=0, atol=1e-5)


def test_oracle_prior_is_the_bayes_correction_with_the_true_prior():
    model = tiny_model(3)
    ctx, segments = context_for(model)
    logits, method = evaluate("oracle_prior", {"calibration": "none"}, model)
    from shiftbench.models.forward import forward

    raw = forward(model, segments[0], 64, ctx.device)
    torch.testing.assert_close(logits, adjust_logits(raw, segments[0].class_prior(), ctx.prior))
    assert method.oracle and method.describe()["prior_estimate"] == pytest.approx(segments[0].class_prior().tolist())


def test_episodic_protocol_makes_the_estimate_per_batch():
    model = tiny_model(4)
    stream, _ = evaluate("mlls", {"calibration": "none"}, model, "per_scenario")
    episodic, _ = evaluate("mlls", {"calibration": "none"}, model, "episodic")
    torch.testing.assert_close(stream[:32], episodic[:32])  # the first batch sees the same data
    assert not torch.allclose(stream[32:], episodic[32:])


# --- leaderboard --------------------------------------------------------------------------------

@pytest.mark.slow
def test_label_shift_submissions_end_to_end(tmp_path, monkeypatch):
    """Tiny benchmark: oracle records its true prior exactly, is flagged in its result file and never ranked."""
    from conftest import TINY_BENCHMARK, make_project, submission

    from shiftbench.leaderboard import load_annotated, load_boards
    from shiftbench.leaderboard.aggregate import load_results
    from shiftbench.run.runner import run_submissions
    from shiftbench.run.store import Store
    from shiftbench.run.submission import check_all

    bench = TINY_BENCHMARK.split("scenarios:")[0] + """scenarios:
  - {name: clean, family: clean}
  - {name: dirichlet, family: label, shifts: [{shift: dirichlet_prior, alpha: 1.0, n: 300}]}
"""
    root = make_project(tmp_path / "proj", {
        "source.yaml": submission("Source", "source"),
        "mlls.yaml": submission("MLLS", "mlls"),
        "oracle.yaml": submission("Oracle", "oracle_prior"),
    }, benchmark=bench)
    monkeypatch.chdir(root)
    checked = check_all(sorted((root / "leaderboard" / "submissions").glob("*.yaml")))
    report = run_submissions(checked, device="cpu", store=Store(tmp_path / "store"),
                             results_root=root / "leaderboard" / "results", progress=False)
    assert report.failed == 0
    results = {r["name"]: r for r in load_results(root / "leaderboard" / "results")}
    assert results["Oracle"]["oracle"] and not results["MLLS"]["oracle"]
    dirichlet = {n: next(x for x in r["records"] if x["cell"]["scenario"] == "dirichlet") for n, r in results.items()}
    assert dirichlet["Oracle"]["metrics"]["prior_l1"] < 1e-9
    # EM moves the estimate from the source prior towards the true one (a weak 3-epoch model: not far)
    true = torch.tensor(dirichlet["Oracle"]["method_info"]["prior_estimate"], dtype=torch.float64)
    from shiftbench.data import load_dataset

    source_l1 = (load_dataset("digits").source_train.class_prior() - true).abs().sum().item()
    assert dirichlet["MLLS"]["metrics"]["prior_l1"] < source_l1
    assert "prior_l1" not in dirichlet["Source"]["metrics"]
    table = summary_table(load_annotated(root / "leaderboard" / "results"))
    assert table.set_index("entry").status["Oracle"] == "oracle"
    label = next(b for b in load_boards(root / "leaderboard" / "results")[1] if b.family == "label")
    places = {r.label: r.place for r in label.tables[0].entries}
    assert places["Oracle"] is None and places["MLLS"] is not None and places["Source"] is not None
