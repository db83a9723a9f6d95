"""open_clip:MODEL sources: weights by model manifest (sha256 checked), the tag's preprocessing inside the model,
and a zero-shot head equal to the published recipe (open_clip's build_zero_shot_classifier), cached by content."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from tiny_clip import OPENAI_MEAN, OPENAI_STD, TINY_CONFIG, direct_zero_shot_logits, open_clip, tiny_clip, \
    tiny_clip_manifest

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.data import load_dataset
from shiftbench.data.manifest import load_manifest
from shiftbench.models import get_source_model
from shiftbench.models import zero_shot
from shiftbench.models.architectures.open_clip_models import tag_preprocessing
from shiftbench.models.train import build_classifier

CPU = torch.device("cpu")


def fetched(proj, tmp_path, **kw):
    clip = tiny_clip_manifest(proj, tmp_path / "tiny.pt", **kw)
    assert main(["data", "fetch", kw.get("name", "tiny-clip"), "--quiet"]) == 0
    return clip


def test_a_manifests_clip_weights_load_verified_and_score_as_the_published_zero_shot_recipe(proj, tmp_path):
    clip = fetched(proj, tmp_path)
    d = load_dataset("digits")
    source = get_source_model(d.source_train, d.source_val, {"weights": "tiny-clip"}, {"name": "erm"}, 0, CPU, False)
    x = torch.rand(6, 3, 24, 24)  # already at the input size: only mean and std apply
    with torch.no_grad():
        ours = source.model(x)
    expected = direct_zero_shot_logits(clip, x, d.test.classes, ["a photo of a {}.", "a {}"])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    prov = source.provenance()
    assert prov["arch"] == "open_clip:tiny" and prov["arch_params"]["pretrained"] == "random"
    assert prov["weights"] == "tiny-clip" and prov["preprocessing"]["interpolation"] == "bicubic"


def test_a_cells_copy_of_a_clip_model_shares_only_the_tokenizer(proj, tmp_path):
    import copy

    fetched(proj, tmp_path)
    d = load_dataset("digits")
    model = get_source_model(d.source_train, d.source_val, {"weights": "tiny-clip"}, {"name": "erm"}, 0, CPU,
                             False).model
    clone = copy.deepcopy(model)
    net, twin = (m.get_submodule(n) for m, n in ((model, "net"), (clone, "net")))
    assert twin.tokenizer is net.tokenizer and twin.clip is not net.clip and twin.head is not net.head
    x = torch.rand(4, 3, 24, 24)
    with torch.no_grad():
        before = model(x)
        torch.testing.assert_close(clone(x), before, rtol=0, atol=0)
        for p in clone.parameters():  # adapting the copy leaves the source model as it was
            p.add_(1)
        for b in clone.buffers():
            b.add_(1)
        assert torch.equal(model(x), before)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(model.parameters(), clone.parameters()))


def test_a_changed_weights_file_is_refused_before_loading(proj, tmp_path):
    fetched(proj, tmp_path)
    path = tmp_path / "data" / "tiny-clip" / "tiny-clip.pt"
    torch.save(tiny_clip(seed=1).state_dict(), path)
    d = load_dataset("digits")
    with pytest.raises(UserError, match="sha256"):
        get_source_model(d.source_train, d.source_val, {"weights": "tiny-clip"}, {"name": "erm"}, 0, CPU, False)


def test_images_larger_than_the_input_are_resized_as_the_tags_transform_does(proj, tmp_path):
    from torchvision.transforms.v2 import functional as TF

    clip = fetched(proj, tmp_path)
    d = load_dataset("digits")
    source = get_source_model(d.source_train, d.source_val, {"weights": "tiny-clip"}, {"name": "erm"}, 0, CPU, False)
    x = torch.rand(3, 3, 32, 40)
    resized = TF.center_crop(TF.resize(x, 24, interpolation=TF.InterpolationMode.BICUBIC, antialias=True), 24)
    with torch.no_grad():
        ours = source.model(x)
    expected = direct_zero_shot_logits(clip, resized.clamp(0, 1), d.test.classes, ["a photo of a {}.", "a {}"])
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_the_preprocessing_is_the_pretrained_tags():
    openai = tag_preprocessing(open_clip, "ViT-B-32", "openai", 224)
    assert (openai.input_size, openai.resize, openai.interpolation) == (224, 224, "bicubic")
    assert openai.mean == list(OPENAI_MEAN) and openai.std == list(OPENAI_STD)
    # a tag trained with other statistics gets them (open_clip's pretrained table)
    tag = open_clip.get_pretrained_cfg("ViT-B-16-SigLIP", "webli")
    if tag.get("resize_mode", "shortest") == "shortest":
        other = tag_preprocessing(open_clip, "ViT-B-16-SigLIP", "webli", 224)
        assert other.mean == list(tag["mean"]) != list(OPENAI_MEAN)
    else:
        with pytest.raises(UserError, match="resizes by"):
            tag_preprocessing(open_clip, "ViT-B-16-SigLIP", "webli", 224)


def test_openais_torchscript_release_format_loads_too(proj, tmp_path):
    clip = tiny_clip()
    scripted = torch.jit.script(clip)
    scripted.save(str(tmp_path / "scripted.pt"))
    spec = {"arch": "open_clip:tiny", "config": TINY_CONFIG, "templates": ["a photo of a {}."],
            "checkpoint": str(tmp_path / "scripted.pt")}
    d = load_dataset("digits")
    source = get_source_model(d.source_train, d.source_val, spec, {"name": "erm"}, 0, CPU, False)
    x = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(source.model(x), direct_zero_shot_logits(clip, x, d.test.classes, ["a photo of a {}."]))


def test_the_head_is_cached_by_weights_class_names_and_templates(monkeypatch):
    net = build_classifier({"arch": "open_clip:tiny", "config": TINY_CONFIG, "templates": "cifar",
                            "class_names": ["cat", "dog"]}, 2, 3).net
    net.clip.load_state_dict(tiny_clip().state_dict())
    net.weights_loaded("a" * 64)
    first = net.head.weight.clone()
    monkeypatch.setattr(zero_shot, "class_vectors", lambda *a: pytest.fail("the cached head was not used"))
    net.head.weight.zero_()
    net.weights_loaded("a" * 64)
    torch.testing.assert_close(net.head.weight, first)
    for changed in ({"model_sha256": "b" * 64}, {"class_names": ["dog", "cat"]}, {"templates": ["a {}"]}):
        args = {"model_sha256": "a" * 64, "class_names": ["cat", "dog"], "templates": list(zero_shot.CIFAR_TEMPLATES),
                **changed}
        assert zero_shot.head_key(**args) != zero_shot.head_key("a" * 64, ["cat", "dog"], zero_shot.CIFAR_TEMPLATES)


def test_head_rows_are_unit_class_vectors_times_the_logit_scale():
    net = build_classifier({"arch": "open_clip:tiny", "config": TINY_CONFIG, "templates": ["{}", "a {}"],
                            "class_names": ["cat", "dog", "car"]}, 3, 3).net
    net.weights_loaded("c" * 64)
    scale = net.clip.logit_scale.exp().item()
    torch.testing.assert_close(net.head.weight.norm(dim=1), torch.full((3,), scale))
    # mean of the normalised prompt features, renormalised (not the mean of raw features)
    with torch.no_grad():
        raw = net.encode_text(["cat", "a cat"])
        expected = F.normalize(F.normalize(raw, dim=-1).mean(0), dim=0) * scale
    torch.testing.assert_close(net.head.weight[0], expected)


def test_class_names_in_the_data_manifests_are_readable_and_in_class_order():
    imagenet = load_manifest("imagenet-val").class_names
    assert len(imagenet) == 1000 and imagenet[0] == "tench" and imagenet[-1] == "toilet paper"
    # the fingerprint of the CLIP authors' list (sha1 of the names joined by newlines)
    assert hashlib.sha1("\n".join(imagenet).encode()).hexdigest() == "b0592a5053f02cd6eb425644c9d6d1732378131b"
    assert load_manifest("cifar10").class_names == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                                                    "horse", "ship", "truck"]
    assert zero_shot.class_names_of("cifar10", [str(k) for k in range(10)])[0] == "airplane"
    with pytest.raises(UserError, match="10 class names for a dataset of 1000"):
        zero_shot.class_names_of("cifar10", [str(k) for k in range(1000)])


def test_template_sets_and_bad_templates():
    assert len(zero_shot.templates_of("imagenet")) == 80 and zero_shot.templates_of("imagenet")[0] == "a bad photo of a {}."
    assert hashlib.sha1("\n".join(zero_shot.templates_of("imagenet")).encode()).hexdigest() == \
        "ac25554d7f839d70155b8ecf9ce5cbf18dd049a8"
    assert len(zero_shot.templates_of("imagenet_simple")) == 7 and len(zero_shot.templates_of("cifar")) == 18
    with pytest.raises(UserError, match="exactly one"):
        zero_shot.templates_of(["a photo"])
    with pytest.raises(UserError, match="unknown template set"):
        zero_shot.templates_of("imagenet80")


def test_a_benchmark_names_an_open_clip_model_and_its_fields_are_checked(proj, tmp_path):
    from shiftbench.run import benchmark

    fetched(proj, tmp_path)
    text = ("name: m\ndataset: digits\nmodel: {weights: tiny-clip, templates: 7}\n"
            "scenarios:\n  - {name: clean, family: clean}\n")
    (proj / "benchmarks" / "m.yaml").write_text(text)
    benchmark._cache.clear()
    with pytest.raises(UserError, match="templates"):
        benchmark.load_benchmark("m")
