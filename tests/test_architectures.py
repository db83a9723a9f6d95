"""Architectures: RobustBench's WRN layout, torchvision / timm / user networks through the one registry,
their heads and preprocessing checked against the libraries' own definitions."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from shiftbench.core.code_identity import code_hash
from shiftbench.core.errors import UserError
from shiftbench.models import ARCHITECTURES, build_model
from shiftbench.models.architectures import check_arch_params
from shiftbench.models.checkpoint import load_weights, save_state_dict
from shiftbench.models.train import build_classifier

# ---------------------------------------------------------------- wide_resnet

def robustbench_wrn_forward(state: dict[str, torch.Tensor], x: torch.Tensor, depth: int) -> torch.Tensor:
    """WRN forward written from the RobustBench `Standard` description, straight from a state dict
    (pre-activation blocks; a projecting block's shortcut and first conv read the pre-activated input)."""

    def bn(prefix, t):
        return F.batch_norm(t, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                            state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-5)

    n = (depth - 4) // 6
    out = F.conv2d(x, state["conv1.weight"], padding=1)
    for stage, stride in ((1, 1), (2, 2), (3, 2)):
        for i in range(n):
            p = f"block{stage}.layer.{i}"
            s = stride if i == 0 else 1
            act = F.relu(bn(f"{p}.bn1", out))
            y = F.conv2d(act, state[f"{p}.conv1.weight"], stride=s, padding=1)
            y = F.conv2d(F.relu(bn(f"{p}.bn2", y)), state[f"{p}.conv2.weight"], padding=1)
            short = F.conv2d(act, state[f"{p}.convShortcut.weight"], stride=s) if f"{p}.convShortcut.weight" in state else out
            out = y + short
    out = F.relu(bn("bn1", out))
    return F.linear(F.avg_pool2d(out, 8).flatten(1), state["fc.weight"], state["fc.bias"])


def test_wrn_28_10_has_the_published_size_and_robustbench_parameter_names():
    net = build_model("wide_resnet", 10, 3, depth=28, widen_factor=10).net
    n_params = sum(p.numel() for p in net.parameters())
    assert 36.4e6 < n_params < 36.6e6  # Zagoruyko & Komodakis: WRN-28-10 has 36.5M parameters
    keys = net.state_dict()
    assert tuple(keys["fc.weight"].shape) == (10, 640) and tuple(keys["conv1.weight"].shape) == (16, 3, 3, 3)
    assert tuple(keys["block1.layer.0.convShortcut.weight"].shape) == (160, 16, 1, 1)
    assert "block1.layer.1.convShortcut.weight" not in keys and "block3.layer.3.bn2.running_var" in keys
    assert not any(k.startswith("block4") or "sub_block" in k for k in keys)


def test_wide_resnet_agrees_with_an_independent_forward_on_a_robustbench_style_checkpoint(tmp_path):
    torch.manual_seed(0)
    ref = build_model("wide_resnet", 10, 3, depth=10, widen_factor=2).net
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    for k, v in state.items():  # non-trivial BN statistics, so a wrong BN placement shows
        if k.endswith("running_mean"):
            v.normal_(0, 0.1)
        elif k.endswith("running_var"):
            v.uniform_(0.5, 2)
    # saved the way RobustBench does: a DataParallel-prefixed state dict under 'state_dict'
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrn.pt")
    model = build_classifier({"arch": "wide_resnet", "depth": 10, "widen_factor": 2}, 10, 3)
    load_weights(model.net, tmp_path / "wrn.pt")
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), robustbench_wrn_forward(state, x, 10), atol=1e-4)
    assert model.mean is None and model.std is None  # RobustBench's CIFAR models take [0, 1] as they are


def test_wide_resnet_depth_must_be_6n_plus_4():
    with pytest.raises(UserError, match="model.depth.*6n \\+ 4"):
        check_arch_params("wide_resnet", {"depth": 27})


# ---------------------------------------------------------------- torchvision

@pytest.mark.parametrize("builder, head", [("resnet18", "fc"), ("mobilenet_v3_small", "classifier.3"),
                                           ("squeezenet1_1", "classifier")])  # no Linear: the whole classifier block
def test_torchvision_builders_name_their_classifier_head(builder, head):
    model = build_model(f"torchvision:{builder}", 7, 3)
    assert model.head_name == head
    feats, logits = model.eval().features_and_logits(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, 7) and feats.shape[0] == 2


