"""Laws the normalisation methods must obey, on a model with non-trivial source statistics."""

import copy

import pytest
import torch
from torch import nn

from shiftbench.core.imageset import ImageSet
from shiftbench.methods import SourceContext, create_method
from shiftbench.methods.tta.losses import entropy
from shiftbench.models.architectures.small_cnn import SmallCNN


def model_with_source_stats(seed=0):
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=10, width=8)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def context(model):
    data = ImageSet(torch.zeros(4, 3, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), tuple("0123456789"))
    return SourceContext(model=model, val=data, prior=torch.full((10,), 0.1), device=torch.device("cpu"), seed=0)


def predict(name, params, model, x):
    method = create_method(name, params)
    m = copy.deepcopy(model)
    method.setup(m, context(model))
    method.reset()
    return method.predict(x)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(32, 3, 28, 28, generator=g) * 0.6 + 0.2  # shifted away from the source statistics


def test_alpha_zero_equals_source(batch):
    model = model_with_source_stats()
    torch.testing.assert_close(predict("alpha_bn", {"alpha": 0.0}, model, batch),
                               predict("source", {}, model, batch), atol=1e-5, rtol=0)


def test_alpha_one_equals_bn_adapt(batch):
    model = model_with_source_stats()
    torch.testing.assert_close(predict("alpha_bn", {"alpha": 1.0}, model, batch),
                               predict("bn_adapt", {}, model, batch), atol=1e-5, rtol=0)


def test_alpha_in_between_differs_from_both(batch):
    model = model_with_source_stats()
    mid = predict("alpha_bn", {"alpha": 0.5}, model, batch)
    assert (mid - predict("source", {}, model, batch)).abs().max() > 1e-3
    assert (mid - predict("bn_adapt", {}, model, batch)).abs().max() > 1e-3


def test_mixture_variance_is_the_two_component_variance():
    """With the mixture term, mean/var equal those of pooling source and test samples in proportion."""
    from shiftbench.methods.normalisation.alpha_bn import MixedStatsBatchNorm

    bn = nn.BatchNorm2d(1, affine=False).eval()
    bn.running_mean.fill_(2.0)
    bn.running_var.fill_(1.0)
    x = torch.randn(1000, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 0.5 - 1.0
    a = 0.3
    out = MixedStatsBatchNorm(bn, a, mixture_variance=True)(x)
    mu_t, var_t = x.mean(), x.var(unbiased=False)
    mu = (1 - a) * 2.0 + a * mu_t
    var = (1 - a) * 1.0 + a * var_t + a * (1 - a) * (2.0 - mu_t) ** 2
    torch.testing.assert_close(out, (x - mu) / torch.sqrt(var + bn.eps), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name, params", [("bn_adapt", {}), ("tent", {"lr": 1e-2}), ("alpha_bn", {"alpha": 0.5}),
                                          ("online_em", {"base": "tent", "base_params": {"lr": 1e-2}})])
def test_adapting_methods_change_their_copy_and_never_the_source_model(batch, name, params):
    """setup() gets the cell's own copy; SourceContext.model is the shared source model, which other
    cells (and methods that read it for prior estimates) rely on staying as trained."""
    model = model_with_source_stats()
    before = copy.deepcopy(model.state_dict())
    method = create_method(name, params)
    own = copy.deepcopy(model)
    method.setup(own, context(model))
    first = method.predict(batch)
    second = method.predict(batch)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training and all(not m.training for m in model.modules())
    with torch.no_grad():
        assert not torch.allclose(own(batch), model(batch))  # the copy did adapt (batch statistics or weights)
    if name in ("tent", "online_em"):
        assert not torch.equal(first, second)  # and keeps adapting from batch to batch


def test_tent_lowers_mean_entropy_on_a_shifted_batch(batch):
    model = model_with_source_stats()
    method = create_method("tent", {"lr": 1e-2, "steps": 1})
    method.setup(copy.deepcopy(model), context(model))
    first = entropy(method.predict(batch)).mean()
    for _ in range(4):
        method.predict(batch)
    with torch.no_grad():
        after = entropy(method.model(batch)).mean()
    assert after < first - 1e-3


def test_tent_reset_restores_the_initial_state(batch):
    model = model_with_source_stats()
    method = create_method("tent", {"lr": 1e-2})
    method.setup(copy.deepcopy(model), context(model))
    first = method.predict(batch)
    method.predict(batch)
    method.reset()
    torch.testing.assert_close(method.predict(batch), first, atol=1e-6, rtol=0)


def test_a_snapshot_taken_after_optimiser_steps_restores_the_same_state_every_time():
    """Adam keeps its step count in tensors that load_state_dict does not copy: restoring the snapshot's own
    dict would let later steps count the snapshot up (RMT snapshots after its warm-up)."""
    from shiftbench.methods.snapshot import Snapshot

    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)

    def step():
        net(torch.ones(4, 3)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()

    step()
    snap = Snapshot(net, opt)
    step()
    first = copy.deepcopy(net.state_dict())
    for _ in range(2):
        snap.restore()
        step()
        step()
        snap.restore()
        step()
        for k, v in net.state_dict().items():
            assert torch.equal(v, first[k]), k


def test_tent_updates_only_norm_affine_parameters(batch):
    model = model_with_source_stats()
    method = create_method("tent", {"lr": 1e-2})
    method.setup(copy.deepcopy(model), context(model))
    norm_params = {id(p) for m in method.model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    before = {k: v.clone() for k, v in method.model.named_parameters()}
    method.predict(batch)
    for name, p in method.model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == (id(p) in norm_params), name
