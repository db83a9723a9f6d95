"""ROID, CMF and RMT against the update rules of the test-time-adaptation repository (mariodoebler).

Each reference test restates that repository's step on a copy of the tiny model, written out
here from its code (loss_calculation, forward_and_adapt, bayesian_filtering, warm-up), with the
same random draws (the augmentation from the same seeded generator, the same source batches),
and compares predictions and parameters after a few batches. The shared laws (reset, seeds,
the source model untouched) run for these methods in test_tta_methods.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from torch import nn

from shiftbench.core.hashing import seed_from
from shiftbench.methods.tta.cotta_augment import STRONG, cotta_augment, geometry_and_noise
from shiftbench.methods.tta.losses import supervised_contrastive

from test_tta_methods import SIDE, assert_same, context, make, run, source_model, stream

TINY_RMT = {"warmup_samples": 48, "source_batch_size": 16, "prototype_samples": 64}


# ---------------------------------------------------------------- the repository's step, restated

def ref_sce(x, x_ema):
    return -0.5 * (x_ema.softmax(1) * x.log_softmax(1)).sum(1) - 0.5 * (x.softmax(1) * x_ema.log_softmax(1)).sum(1)


def ref_slr(logits):
    probs = torch.clamp(logits.softmax(1), min=0.0, max=0.99)
    return -(probs * torch.log((probs / (torch.ones_like(probs) - probs)) + 1e-5)).sum(1)


def ref_configure_norm(model):
    """configure_model of ROID/CMF: BN on batch statistics, only norm layers trainable; collect_params."""
    model.eval()
    model.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.requires_grad_(True)
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
        elif isinstance(m, nn.BatchNorm1d):
            m.train()
            m.requires_grad_(True)
    return [p for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))
            for n, p in m.named_parameters() if n in ("weight", "bias") and p.requires_grad]


def ref_ema(to_update, to_merge, momentum, update_all=False):
    for p, q in zip(to_update.parameters(), to_merge.parameters()):
        if p.requires_grad or update_all:
            p.data = momentum * p.data + (1 - momentum) * q.data


class RefROIDLoss:
    """ROID's loss_calculation and prior correction, as in the repository (defaults of its conf.py)."""

    def __init__(self, model, num_classes, seed, name):
        self.model = model
        self.params = ref_configure_norm(model)
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
        self.class_probs_ema = torch.ones(num_classes) / num_classes
        self.generator = torch.Generator().manual_seed(seed_from("roid_augment", seed))

    def loss_calculation(self, imgs_test):
        outputs = self.model(imgs_test)
        with torch.no_grad():
            weights_div = 1 - F.cosine_similarity(self.class_probs_ema.unsqueeze(dim=0), outputs.softmax(1), dim=1)
            weights_div = (weights_div - weights_div.min()) / (weights_div.max() - weights_div.min())
            mask = weights_div < weights_div.mean()
            weights_cert = (outputs.softmax(1) * outputs.log_softmax(1)).sum(1)  # minus the entropy
            weights_cert = (weights_cert - weights_cert.min()) / (weights_cert.max() - weights_cert.min())
            weights = torch.exp(weights_div * weights_cert / (1 / 3))
            weights[mask] = 0.0
            self.class_probs_ema = 0.9 * self.class_probs_ema + 0.1 * outputs.softmax(1).mean(0)
        loss_out = (ref_slr(outputs) * weights)[~mask]
        loss = loss_out.sum() / len(imgs_test)
        aug = cotta_augment(imgs_test[~mask], self.generator, padding="reflect", blur_and_noise=False)
        outputs_aug = self.model(aug)
        loss += (ref_sce(outputs_aug, outputs[~mask]) * weights[~mask]).sum() / len(imgs_test)
        return outputs, loss

    def step(self, x):
        with torch.enable_grad():
            outputs, loss = self.loss_calculation(x)
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.after_step()
        with torch.no_grad():
            prior = outputs.softmax(1).mean(0)
            smooth = max(1 / outputs.shape[0], 1 / outputs.shape[1]) / torch.max(prior)
            smoothed_prior = (prior + smooth) / (1 + smooth * outputs.shape[1])
            return outputs.detach() * smoothed_prior