def test_torchvision_model_and_its_evaluation_transform_match_torchvision(tmp_path):
    import torchvision
    from torchvision.transforms import v2

    torch.manual_seed(0)
    theirs = torchvision.models.resnet18(num_classes=5).eval()
    save_state_dict(theirs.state_dict(), tmp_path / "r18.pt")
    ours = build_classifier({"arch": "torchvision:resnet18"}, 5, 3)
    load_weights(ours.net, tmp_path / "r18.pt")
    x = torch.rand(3, 3, 250, 300)  # not yet in the model's geometry: resize 256 + centre crop 224 first
    transform = v2.Compose([v2.Resize(256, antialias=True), v2.CenterCrop(224),
                            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), theirs(transform(x)), atol=2e-4)
        # an image already at the input size is taken as resized and cropped: only normalised
        y = torch.rand(2, 3, 224, 224)
        assert torch.allclose(ours(y), theirs(v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(y)), atol=1e-5)


def test_unknown_names_get_the_same_error_for_plain_and_family_architectures():
    for name in ("resnet20", "torchvision:resnet5000"):
        with pytest.raises(UserError, match=f"^b.yaml: model.arch: unknown architecture '{name}'; known: "):
            ARCHITECTURES.get(name, source="b.yaml", field="model.arch")
    with pytest.raises(UserError, match="known: torchvision:resnet50,"):  # closest first
        ARCHITECTURES.get("torchvision:resnet5000")


# ---------------------------------------------------------------- timm

def test_timm_missing_is_one_clear_error(monkeypatch):
    from shiftbench.core.registry import Registry

    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    fresh = {k: v for k, v in ARCHITECTURES._made.items() if not k.startswith("timm:")}
    monkeypatch.setattr(ARCHITECTURES, "_made", fresh)
    with pytest.raises(UserError, match=r"model.arch: timm is not installed; install the extra: pip install 'shiftbench\[timm\]'"):
        Registry.get(ARCHITECTURES, "timm:resnet18", field="model.arch")


def test_timm_model_gets_its_pretrained_cfg_head_and_preprocessing():
    timm = pytest.importorskip("timm", reason="timm (the [timm] extra) is not installed")
    model = build_model("timm:test_resnet", 4, 3)
    net = timm.create_model("test_resnet", pretrained=False, num_classes=4)
    cfg = net.pretrained_cfg
    assert model.head_name == cfg["classifier"]
    p = model.preprocessing
    assert p.input_size == cfg["input_size"][-1] and p.mean == list(cfg["mean"]) and p.std == list(cfg["std"])
    assert p.resize == int(cfg["input_size"][-1] / cfg["crop_pct"])
    with pytest.raises(UserError, match="unknown architecture 'timm:test_resnetx'"):
        ARCHITECTURES.get("timm:test_resnetx")


# ---------------------------------------------------------------- a user's own network

USER_MODULE = """\
from torch import nn

def build(width: int = 4):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.BatchNorm2d(width), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 3))
"""


def test_import_architecture_builds_a_users_network_validates_its_params_and_hashes_its_file(tmp_path, monkeypatch):
    pkg = tmp_path / "mynets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cnn.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_classifier({"arch": "import:mynets.cnn:build", "width": 6, "mean": 0.5, "std": 0.25}, 3, 3)
    assert model.head_name == "7"  # the last nn.Linear
    assert model.net[0].out_channels == 6 and model.preprocessing.mean == [0.5] and model.preprocessing.std == [0.25]
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), model.net((x - 0.5) / 0.25))
    with pytest.raises(UserError, match="unknown parameter 'depth' for architecture 'import:mynets.cnn:build'"):
        check_arch_params("import:mynets.cnn:build", {"depth": 3})
    with pytest.raises(UserError, match="cannot import module 'nonexistent'"):
        ARCHITECTURES.get("import:nonexistent.mod:build")
    builder = ARCHITECTURES.get("import:mynets.cnn:build")
    before = code_hash([builder])
    (pkg / "cnn.py").write_text(USER_MODULE.replace("nn.ReLU(), nn.Linear(8, 3)", "nn.Tanh(), nn.Linear(8, 3)"))
    assert code_hash([builder]) != before  # the user's file is part of the model's code identity


def test_head_and_preprocessing_fields_override_the_architectures_own():
    model = build_classifier({"arch": "cifar_resnet", "depth": 20, "head": "layer3", "mean": [0.5, 0.5, 0.5],
                              "input_size": 24, "resize": 28}, 10, 3)
    assert model.head_name == "layer3" and model.preprocessing.mean == [0.5] * 3
    assert model.preprocessing.std == [0.229, 0.224, 0.225]  # the architecture's own where not overridden
    with pytest.raises(UserError, match="model.head"):
        build_classifier({"arch": "cifar_resnet", "head": "nope"}, 10, 3)
