"""Laws of the test-time adaptation methods (eata, sar, deyo, cotta, rotta, lame, t3a, shot_im, memo, unmix_tns;
roid, cmf, rmt, whose reference tests are in test_continual_tta.py).

Each method is checked against an independent statement of what it must reduce to (tent, the
source model, BN-adapt, instance normalisation, a hand-written self-training step), plus: reset()
returns to the exact setup state, and the same seed gives the same numbers. Small CNN, 16 px
images, a few batches: the whole file runs in well under a minute on one core.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from shiftbench.core.hashing import seed_from
from shiftbench.core.imageset import ImageSet
from shiftbench.methods import SourceContext, create_method
from shiftbench.methods.normalisation.norm_layers import adapted_norm_parameters, norm_layers
from shiftbench.methods.normalisation.robust_bn import install_robust_bn
from shiftbench.methods.tta.deyo import shuffle_patches
from shiftbench.methods.tta.memo import marginal_entropy
from shiftbench.methods.tta.rotta_memory import CategoryBalancedMemory
from shiftbench.methods.tta.shot_im import information_maximisation_loss
from shiftbench.models.architectures.small_cnn import small_cnn

SIDE = 16
NEW_METHODS = ["eata", "sar", "deyo", "cotta", "rotta", "lame", "t3a", "shot_im", "memo", "unmix_tns", "roid", "cmf", "rmt"]
FAST = {"cotta": {"augmentations": 2}, "memo": {"augmentations": 4}, "eata": {"fisher_samples": 64},
        "rmt": {"warmup_samples": 48, "source_batch_size": 16, "prototype_samples": 64}}


def source_model(seed=0):
    """A small Classifier whose BatchNorm layers carry non-trivial source statistics."""
    torch.manual_seed(seed)
    model = small_cnn(num_classes=10, in_channels=3, width=8)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def context(model, seed=0):
    g = torch.Generator().manual_seed(123)
    train = ImageSet((torch.rand(96, 3, SIDE, SIDE, generator=g) * 255).to(torch.uint8),
                     torch.randint(0, 10, (96,), generator=g), tuple("0123456789"))
    return SourceContext(model=model, val=train, prior=torch.full((10,), 0.1), device=torch.device("cpu"), seed=seed,
                         train=train, batch_size=32)


def stream(n_batches=3, size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(size, 3, SIDE, SIDE, generator=g) * 0.6 + 0.2 for _ in range(n_batches)]


def make(name, params, model, seed=0):
    method = create_method(name, {**FAST.get(name, {}), **params})
    torch.manual_seed(seed)  # the evaluator seeds the global generator before setup
    method.setup(copy.deepcopy(model), context(model, seed))
    method.reset()
    return method


def run(name, params, model, batches, seed=0):
    method = make(name, params, model, seed)
    return [method.predict(x) for x in batches]


def assert_same(a, b, atol=1e-6):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=0)


# ---------------------------------------------------------------- shared laws (every new method)

# parameters that make every method move on the small untrained model (its entropies are too high for the defaults)
ACTIVE = {"eata": {"entropy_margin": 2.0, "redundancy_margin": 0.5, "lr": 1e-2},
          "sar": {"entropy_margin": None, "lr": 0.05}, "deyo": {"entropy_margin": None, "plpd_threshold": -1.0, "lr": 0.05},
          "rotta": {"update_every": 16}, "shot_im": {"lr": 0.05}}


@pytest.mark.parametrize("name", NEW_METHODS)
def test_reset_returns_to_the_exact_setup_state(name):
    model = source_model()
    a, b = stream(2, size=16 if name == "memo" else 32)
    method = make(name, ACTIVE.get(name, {}), model)
    state = copy.deepcopy(method.model.state_dict())
    first = [method.predict(x) for x in (a, b, a)]  # the third prediction comes after updates on the first two
    method.predict(b)
    method.reset()
    for k, v in method.model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert_same([method.predict(x) for x in (a, b, a)], first, atol=0)


@pytest.mark.parametrize("name", NEW_METHODS)
def test_same_seed_same_numbers(name):
    model = source_model()
    batches = stream(2, size=16 if name == "memo" else 32)
    first = run(name, ACTIVE.get(name, {}), model, batches, seed=3)
    torch.manual_seed(999)  # whatever the global generator did in between
    assert_same(run(name, ACTIVE.get(name, {}), model, batches, seed=3), first, atol=0)


@pytest.mark.parametrize("name", ["cotta", "rotta", "deyo", "unmix_tns", "roid", "cmf", "rmt"])
def test_the_cell_seed_drives_the_methods_own_randomness(name):
    model = source_model()
    batches = stream(3)
    a, b = run(name, ACTIVE.get(name, {}), model, batches, seed=0), run(name, ACTIVE.get(name, {}), model, batches, seed=1)
    # the same seed gives the same bits (test_same_seed_same_numbers), so any difference is the seed's;
    # DeYO's shuffled patches only reweight its entropy loss, which moves its outputs by ~1e-6
    assert max((x - y).abs().max() for x, y in zip(a, b)) > 0


def test_the_source_model_is_never_touched():
    model = source_model()
    before = copy.deepcopy(model.state_dict())
    for name in NEW_METHODS:
        run(name, {}, model, stream(1, size=8))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# ---------------------------------------------------------------- entropy family: they reduce to tent

def test_eata_without_filters_weights_or_regulariser_is_tent():
    model, batches = source_model(), stream(3)
    eata = run("eata", {"entropy_margin": None, "redundancy_margin": None, "reweight": False, "fisher_alpha": 0.0,
                        "optimizer": "adam", "lr": 1e-2}, model, batches)
    tent = run("tent", {"optimizer": "adam", "lr": 1e-2}, model, batches)
    assert_same(eata, tent)
    assert (eata[2] - run("bn_adapt", {}, model, batches)[2]).abs().max() > 1e-3  # it did adapt


def test_eata_redundancy_margin_zero_stops_updates_after_the_first_batch():
    """|cos| < 0 never holds: once the moving average exists no sample passes, so the model stops moving."""
    model = source_model()
    a, b = stream(2)
    frozen = make("eata", {"redundancy_margin": 0.0, "entropy_margin": 2.0, "lr": 1e-2, "fisher_alpha": 0.0}, model)
    frozen.predict(a)
    assert torch.equal(frozen.predict(b), frozen.predict(b))
    moving = make("eata", {"redundancy_margin": None, "entropy_margin": 2.0, "lr": 1e-2, "fisher_alpha": 0.0}, model)
    moving.predict(a)
    assert (moving.predict(b) - moving.predict(b)).abs().max() > 1e-5


def test_eata_fisher_is_the_mean_over_batches_of_squared_batch_gradients():
    """An independent restatement: per batch of the seeded source sample, the squared gradient of the
    cross-entropy with argmax labels, averaged over batches (official EATA); the regulariser pulls back."""
    from shiftbench.methods.tta.eata import fisher_diagonal

    model = source_model()
    src = context(model)
    fisher = fisher_diagonal(src, 0.0, 48, 16)
    m = copy.deepcopy(model)
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.train()
            bn.track_running_stats, bn.running_mean, bn.running_var = False, None, None
    params = adapted_norm_parameters(m)
    rows = torch.randperm(96, generator=torch.Generator().manual_seed(seed_from("eata_fisher", 0)))[:48]
    expected = [torch.zeros_like(p) for p in params]
    for s in range(0, 48, 16):
        logits = m(src.train.images[rows[s:s + 16]].float() / 255)
        grads = torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1)), params)
        expected = [e + g**2 for e, g in zip(expected, grads)]
    assert_same(fisher, [e / 3 for e in expected], atol=1e-9)


def test_sar_with_rho_zero_no_filter_and_no_recovery_is_tent_with_sgd():
    model, batches = source_model(), stream(3)
    sar = run("sar", {"rho": 0.0, "entropy_margin": None, "recovery_threshold": 0.0, "lr": 0.05}, model, batches)
    tent = run("tent", {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}, model, batches)
    assert_same(sar, tent)
    sam = run("sar", {"rho": 0.5, "entropy_margin": None, "recovery_threshold": 0.0, "lr": 0.05}, model, batches)
    assert (sam[2] - tent[2]).abs().max() > 1e-4  # the sharpness-aware gradient is another gradient


def test_sar_recovery_resets_when_the_entropy_average_falls_below_the_threshold():
    model = source_model()
    a, b = stream(2)
    always = make("sar", {"recovery_threshold": 100.0, "recovery_scale": "absolute", "lr": 0.05,
                          "entropy_margin": None}, model)
    first = always.predict(a)
    always.predict(b)
    assert torch.equal(always.predict(a), first) and always.recoveries == 3
    never = make("sar", {"recovery_threshold": 0.0, "lr": 0.05, "entropy_margin": None}, model)
    never.predict(a)
    never.predict(b)
    assert (never.predict(a) - first).abs().max() > 1e-5


def test_sar_recovery_threshold_scales_with_the_number_of_classes():
    model = source_model()
    scaled = make("sar", {}, model)
    assert scaled.recover_below == pytest.approx(0.2 * math.log(10) / math.log(1000))
    assert make("sar", {"recovery_scale": "absolute"}, model).recover_below == 0.2


def test_deyo_without_filters_or_weights_is_tent_with_sgd():
    model, batches = source_model(), stream(3)
    deyo = run("deyo", {"entropy_margin": None, "plpd_threshold": None, "reweight_entropy": False,
                        "reweight_plpd": False, "lr": 0.05}, model, batches)
    tent = run("tent", {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}, model, batches)
    assert_same(deyo, tent)


def test_deyo_with_a_one_patch_grid_sees_no_shape_change_and_never_updates():
    """Shuffling a 1 x 1 grid leaves the image as it is: PLPD is 0, never above a 0 threshold, so DeYO is BN-adapt."""
    model, batches = source_model(), stream(3)
    assert_same(run("deyo", {"patch_grid": 1, "plpd_threshold": 0.0, "entropy_margin": None, "lr": 0.05}, model,
                    batches), run("bn_adapt", {}, model, batches))


def test_patch_shuffle_permutes_whole_patches_per_image():
    g = torch.Generator().manual_seed(0)
    grid, side = 4, 16
    values = torch.arange(2 * grid * grid, dtype=torch.float32).view(2, 1, grid, grid)
    x = values.repeat_interleave(side // grid, 2).repeat_interleave(side // grid, 3)  # constant patches
    y = shuffle_patches(x, grid, g)
    patches = y[:, :, :: side // grid, :: side // grid]
    assert torch.equal(y, patches.repeat_interleave(side // grid, 2).repeat_interleave(side // grid, 3))
    for i in range(2):
        assert torch.equal(patches[i].flatten().sort().values, values[i].flatten())
    assert not torch.equal(patches, values)


def test_norm_layer_selection_skips_the_last_fraction():
    model = source_model()
    layers = norm_layers(model)
    assert len(layers) == 5
    assert len(adapted_norm_parameters(model, 0.0)) == 10
    kept = adapted_norm_parameters(model, 0.4)  # floor(0.4 * 5) = 2 layers frozen, from the output end
    assert [id(p) for p in kept] == [id(p) for m in layers[:3] for p in (m.weight, m.bias)]


# ---------------------------------------------------------------- teachers: cotta, rotta

def test_cotta_without_augmentation_restore_or_ema_is_soft_self_training():
    """EMA 0: the teacher is the student before each step; no augmentation: its target is its own softmax on x;
    restore 0: nothing returns. One Adam step per batch on -sum softmax(z).detach() log softmax(z)."""
    model, batches = source_model(), stream(3)
    cotta = run("cotta", {"augmentations": 0, "restore": 0.0, "ema": 0.0, "lr": 1e-2}, model, batches)
    student = copy.deepcopy(model)
    for bn in student.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.train()
            bn.track_running_stats, bn.running_mean, bn.running_var = False, None, None
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    expected = []
    for x in batches:
        z = student(x)
        expected.append(z.detach())
        (-(z.detach().softmax(1) * z.log_softmax(1)).sum(1).mean()).backward()
        opt.step()
        opt.zero_grad()
    assert_same(cotta, expected, atol=1e-5)
    assert (expected[2] - run("bn_adapt", {}, model, batches)[2]).abs().max() > 1e-3


def test_cotta_restore_one_returns_the_student_to_the_source_after_every_step():
    model = source_model()
    method = make("cotta", {"augmentations": 0, "restore": 1.0, "lr": 1e-2}, model)
    for x in stream(2):
        method.predict(x)
    for p, p0 in zip(method.params, method.source_params):
        assert torch.equal(p, p0)


def test_cotta_uses_augmented_targets_only_when_the_anchor_is_unsure():
    model, batches = source_model(), stream(2)
    plain = run("cotta", {"augmentations": 0}, model, batches)
    assert_same(run("cotta", {"confidence_threshold": 0.0}, model, batches), plain)  # never unsure
    assert (run("cotta", {"confidence_threshold": 1.0}, model, batches)[0] - plain[0]).abs().max() > 1e-4


def test_robust_bn_interpolates_between_source_statistics_and_batch_statistics():
    model, x = source_model(), stream(1)[0]
    for alpha, reference in ((0.0, "source"), (1.0, "bn_adapt")):
        robust = copy.deepcopy(model)
        install_robust_bn(robust, alpha)
        robust.train()
        with torch.no_grad():
            assert_same([robust(x)], run(reference, {}, model, [x]), atol=1e-5)


def test_rotta_without_learning_or_moving_statistics_is_the_source_model():
    model, batches = source_model(), stream(3)
    assert_same(run("rotta", {"lr": 0.0, "nu": 0.0, "bn_alpha": 0.0, "update_every": 16}, model, batches),
                run("source", {}, model, batches), atol=1e-5)
    moved = run("rotta", {"update_every": 16}, model, batches)
    assert (moved[2] - run("source", {}, model, batches)[2]).abs().max() > 1e-4


def test_rotta_memory_stays_class_balanced_and_evicts_the_stalest_least_certain():
    memory = CategoryBalancedMemory(capacity=6, num_classes=3)
    img = torch.zeros(1)
    for i in range(30):
        memory.add(img, label=0, uncertainty=0.1)  # one class floods the stream
    assert len(memory) == 2 and len(memory.items[0]) == 2  # capped at capacity / K for its class
    assert sorted(item.age for item in memory.items[0]) == [1, 2]  # the newest two survive
    for k in (1, 2, 1, 2):
        memory.add(img, label=k, uncertainty=0.5)
    assert [len(c) for c in memory.items] == [2, 2, 2]
    memory.add(img, label=1, uncertainty=0.0)  # class 1 full: its stalest, least certain item goes
    assert len(memory.items[1]) == 2 and min(i.uncertainty for i in memory.items[1]) == 0.0


# ---------------------------------------------------------------- output adjustment: lame, t3a

def test_lame_with_zero_affinity_is_the_source_model():
    model, batches = source_model(), stream(2)
    lame = run("lame", {"knn": 0}, model, batches)
    source = run("source", {}, model, batches)
    assert_same([z.softmax(1) for z in lame], [z.softmax(1) for z in source], atol=1e-6)


def test_lame_output_is_the_fixed_point_of_its_bound_updates():
    """Y = softmax(log(p + 1e-10) + W Y), W the 5-nearest-neighbour graph of the L2-normalised features (self excluded),
    on random features and predictions (an untrained model predicts one class for everything)."""
    from shiftbench.methods.tta.lame import affinity, laplacian_optimization

    g = torch.Generator().manual_seed(0)
    features, p = torch.randn(40, 8, generator=g), (3 * torch.randn(40, 6, generator=g)).softmax(1)
    f = F.normalize(features, dim=1)
    y = laplacian_optimization(-torch.log(p + 1e-10), affinity(f, "knn", 5), 1000).softmax(1)
    w = torch.zeros(40, 40)
    for i in range(40):
        for _, j in sorted(((f[i] - f[j]).norm().item(), j) for j in range(40) if j != i)[:5]:
            w[i, j] = 1.0
    torch.testing.assert_close(y, (torch.log(p + 1e-10) + w @ y).softmax(1), atol=1e-4, rtol=0)
    assert (y - p).abs().max() > 0.1 and len(y.argmax(1).unique()) > 1


def test_lame_is_equivariant_to_the_order_of_the_batch():
    model, x = source_model(), stream(1)[0]
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    lame = make("lame", {}, model)
    out = lame.predict(x)
    assert_same([lame.predict(x[perm]).softmax(1)], [out[perm].softmax(1)], atol=1e-6)
    assert (out.softmax(1) - run("source", {}, model, [x])[0].softmax(1)).abs().max() > 1e-3


def test_t3a_with_confident_warm_up_supports_is_the_normalised_weight_classifier():
    """Orthogonal, large head weights make each warm-up support (a weight row) its own class's with entropy 0, the
    most confident of its class; with filter size 1 they are all that remain, so T3A predicts z . w_k / |w_k|."""
    model = source_model()
    q, _ = torch.linalg.qr(torch.randn(32, 10, generator=torch.Generator().manual_seed(0)))
    model.head.weight.data = 50 * q.t()
    x = stream(1)[0]
    out = run("t3a", {"filter_k": 1}, model, [x])[0]
    with torch.no_grad():
        z, _ = model.features_and_logits(x)
    assert_same([out], [z @ F.normalize(model.head.weight, dim=1).t()], atol=1e-5)


def test_t3a_keeps_at_most_filter_k_supports_per_class():
    model = source_model()
    method = make("t3a", {"filter_k": 3}, model)
    for x in stream(3):
        method.predict(x)
    counts = torch.bincount(method.labels.argmax(1), minlength=10)
    assert counts.max() <= 3 and len(method.supports) == counts.sum()


def test_t3a_prototypes_are_unit_vectors_so_no_logit_exceeds_the_feature_norm():
    model = source_model()
    method = make("t3a", {"filter_k": 20}, model)
    for x in stream(3):
        out = method.predict(x)
    with torch.no_grad():
        z, _ = model.features_and_logits(x)
    ratio = out.abs().max(1).values / z.norm(dim=1)
    assert ratio.max() <= 1 + 1e-5 and ratio.min() > 0.5  # |z . u| <= |z| for unit u, near it for the best class


# ---------------------------------------------------------------- shot_im, memo, unmix_tns

def test_shot_im_trains_the_feature_extractor_and_never_the_classifier():
    model = source_model()
    method = make("shot_im", {"lr": 0.05}, model)
    before = {k: v.clone() for k, v in method.model.named_parameters()}
    method.predict(stream(1)[0])
    for k, p in method.model.named_parameters():
        assert torch.equal(p, before[k]) == k.startswith("net.head."), k


def test_shot_im_without_diversity_on_norm_layers_is_tent_with_sgd():
    """Up to SHOT's log(p + 1e-5), which moves these logits by far less than the tolerance."""
    model, batches = source_model(), stream(3)
    shot = run("shot_im", {"diversity_weight": 0.0, "adapt": "norm", "weight_decay": 0.0, "nesterov": False,
                           "lr": 0.05}, model, batches)
    assert_same(shot, run("tent", {"optimizer": "sgd", "lr": 0.05}, model, batches), atol=1e-4)