class RefROID(RefROIDLoss):
    def __init__(self, model, num_classes, seed, q=None):
        super().__init__(model, num_classes, seed, "roid")
        self.src_model = copy.deepcopy(model)
        for p in self.src_model.parameters():
            p.detach_()

    def after_step(self):
        ref_ema(self.model, self.src_model, 0.99)


class RefCMF(RefROIDLoss):
    """bayesian_filtering with whole-model copies, as the repository keeps them."""

    def __init__(self, model, num_classes, seed, q=0.005):
        super().__init__(model, num_classes, seed, "cmf")
        self.src_model = copy.deepcopy(model)
        self.hidden_model = copy.deepcopy(model)
        for p in list(self.src_model.parameters()) + list(self.hidden_model.parameters()):
            p.detach_()
        self.hidden_var = 0
        self.q = q * sum(p.numel() for p in self.params) / 38400

    def after_step(self):
        with torch.no_grad():
            ref_ema(self.hidden_model, self.src_model, 0.99, update_all=True)
            self.hidden_var = 0.99 ** 2 * self.hidden_var + self.q
            r = 1 - self.q
            beta = r / (self.hidden_var + r)
            beta = beta if beta > 0.89 else 0.89
            beta = beta if beta < 0.9999 else 1.0
            self.hidden_var = beta * self.hidden_var
            ref_ema(self.hidden_model, self.model, beta, update_all=True)
            ref_ema(self.model, self.hidden_model, 0.99)


# CMF's q scales with the trained parameters (160 here): 0.005 keeps beta at 1, 0.9 puts it near 0.99,
# 50 drives it to the 0.89 floor
@pytest.mark.parametrize("name, reference, q", [("roid", RefROID, None), ("cmf", RefCMF, 0.005), ("cmf", RefCMF, 0.9),
                                                ("cmf", RefCMF, 50.0)])
