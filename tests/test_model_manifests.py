"""Model manifests: fetched and verified like data, loaded without training, their fields in every cell's key;
and every bad model input is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml
from conftest import REPO, submission

from shiftbench.cli.main import main
from shiftbench.core.errors import UserError
from shiftbench.core.hashing import file_sha256
from shiftbench.data import load_dataset
from shiftbench.models import ARCHITECTURES, get_source_model
from shiftbench.models.manifest import load_model_manifest
from shiftbench.models.recipes import RECIPES
from shiftbench.models.train import build_classifier
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import cells_of
from shiftbench.run.submission import check_submission

CPU = torch.device("cpu")


def model_manifest(name: str, file: str, url: str | None = None, hash_line: str = "", preprocessing: str | None = None,
                   arch: str = "small_cnn", params: str = "{width: 4}") -> str:
    prep = preprocessing if preprocessing is not None else "  preprocessing: {mean: [0.5], std: [0.5], input_size: 28}\n"
    return (f"name: {name}\nkind: model\nlicense: MIT\nfiles:\n  - path: {file}\n"
            + (f"    url: {url}\n" if url else "") + (f"    {hash_line}\n" if hash_line else "")
            + f"model:\n  arch: {arch}\n  params: {params}\n  num_classes: 10\n{prep}"
            + "  published: {accuracy: 0.5, split: digits test}\n")



def saved_small_cnn(path, seed=0):
    torch.manual_seed(seed)
    net = build_classifier({"arch": "small_cnn", "width": 4}, 10, 3).net
    torch.save({"state_dict": net.state_dict(), "epoch": 7}, path)
    return net


def test_weights_are_fetched_by_the_data_code_verified_and_loaded_without_training(proj, tmp_path, monkeypatch, capsys):
    net = saved_small_cnn(tmp_path / "published.pt")
    sha = file_sha256(tmp_path / "published.pt")
    (proj / "data_manifests" / "tiny-net.yaml").write_text(
        model_manifest("tiny-net", "tiny-net-1234abcd.pt", (tmp_path / "published.pt").as_uri(), f"sha256: '{sha}'"))
    assert main(["data", "fetch", "tiny-net", "--quiet"]) == 0
    assert (tmp_path / "data" / "tiny-net" / "tiny-net-1234abcd.pt").is_file()

    RECIPES.get("erm")  # built-ins registered before the stand-in replaces one
    monkeypatch.setitem(RECIPES._entries, "erm", lambda *a, **k: pytest.fail("weights were given: nothing trains"))
    d = load_dataset("digits")
    spec = load_benchmark_model(proj, {"weights": "tiny-net"})
    assert spec == {"weights": "tiny-net", "arch": "small_cnn", "width": 4, "mean": [0.5], "std": [0.5], "input_size": 28}
    loaded = get_source_model(d.source_train, d.source_val, spec, {"name": "erm"}, 0, CPU, False)
    x = torch.rand(5, 3, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), net.eval()((x - 0.5) / 0.5))
    assert loaded.sha256 == sha
    prov = loaded.provenance()
    assert prov["weights"] == "tiny-net" and prov["trained_by"] == "published" and prov["preprocessing"]["mean"] == [0.5]
    assert prov["published"]["accuracy"] == 0.5


def load_benchmark_model(proj, model: dict) -> dict:
    text = f"name: m\ndataset: digits\nmodel: {yaml.safe_dump(model, default_flow_style=True).strip()}\n" \
           "scenarios:\n  - {name: clean, family: clean}\n"
    (proj / "benchmarks" / "m.yaml").write_text(text)
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    return load_benchmark("m").model


def test_a_manifests_preprocessing_is_part_of_every_cell_key(proj, tmp_path):
    saved_small_cnn(tmp_path / "w.pt")
    path = proj / "data_manifests" / "tiny-net.yaml"
    path.write_text(model_manifest("tiny-net", "w.pt"))
    (proj / "benchmarks" / "m.yaml").write_text("name: m\ndataset: digits\nmodel: {weights: tiny-net}\n"
                                                "scenarios:\n  - {name: clean, family: clean}\n")
    (proj / "leaderboard" / "submissions" / "s.yaml").write_text(submission("S", "source", benchmark="m"))
    first = cells_of(check_submission(proj / "leaderboard" / "submissions" / "s.yaml"))[0]
    path.write_text(model_manifest("tiny-net", "w.pt").replace("std: [0.5]", "std: [0.25]"))
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    second = cells_of(check_submission(proj / "leaderboard" / "submissions" / "s.yaml"))[0]
    assert first.model["std"] == [0.5] and second.model["std"] == [0.25] and first.key != second.key


def test_a_hash_prefix_is_checked_and_reported_as_weaker(proj, tmp_path, capsys):
    saved_small_cnn(tmp_path / "w.pt")
    sha = file_sha256(tmp_path / "w.pt")
    path = proj / "data_manifests" / "tiny-net.yaml"
    path.write_text(model_manifest("tiny-net", "w.pt", (tmp_path / "w.pt").as_uri(), f"sha256_prefix: '{sha[:8]}'"))
    assert main(["data", "fetch", "tiny-net", "--quiet"]) == 0
    assert "only a 8-digit prefix is published: a weaker check" in capsys.readouterr().out
    (tmp_path / "data" / "tiny-net" / "w.pt").unlink()
    wrong = "0" * 8 if not sha.startswith("0" * 8) else "1" * 8
    path.write_text(model_manifest("tiny-net", "w.pt", (tmp_path / "w.pt").as_uri(), f"sha256_prefix: '{wrong}'"))
    assert main(["data", "fetch", "tiny-net", "--quiet"]) == 2
    assert f"manifest says it starts with {wrong}" in capsys.readouterr().err
    assert not (tmp_path / "data" / "tiny-net" / "w.pt").exists()


def test_shipped_model_manifests_agree_with_their_published_sources():
    """Depth, file name and hash of each akamaster manifest; torchvision's own metadata for ResNet-50."""
    from torchvision.models import ResNet50_Weights

    for depth, err in ((20, 8.27), (32, 7.37), (44, 6.90), (56, 6.61), (110, 6.32)):
        manifest, card = load_model_manifest(f"cifar10-resnet{depth}")
        entry = manifest.files[0]
        assert card.arch == "cifar_resnet" and card.params == {"depth": depth}
        assert entry.url.endswith(f"/pretrained_models/{entry.path}") and entry.path.startswith(f"resnet{depth}-")
        assert (entry.sha256 or entry.sha256_prefix).startswith(entry.path.split("-")[1][:8])
        assert abs(card.published.accuracy - (1 - err / 100)) < 1e-9
        assert card.preprocessing.mean == [0.485, 0.456, 0.406] and card.preprocessing.input_size == 32
    for version, weights in (("v1", ResNet50_Weights.IMAGENET1K_V1), ("v2", ResNet50_Weights.IMAGENET1K_V2)):
        manifest, card = load_model_manifest(f"torchvision-resnet50-{version}")
        t = weights.transforms()
        assert manifest.files[0].url == weights.url and weights.url.split("-")[-1].startswith(manifest.files[0].sha256_prefix)
        assert card.preprocessing.resize == t.resize_size[0] and card.preprocessing.input_size == t.crop_size[0]
        assert card.preprocessing.mean == list(t.mean) and card.preprocessing.std == list(t.std)
        assert abs(card.published.accuracy * 100 - weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]) < 1e-9


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing written

