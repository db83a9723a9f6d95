"""CLIP benchmarks: clip-imagenet and clip-cifar10 validate; methods a model cannot serve are refused with the reason
at validation; a random tiny open_clip model through `shiftbench run` ranks zero_shot, tpt and tda on the board."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO, records_of, run_cli
from tiny_clip import direct_zero_shot_logits, tiny_clip_manifest

from torchvision.transforms.v2 import functional as TF

from shiftbench.core.errors import UserError
from shiftbench.leaderboard import load_boards
from shiftbench.models.traits import model_traits
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import cells_of
from shiftbench.run.submission import check_submission
from shiftbench.run.workspace import Workspace

TINY = """\
name: clip-tiny
description: A random tiny open_clip model on the digits, for tests.
dataset: digits
batch_size: 16
n_per_scenario: 40
model: {weights: tiny-clip, class_names: [zero, one, two, three, four, five, six, seven, eight, nine]}
scenarios:
  - {name: clean, family: clean}
  - {name: noise-s5, family: covariate, shifts: [{shift: gaussian_noise, severity: 5}]}
  - {name: grid-realistic-d1, family: translation, n_per_scenario: 8,
     shifts: [{shift: translate_grid, mode: realistic, distance: 1}]}
  - {name: grid-cyclic-d1, family: translation, n_per_scenario: 8, shifts: [{shift: translate_grid, mode: cyclic, distance: 1}]}