def test_roid_and_cmf_follow_the_repositorys_update_rule(name, reference, q):
    model, batches = source_model(), stream(4)
    method = make(name, {} if q is None else {"q": q}, model)
    ref = reference(copy.deepcopy(model), 10, seed=0, q=q)
    for i, x in enumerate(batches):
        torch.testing.assert_close(method.predict(x), ref.step(x), atol=1e-5, rtol=0, msg=f"batch {i}")
    for p, q in zip(method.params, ref.params, strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    moved = max((p - p0).abs().max() for p, p0 in zip(method.params, method.source_params))
    assert moved > 1e-4  # the comparison saw real updates


@pytest.mark.parametrize("q", [0.005, 0.9, 50.0])
def test_cmf_filter_variance_follows_the_closed_recursion(q):
    """v_t = beta_t (alpha^2 v_{t-1} + q) with beta_t clipped to [0.89, 1): after a few steps, by hand."""
    method = make("cmf", {"q": q}, source_model())
    v = 0.0
    for x in stream(3):
        method.predict(x)
        v = 0.99 ** 2 * v + method.q
        beta = min(max((1 - method.q) / (v + 1 - method.q), 0.89), 1.0)
        v = beta * v if beta < 0.9999 else v
        assert method.variance == pytest.approx(v, rel=1e-12)


def test_roid_without_ensembling_weights_or_prior_correction_and_cmf_without_filtering_agree():
    """CMF with gamma 1 never pulls the trained parameters: the same as ROID with momentum_source 1."""
    model, batches = source_model(), stream(3)
    assert_same(run("cmf", {"gamma": 1.0}, model, batches), run("roid", {"momentum_source": 1.0}, model, batches))


def test_roid_fully_pulled_back_to_the_source_predicts_as_bn_adapt():
    """momentum_source 0: after every step the parameters are the source's again, so each prediction is BN-adapt's."""
    model, batches = source_model(), stream(3)
    got = run("roid", {"momentum_source": 0.0, "use_prior_correction": False}, model, batches)
    assert_same(got, run("bn_adapt", {}, model, batches), atol=1e-5)


def test_the_shared_losses_equal_the_repositorys_on_confident_and_unsure_logits():
    from shiftbench.methods.tta.losses import soft_likelihood_ratio, symmetric_cross_entropy

    g = torch.Generator().manual_seed(0)
    z, t = torch.randn(16, 5, generator=g) * 8, torch.randn(16, 5, generator=g)  # z is often past the 0.99 clip
    assert (z.softmax(1).max(1).values > 0.99).any()
    torch.testing.assert_close(soft_likelihood_ratio(z), ref_slr(z), atol=1e-6, rtol=0)
    torch.testing.assert_close(symmetric_cross_entropy(z, t), ref_sce(z, t), atol=1e-6, rtol=0)


def test_roid_and_cmf_augmentation_is_torchvisions_reflect_pipeline():
    """Reflect pad, RandomAffine, CenterCrop, RandomHorizontalFlip (cotta_augs=False in the repository): same seed, same images."""
    x = stream(1, size=4, seed=5)[0]
    pipeline = T.Compose([T.Pad(SIDE // 2, padding_mode="reflect"),
                          T.RandomAffine([-15, 15], translate=(1 / 16, 1 / 16), scale=(0.9, 1.1),
                                         interpolation=T.InterpolationMode.BILINEAR),
                          T.CenterCrop(SIDE), T.RandomHorizontalFlip(0.5)])
    for seed in range(4):
        torch.manual_seed(seed)
        expected = pipeline(x).clamp(0, 1)
        got = geometry_and_noise(x, STRONG, torch.Generator().manual_seed(seed), "reflect", blur_and_noise=False)
        assert torch.equal(got, expected), seed


# ---------------------------------------------------------------- RMT

def ref_contrastive(features, projector, temperature=0.1):
    """The repository's contrastive_loss (SupContrast), labels None, mode 'all'."""
    batch_size = features.shape[0]
    mask = torch.eye(batch_size, dtype=torch.float32)
    contrast_count = features.shape[1]
    contrast_feature = torch.cat(torch.unbind(features, dim=1), dim=0)
    contrast_feature = F.normalize(projector(contrast_feature), p=2, dim=1)
    anchor_feature, anchor_count = contrast_feature, contrast_count
    anchor_dot_contrast = torch.div(torch.matmul(anchor_feature, contrast_feature.T), temperature)
    logits_max, _ = torch.max(anchor_dot_contrast, dim=1, keepdim=True)
    logits = anchor_dot_contrast - logits_max.detach()
    mask = mask.repeat(anchor_count, contrast_count)
    logits_mask = torch.scatter(torch.ones_like(mask), 1, torch.arange(batch_size * anchor_count).view(-1, 1), 0)
    mask = mask * logits_mask
    exp_logits = torch.exp(logits) * logits_mask
    log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return (-(temperature / temperature) * mean_log_prob_pos).view(anchor_count, batch_size).mean()


def test_supervised_contrastive_equals_the_repositorys_loss():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(6, 3, 5, generator=g)
    projector = nn.Linear(5, 4)
    expected = ref_contrastive(features, projector)
    assert supervised_contrastive(F.normalize(projector(features), p=2, dim=-1)).item() == pytest.approx(
        expected.item(), abs=1e-6)


class RefSource:
    """A shuffled source loader that cycles (new permutation each epoch), drawn from `generator`."""

    def __init__(self, train, batch_size, generator):
        self.train, self.batch_size, self.generator, self.batches = train, batch_size, generator, []

    def next(self):
        if not self.batches:
            self.batches = list(torch.randperm(len(self.train), generator=self.generator).split(self.batch_size))
        rows = self.batches.pop(0)
        return self.train.images[rows].float() / 255, self.train.labels[rows]


class RefRMT:
    """The repository's RMT: configure_model, prototypes, projector, warm-up, loss_calculation, EMA."""

    def __init__(self, model, src, params):
        self.model = model
        model.eval()
        model.requires_grad_(False)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.requires_grad_(True)
                m.track_running_stats, m.running_mean, m.running_var = False, None, None
            else:
                m.requires_grad_(True)
        own = [p for m in model.modules() for n, p in m.named_parameters(recurse=False) if n in ("weight", "bias")]
        self.model_ema = copy.deepcopy(model)
        for p in self.model_ema.parameters():
            p.detach_()
        bs = params["source_batch_size"]
        self.generator = torch.Generator().manual_seed(seed_from("rmt", src.seed))
        self.src = RefSource(src.train, bs, self.generator)
        protos = RefSource(src.train, bs, torch.Generator().manual_seed(seed_from("rmt_prototypes", src.seed)))
        feats, labels = torch.tensor([]), torch.tensor([])
        with torch.no_grad():
            while len(feats) < params["prototype_samples"]:
                x, y = protos.next()
                feats = torch.cat([feats, model.features_and_logits(x)[0]])
                labels = torch.cat([labels, y.float()])
        feats, labels = feats[:params["prototype_samples"]], labels[:params["prototype_samples"]]
        self.prototypes_src = torch.cat([feats[labels == i].mean(0, keepdim=True) for i in range(10)]).unsqueeze(1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_from("rmt_projector", src.seed))
            d = self.prototypes_src.shape[-1]
            self.projector = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 128))
        self.optimizer = torch.optim.Adam(own, lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0)
        self.optimizer.add_param_group({"params": self.projector.parameters(), "lr": 1e-3})
        warmup_steps = params["warmup_samples"] // bs
        for i in range(warmup_steps):
            for par in self.optimizer.param_groups:
                par["lr"] = 1e-3 * (i + 1) / warmup_steps
            imgs_src, _ = self.src.next()
            with torch.enable_grad():
                ref_sce(self.model(imgs_src), self.model_ema(imgs_src)).mean(0).backward()
            self.optimizer.step()
            self.optimizer.zero_grad()
            ref_ema(self.model_ema, self.model, 0.999, update_all=True)
        for par in self.optimizer.param_groups:
            par["lr"] = 1e-3

    def step(self, imgs_test):
        with torch.enable_grad():
            features_test, outputs_test = self.model.features_and_logits(imgs_test)
            features_aug_test, outputs_aug_test = self.model.features_and_logits(cotta_augment(imgs_test, self.generator))
            outputs_ema = self.model_ema(imgs_test)
            with torch.no_grad():
                n = features_test.shape[0]
                dist = F.cosine_similarity(self.prototypes_src.repeat(1, n, 1),
                                           features_test.view(1, n, -1).repeat(self.prototypes_src.shape[0], 1, 1),
                                           dim=-1)
                _, indices = dist.topk(1, largest=True, dim=0)
                indices = indices.squeeze(0)
            features = torch.cat([self.prototypes_src[indices], features_test.view(n, 1, -1),
                                  features_aug_test.view(n, 1, -1)], dim=1)
            loss = ref_contrastive(features, self.projector)
            loss = loss + (0.5 * ref_sce(outputs_test, outputs_ema) + 0.5 * ref_sce(outputs_aug_test, outputs_ema)).mean(0)
            imgs_src, labels_src = self.src.next()
            loss = loss + F.cross_entropy(self.model(imgs_src), labels_src.long())
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        ref_ema(self.model_ema, self.model, 0.999, update_all=True)
        return (outputs_test + outputs_ema).detach()


def test_rmt_follows_the_repositorys_update_rule_warm_up_included():
    model, batches = source_model(), stream(3)
    method = make("rmt", TINY_RMT, model)
    src = context(model)
    torch.manual_seed(0)
    ref = RefRMT(copy.deepcopy(model), src, TINY_RMT)
    torch.testing.assert_close(method.prototypes, ref.prototypes_src.squeeze(1), atol=1e-6, rtol=0)
    for i, x in enumerate(batches):
        torch.testing.assert_close(method.predict(x), ref.step(x), atol=1e-5, rtol=0, msg=f"batch {i}")
    for (name, p), q in zip(method.model.named_parameters(), ref.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)
    for p, q in zip(method.teacher.parameters(), ref.model_ema.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    assert max((p - p0).abs().max() for p, p0 in zip(method.model.parameters(), model.parameters())) > 1e-4


def test_rmt_without_source_replay_never_reads_a_source_batch_after_setup():
    model = source_model()
    method = make("rmt", {**TINY_RMT, "lambda_ce_src": 0.0}, model)
    at = method.source_batches.at, method.source_batches.order.clone()
    for x in stream(2):
        method.predict(x)
    assert method.source_batches.at == at[0] and torch.equal(method.source_batches.order, at[1])