BENCH = """\
name: m
dataset: digits
batch_size: 64
model: {model}
scenarios:
  - {{name: clean, family: clean}}
"""


@pytest.fixture
def bad_project(proj, tmp_path):
    torch.manual_seed(0)
    net = build_classifier({"arch": "cifar_resnet", "depth": 20}, 10, 3).net
    torch.save({"state_dict": net.state_dict()}, proj / "r20.th")
    whole = (proj / "r20.th").read_bytes()
    (proj / "truncated.th").write_bytes(whole[: len(whole) // 3])
    import pickle

    (proj / "code.th").write_bytes(pickle.dumps({"state_dict": sys.modules["os"].getcwd}, protocol=2))
    (proj / "leaderboard" / "submissions" / "s.yaml").write_text(submission("S", "source", benchmark="m"))
    return proj


def run_bad(proj, capsys, model: str, expected: str, monkeypatch=None):
    (proj / "benchmarks" / "m.yaml").write_text(BENCH.format(model=model))
    from shiftbench.run import benchmark

    benchmark._cache.clear()
    code = main(["run", "--benchmark", "m", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert expected in err, err
    assert not (proj / "leaderboard" / "results").exists() or not any((proj / "leaderboard" / "results").rglob("*.json"))
    return err


@pytest.mark.parametrize("model, expected", [
    ("{arch: cifar_resnet, depth: 32, checkpoint: r20.th}", "model.checkpoint: cannot load"),
    ("{arch: cifar_resnet, depth: 20, checkpoint: truncated.th}", "truncated.th is not a readable torch checkpoint"),
    ("{arch: cifar_resnet, depth: 20, checkpoint: code.th}", "code.th is not a plain weights file: loading it would import and run posix.getcwd"),
    ("{arch: resnet20, checkpoint: r20.th}", "benchmarks/m.yaml: model.arch: unknown architecture 'resnet20'"),
    ("{arch: 'torchvision:resnet5000'}", "model.arch: unknown architecture 'torchvision:resnet5000'; known: torchvision:resnet50"),
    ("{arch: cifar_resnet, depth: 20, mean: [0.5, x]}", "benchmarks/m.yaml: model.mean.1: Input should be a valid number"),
    ("{weights: nope}", "benchmarks/m.yaml: model.weights: no data manifest 'nope'"),
])
def test_bad_model_input_is_one_line_and_writes_nothing(bad_project, capsys, model, expected):
    run_bad(bad_project, capsys, model, expected)


def test_wrong_sha256_and_missing_preprocessing_name_the_manifest(bad_project, tmp_path, capsys):
    (bad_project / "data_manifests" / "r20.yaml").write_text(model_manifest(
        "r20", "r20.th", hash_line=f"sha256: '{'0' * 64}'", arch="cifar_resnet", params="{depth: 20}"))
    (tmp_path / "data" / "r20").mkdir(parents=True)
    (tmp_path / "data" / "r20" / "r20.th").write_bytes((bad_project / "r20.th").read_bytes())
    run_bad(bad_project, capsys, "{weights: r20}", "data_manifests/r20.yaml: files.sha256: ")
    (bad_project / "data_manifests" / "r20.yaml").write_text(model_manifest(
        "r20", "r20.th", arch="cifar_resnet", params="{depth: 20}", preprocessing=""))
    run_bad(bad_project, capsys, "{weights: r20}", "data_manifests/r20.yaml: model.preprocessing: Field required")


def test_timm_missing_is_one_line_exit_2(bad_project, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)
    monkeypatch.setattr(ARCHITECTURES, "_made", {k: v for k, v in ARCHITECTURES._made.items() if not k.startswith("timm:")})
    run_bad(bad_project, capsys, "{arch: 'timm:resnet18'}",
            "model.arch: timm is not installed; install the extra: pip install 'shiftbench[timm]'")


def test_weights_and_checkpoint_together_or_a_conflicting_arch_are_refused(proj, tmp_path):
    saved_small_cnn(tmp_path / "w.pt")
    (proj / "data_manifests" / "tiny-net.yaml").write_text(model_manifest("tiny-net", "w.pt"))
    with pytest.raises(UserError, match="model.checkpoint: give weights .* or checkpoint .*, not both"):
        load_benchmark_model(proj, {"weights": "tiny-net", "checkpoint": "w.pt"})
    with pytest.raises(UserError, match="model.arch: 'cifar_resnet' but the weights 'tiny-net' are for 'small_cnn'"):
        load_benchmark_model(proj, {"weights": "tiny-net", "arch": "cifar_resnet"})
    with pytest.raises(UserError, match="model.width: 8 but the weights 'tiny-net' have width = 4"):
        load_benchmark_model(proj, {"weights": "tiny-net", "width": 8})
    with pytest.raises(UserError, match="dataset: 'tiny-net' is a model manifest, not a dataset"):
        (proj / "benchmarks" / "m.yaml").write_text("name: m\ndataset: tiny-net\nscenarios: [{name: c, family: clean}]\n")
        load_benchmark("m")
    assert REPO.is_dir()