def test_information_maximisation_prefers_confident_and_diverse_predictions():
    confident_diverse = torch.eye(10) * 50
    collapsed = torch.zeros(10, 10)
    collapsed[:, 0] = 50
    assert information_maximisation_loss(confident_diverse, 1.0).item() == pytest.approx(-math.log(10), abs=1e-3)
    assert information_maximisation_loss(collapsed, 1.0).item() == pytest.approx(0.0, abs=1e-3)


def test_memo_predicts_each_image_from_the_source_model_whatever_came_before():
    model = source_model()
    a, b = stream(2, size=6)
    method = make("memo", {"augmentations": 4}, model)
    alone = method.predict(a[2:3])
    method.predict(b)
    in_batch = method.predict(torch.cat([b[:2], a[2:3]]))
    assert torch.equal(in_batch[2:], alone)


def test_memo_without_learning_or_prior_is_the_source_model():
    model, x = source_model(), stream(1, size=6)[0]
    assert_same(run("memo", {"lr": 0.0, "prior_strength": None, "augmentations": 2}, model, [x]),
                run("source", {}, model, [x]), atol=1e-6)


def test_cotta_augmentation_after_the_colour_jitter_is_torchvisions_pipeline():
    """Pad (edge), RandomAffine, GaussianBlur, CenterCrop, RandomHorizontalFlip as the official CoTTA composes them,
    drawn by torchvision from the global generator, then N(0, 0.005) noise and clipping: same seed, same images."""
    import torchvision.transforms as T

    from shiftbench.methods.tta.cotta_augment import STRONG, geometry_and_noise

    x = stream(1, size=4, seed=5)[0]
    pipeline = T.Compose([T.Pad(SIDE // 2, padding_mode="edge"),
                          T.RandomAffine([-15, 15], translate=(1 / 16, 1 / 16), scale=(0.9, 1.1),
                                         interpolation=T.InterpolationMode.BILINEAR),
                          T.GaussianBlur(5, sigma=[0.001, 0.5]), T.CenterCrop(SIDE), T.RandomHorizontalFlip(0.5)])
    for seed in range(4):
        torch.manual_seed(seed)
        expected = (pipeline(x) + torch.randn(x.shape) * 0.005).clamp(0, 1)
        got = geometry_and_noise(x, STRONG, torch.Generator().manual_seed(seed))
        assert torch.equal(got, expected), seed


def test_marginal_entropy_is_the_entropy_of_the_mean_prediction():
    logits = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    p = logits.softmax(1).mean(0)
    assert marginal_entropy(logits).item() == pytest.approx(-(p * p.log()).sum().item(), abs=1e-6)


def test_unmix_tns_with_one_component_is_instance_normalisation():
    """K = 1: every image is assigned to the one component with weight 1, so it is normalised with its own statistics."""
    model, x = source_model(), stream(1)[0]
    out = run("unmix_tns", {"components": 1}, model, [x])[0]
    inst = copy.deepcopy(model)

    def instance_norm(bn):
        return lambda t: F.instance_norm(t, weight=bn.weight, bias=bn.bias, eps=bn.eps)

    for m in inst.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = instance_norm(m)
    with torch.no_grad():
        assert_same([out], [inst(x)], atol=1e-4)


def test_unmix_tns_normalises_images_independently_of_their_order_in_the_batch():
    model, x = source_model(), stream(1)[0]
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    out = run("unmix_tns", {}, model, [x])[0]
    assert_same([run("unmix_tns", {}, model, [x[perm]])[0]], [out[perm]], atol=1e-5)
