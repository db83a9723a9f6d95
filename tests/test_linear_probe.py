"""linear_probe: a backbone file loaded with its head left out, every backbone weight frozen, the head the unique
optimum of L2-regularised multinomial logistic regression on the backbone's features (as scikit-learn finds it),
cached by the backbone's sha256."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from shiftbench.core.errors import UserError
from shiftbench.core.imageset import centre_crop
from shiftbench.data import load_dataset
from shiftbench.models import get_source_model
from shiftbench.models.architectures.small_cnn import SmallCNN
from shiftbench.models.recipes import linear_probe as probe
from shiftbench.models.spec import resolve

CPU = torch.device("cpu")
WD = 1e-2


def saved_backbone(path, seed=0) -> SmallCNN:
    torch.manual_seed(seed)
    net = SmallCNN(10, 3, 4).eval()
    torch.save(net.state_dict(), path)
    return net


def features(net: SmallCNN, data) -> np.ndarray:
    seen = []
    hook = net.head.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    with torch.no_grad():
        net(((centre_crop(data.images, data.window).float() / 255) - 0.5) / 0.5)
    hook.remove()
    return seen[0].flatten(1).double().numpy()


def test_the_head_is_the_logistic_regression_optimum_on_the_frozen_backbones_features(tmp_path):
    net = saved_backbone(tmp_path / "backbone.pt")
    d = load_dataset("digits")
    spec = {"arch": "small_cnn", "width": 4, "backbone": str(tmp_path / "backbone.pt")}
    source = get_source_model(d.source_train, d.source_val, spec, {"name": "linear_probe", "weight_decay": WD}, 0,
                              CPU, False)
    mine = source.model.net.state_dict()
    for k, v in net.state_dict().items():  # every backbone weight as in the file, the head refitted
        if not k.startswith("head."):
            assert torch.equal(mine[k], v), k
    assert not torch.equal(mine["head.weight"], net.state_dict()["head.weight"])
    x = features(net, d.source_train)
    ref = LogisticRegression(C=1 / (len(x) * WD), tol=1e-12, max_iter=100_000).fit(x, d.source_train.labels.numpy())
    torch.testing.assert_close(source.model.net.head.weight.double(), torch.from_numpy(ref.coef_), atol=2e-4, rtol=1e-3)
    val = features(net, d.source_val)
    with torch.no_grad():
        ours = source.model(centre_crop(d.source_val.images, d.source_val.window).float() / 255).softmax(1).double()
    torch.testing.assert_close(ours, torch.from_numpy(ref.predict_proba(val)), atol=1e-4, rtol=0)
    assert source.info["backbone_sha256"] and source.info["features"] == x.shape[1]


def test_the_probe_is_cached_by_the_backbones_sha256(tmp_path, monkeypatch):
    saved_backbone(tmp_path / "backbone.pt")
    d = load_dataset("digits")
    spec = {"arch": "small_cnn", "width": 4, "backbone": str(tmp_path / "backbone.pt")}
    recipe = {"name": "linear_probe", "weight_decay": WD}
    first = get_source_model(d.source_train, d.source_val, spec, recipe, 0, CPU, False)
    monkeypatch.setattr(probe, "fit_linear_head", lambda *a, **k: pytest.fail("the cached probe was not used"))
    again = get_source_model(d.source_train, d.source_val, spec, recipe, 0, CPU, False)
    assert again.key == first.key and again.sha256 == first.sha256
    saved_backbone(tmp_path / "backbone.pt", seed=1)  # another backbone in the same file: another model
    with pytest.raises(pytest.fail.Exception, match="cached probe"):
        get_source_model(d.source_train, d.source_val, spec, recipe, 0, CPU, False)


def test_a_backbone_is_not_given_with_weights():
    with pytest.raises(UserError, match="backbone"):
        resolve({"arch": "small_cnn", "backbone": "b.pt", "checkpoint": "c.pt"})


def tiny_vit_manifest(project, weights, name="tiny-vit"):
    """timm's 0.3 M-parameter test ViT with random weights, no head, saved at `weights` and described by a
    model manifest as data_manifests/dinov2-vits14.yaml describes DINOv2 (file:// URL, its sha256)."""
    import yaml

    from shiftbench.core.hashing import file_sha256

    timm = pytest.importorskip("timm", reason="timm (the [timm] extra) is not installed")
    torch.manual_seed(0)
    net = timm.create_model("test_vit.r160_in1k", pretrained=False, num_classes=0).eval()
    torch.save(net.state_dict(), weights)
    manifest = {"name": name, "kind": "model", "license": "Apache-2.0",
                "files": [{"path": "pytorch_model.bin", "url": weights.as_uri(), "sha256": file_sha256(weights)}],
                "model": {"arch": "timm:test_vit.r160_in1k",
                          "preprocessing": {"mean": [0.5] * 3, "std": [0.5] * 3, "input_size": 160, "resize": 168,
                                            "interpolation": "bicubic"}}}
    (project / "data_manifests" / f"{name}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return net


def test_a_timm_vit_backbone_from_a_model_manifest_is_verified_frozen_and_probed(proj, tmp_path):
    from shiftbench.cli.main import main
    from shiftbench.core.hashing import file_sha256

    net = tiny_vit_manifest(proj, tmp_path / "vit.bin")
    assert main(["data", "fetch", "tiny-vit", "--quiet"]) == 0
    fetched = tmp_path / "data" / "tiny-vit" / "pytorch_model.bin"
    d = load_dataset("digits")
    train, val = d.source_train.subset(torch.arange(200)), d.source_val.subset(torch.arange(50))  # a few seconds
    spec = resolve({"arch": "timm:test_vit.r160_in1k", "backbone": "tiny-vit"})
    source = get_source_model(train, val, spec, {"name": "linear_probe", "weight_decay": WD}, 0, CPU, False)
    mine = source.model.net.state_dict()
    assert {k for k in mine if not k.startswith("head.")} == set(net.state_dict())
    for k, v in net.state_dict().items():  # every backbone weight as in the verified file
        assert torch.equal(mine[k], v), k
    assert mine["head.weight"].shape == (10, 64) and mine["head.weight"].abs().sum() > 0
    assert source.info["backbone_sha256"] == file_sha256(fetched) and source.info["features"] == 64
    assert source.model.preprocessing.input_size == 160  # the tag's configuration, as the manifest says
    with fetched.open("ab") as f:  # a changed file is refused before anything is loaded or fitted
        f.write(b"\0")
    with pytest.raises(UserError, match="sha256 .* the manifest says .*nothing was loaded"):
        get_source_model(train, val, spec, {"name": "linear_probe", "weight_decay": WD / 2}, 0, CPU, False)


def test_the_dinov2_manifest_names_a_timm_tag_and_is_marked_unverified():
    from shiftbench.models.manifest import load_model_manifest

    manifest, card = load_model_manifest("dinov2-vits14")
    assert card.arch == "timm:vit_small_patch14_dinov2.lvd142m" and manifest.files[0].sha256 is None
    assert "Unverified" in manifest.description and manifest.files[0].url.startswith("https://huggingface.co/timm/")
    pytest.importorskip("timm", reason="timm (the [timm] extra) is not installed")
    spec = resolve({"arch": card.arch, "backbone": "dinov2-vits14"})
    from shiftbench.models.train import build_classifier

    model = build_classifier(spec, 10, 3, tuple("abcdefghij"))  # timm's cfg for the tag is the manifest's
    assert model.preprocessing.model_dump() == card.preprocessing.model_dump()
    assert isinstance(model.head, torch.nn.Linear) and model.head.in_features == 384
    hub = model.net.pretrained_cfg["hf_hub_id"]  # the file is the one timm itself would fetch for this tag
    assert manifest.files[0].url == f"https://huggingface.co/{hub}/resolve/main/pytorch_model.bin"