"""
TRANSLATION = ("grid-realistic-d1", "grid-cyclic-d1")
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.mark.parametrize("name", ["clip-imagenet", "clip-cifar10"])
def test_the_clip_benchmarks_and_their_submissions_validate(name):
    bench = load_benchmark(name)
    assert bench.model["arch"] == "open_clip:ViT-B-32" and bench.model["pretrained"] == "openai"
    assert bench.model["quick_gelu"] is True and bench.model["interpolation"] == "bicubic"
    assert bench.model["class_names"] == bench.dataset
    for method in ("zero_shot", "tpt", "tda", "crop_select"):
        checked = check_submission(REPO / "leaderboard" / "submissions" / name / f"{method}.yaml")
        assert checked.unsupported == {}
    # the translation scenarios play the windowed copy of the same files (kept, or dropped for want of the data)
    variant = {"clip-imagenet": "imagenet-val-256", "clip-cifar10": "cifar10-window28"}[name]
    translation = [s.name for s in bench.scenarios if s.dataset == variant and s.family == "translation"]
    translation += [s for s, missing in bench.missing_data().items() if variant in missing]
    assert any("realistic-grid-d1" in s for s in translation) and any("cyclic" in s for s in translation)


def test_the_dinov2_benchmark_probes_the_backbone_manifest_and_keeps_clip_imagenets_translation_scenarios():
    bench, clip = load_benchmark("dinov2-imagenet"), load_benchmark("clip-imagenet")
    assert bench.model == {"arch": "timm:vit_small_patch14_dinov2.lvd142m", "backbone": "dinov2-vits14"}
    assert bench.training["name"] == "linear_probe"
    assert {s.name for s in bench.scenarios} | set(bench.missing_data()) == \
        {s.name for s in clip.scenarios if s.family != "covariate"} | set(clip.missing_data())
    for method in ("source", "crop_select"):
        checked = check_submission(REPO / "leaderboard" / "submissions" / "dinov2-imagenet" / f"{method}.yaml")
        assert checked.unsupported == {}


def test_traits_are_read_from_the_architecture_without_building_weights():
    assert model_traits({"arch": "open_clip:ViT-B-32"}, 1000) == {"clip"}  # LayerNorm only
    assert model_traits({"arch": "open_clip:RN50"}, 10) == {"clip", "batchnorm"}  # CLIP's ResNet has BatchNorm
    assert model_traits({"arch": "small_cnn", "width": 4}, 10) == {"batchnorm"}


def write_submission(proj, method, benchmark, params="{}"):
    path = proj / "leaderboard" / "submissions" / f"{method}-{benchmark}.yaml"
    path.write_text(f"name: {method}\nmethod: {method}\nparams: {params}\nbenchmark: {benchmark}\nseeds: [0]\n")
    return path


def test_validate_refuses_a_method_the_benchmarks_model_cannot_serve_with_the_reason(proj, tmp_path, capsys):
    tiny_clip_manifest(proj, tmp_path / "tiny.pt")
    (proj / "benchmarks" / "clip-tiny.yaml").write_text(TINY)
    bn = write_submission(proj, "bn_adapt", "clip-tiny")
    code, out, err = run_cli(capsys, "validate", str(bn))
    assert code == 2 and "has no BatchNorm layer" in err and len(err.strip().splitlines()) == 1
    wrapped = write_submission(proj, "online_em", "clip-tiny", "{base: bn_adapt}")  # a composite: its base counts
    code, out, err = run_cli(capsys, "validate", str(wrapped))
    assert code == 2 and "has no BatchNorm layer" in err
    tpt_on_cnn = write_submission(proj, "tpt", "tiny")
    code, out, err = run_cli(capsys, "validate", str(tpt_on_cnn))
    assert code == 2 and "is not a CLIP zero-shot model" in err
    tent = write_submission(proj, "tent", "clip-tiny")  # LayerNorm affine parameters: runs
    code, out, err = run_cli(capsys, "validate", str(tent))
    assert code == 0, err


def test_a_tiny_clip_benchmark_runs_end_to_end_and_ranks_zero_shot_tpt_tda_and_crop_selection(proj, tmp_path, capsys):
    clip = tiny_clip_manifest(proj, tmp_path / "tiny.pt")
    assert run_cli(capsys, "data", "fetch", "tiny-clip", "--quiet")[0] == 0
    (proj / "benchmarks" / "clip-tiny.yaml").write_text(TINY)
    for method, params in (("zero_shot", "{}"), ("tpt", "{n_views: 8}"), ("tda", "{}"), ("crop_select", "{margin: 1}")):
        write_submission(proj, method, "clip-tiny", params)
    (proj / "leaderboard" / "submissions" / "crop_select_circular.yaml").write_text(
        "name: crop_select_circular\nmethod: crop_select\nparams: {mode: circular}\nbenchmark: clip-tiny\nseeds: [0]\n")
    code, out, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 0, err
    records = {}
    for path in (proj / "leaderboard" / "results" / "clip-tiny").glob("*.json"):
        for rec in json.loads(path.read_text())["records"]:
            mode = (rec["cell"]["params"] or {}).get("mode")
            records[rec["cell"]["method"] + ("_circular" if mode == "circular" else ""), rec["cell"]["scenario"]] = rec
    entries = ("zero_shot", "tpt", "tda", "crop_select", "crop_select_circular")
    assert set(records) == {(m, s) for m in entries for s in ("clean", "noise-s5") + TRANSLATION}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    # zero_shot's clean accuracy is the published recipe's on the played images (the model sees the 28 px window,
    # resized to 24 bicubic), computed here with open_clip's own classifier builder
    ws = Workspace(torch.device("cpu"), progress=False)
    cell = next(c for c in cells_of(check_submission(proj / "leaderboard" / "submissions" / "zero_shot-clip-tiny.yaml"))
                if c.scenario == "clean")
    played = ws.stream(cell)[0].model_view()
    x = TF.resize(played.images.float() / 255, 24, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    expected = direct_zero_shot_logits(clip, x.clamp(0, 1), DIGITS, ["a photo of a {}.", "a {}"])
    accuracy = (expected.argmax(1) == played.labels).double().mean().item()
    assert records["zero_shot", "clean"]["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert records["zero_shot", "clean"]["metrics"]["n"] == 40
    # the covariate board ranks the three entries by error; the summary shows their clean accuracy
    summary, boards = load_boards(proj / "leaderboard" / "results")
    board = next(b for b in boards if b.benchmark == "clip-tiny" and b.family == "covariate")
    table = next(t for t in board.tables if t.slug == "severity-5")
    error = {m: records[m, "noise-s5"]["metrics"]["error"] for m in entries}
    rows = {r.label: r for r in table.entries}
    assert set(rows) == set(error) and all(rows[m].mean.mean == pytest.approx(error[m]) for m in error)
    for a in error:  # ranked by error, equal errors sharing a place
        for b in error:
            assert (rows[a].place.rank < rows[b].place.rank) == (error[a] < error[b] - 1e-12)
    clean = dict(zip(summary.entry, summary.clean))
    assert clean == pytest.approx({m: records[m, "clean"]["metrics"]["accuracy"] for m in entries})
    # the translation board: consistency, accuracy and fooling rate per scenario, for every entry, as recorded
    board = next(b for b in boards if b.benchmark == "clip-tiny" and b.family == "translation")
    assert {t.metric for t in board.tables} == {"consistency", "accuracy", "fooling_rate"}
    for t in board.tables:
        rows = {r.label: r for r in t.entries}
        assert set(rows) == set(entries) and [c.key for c in t.columns] == list(TRANSLATION)
        for m in entries:
            for s in TRANSLATION:
                assert rows[m].cells[s].mean == pytest.approx(records[m, s]["metrics"][t.metric])
    for m in entries:  # on a 1-pixel grid all views agree exactly when no neighbour fools the centre
        for s in TRANSLATION:
            got = records[m, s]["metrics"]
            assert got["consistency"] == pytest.approx(1 - got["fooling_rate"], abs=1e-12)
    metrics = {m: records[m, "grid-cyclic-d1"]["metrics"] for m in entries}
    assert all(metrics[m]["n"] == 8 * 9 for m in entries)
    # the law: circular crop selection is exactly invariant to integer cyclic shifts, so at least as consistent
    # as the source; the source itself is not invariant (the test has teeth)
    assert metrics["crop_select_circular"]["pairwise_consistency"] == 1 and metrics["crop_select_circular"]["fooling_rate"] == 0
    assert metrics["zero_shot"]["pairwise_consistency"] < 1 and metrics["zero_shot"]["fooling_rate"] > 0


def test_evaluate_refuses_a_batchnorm_method_on_a_clip_model_before_any_work(proj, tmp_path):
    import shiftbench

    tiny_clip_manifest(proj, tmp_path / "tiny.pt")
    (proj / "benchmarks" / "clip-tiny.yaml").write_text(TINY)
    with pytest.raises(UserError, match="'bn_adapt' cannot run on this model: .* has no BatchNorm layer"):
        shiftbench.evaluate(methods=["zero_shot", "bn_adapt"], benchmark="clip-tiny")


@pytest.mark.parametrize("name", ["clip-imagenet", "clip-cifar10", "dinov2-imagenet"])
def test_the_translation_scenarios_of_the_clip_benchmarks_run_on_tiny_copies_of_their_data(name, proj, tmp_path, capsys):
    """The benchmark files as shipped (subsets shrunk, the covariate scenarios skipped), on a few images written in
    the datasets' own layouts and a random tiny CLIP (or a tiny timm ViT probed, for DINOv2's): every translation
    scenario plays the windowed copy."""
    from test_linear_probe import tiny_vit_manifest
    from test_translation_data_variants import write_photos
    from tiny_formats import write_cifar10

    data = tmp_path / "data"
    if name.endswith("imagenet"):
        write_photos(data / "imagenet-val", [(300, 261), (257, 340), (500, 375)])
        names, variant, room_less = "[tench, goldfish]", "imagenet-val-256", "translate-realistic-pair-m16"
    else:
        write_cifar10(data / "cifar10" / "cifar-10-batches-py", n_test=8)
        names, variant, room_less = "cifar10", "cifar10-window28", "translate-realistic-pair-m2"
    for file in {name, "clip-imagenet"}:
        text = (REPO / "benchmarks" / f"{file}.yaml").read_text()
        for n in ("5000", "2000", "1000"):
            text = text.replace(f"n_per_scenario: {n}", "n_per_scenario: 4")
        (proj / "benchmarks" / f"{file}.yaml").write_text(text)
    if name.startswith("dinov2"):
        tiny_vit_manifest(proj, tmp_path / "vit.bin")
        model, source, fetch = "{arch: 'timm:test_vit.r160_in1k', backbone: tiny-vit}", "source", "tiny-vit"
    else:
        tiny_clip_manifest(proj, tmp_path / "tiny.pt")
        model, source, fetch = f"{{weights: tiny-clip, class_names: {names}}}", "zero_shot", "tiny-clip"
    (proj / "benchmarks" / "tiny-run.yaml").write_text(
        f"extends: {name}\nname: tiny-run\nbatch_size: 16\nmodel: {model}\n"
        "skip_scenarios: ['generated-*', 'cifar10c-*']\n")
    assert run_cli(capsys, "data", "fetch", fetch, "--quiet")[0] == 0
    for method, params in ((source, "{}"), ("crop_select", "{margin: 8}")):
        write_submission(proj, method, "tiny-run", params)
    code, out, err = run_cli(capsys, "run", "--quiet", "--executor", "inline", "--store", str(tmp_path / "store"))
    assert code == 0, err
    records = records_of(proj / "leaderboard" / "results" / "tiny-run")
    bench = load_benchmark(proj / "benchmarks" / "tiny-run.yaml")
    translation = [s.name for s in bench.scenarios if s.family == "translation"]
    assert len(translation) >= 3 and all(bench.scenario(s).dataset == variant for s in translation)
    assert set(records) == {(m, s) for m in (source, "crop_select") for s in ["clean"] + translation}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("error") for r in records.values()]
    for s in translation:
        views = 9 if "grid" in s else 2
        assert records[source, s]["metrics"]["n"] == (bench.scenario(s).n_per_scenario or 8) * views
        assert ("fooling_rate" in records[source, s]["metrics"]) == ("grid" in s)
    # where the views leave no room around the window, crop selection is the source model
    assert records["crop_select", room_less]["metrics"] == records[source, room_less]["metrics"]
