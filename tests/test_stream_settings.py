"""The evaluation settings as scenario properties: each one's defining property on digits streams."""

from __future__ import annotations

import json
import math
from collections import Counter
from itertools import pairwise

import pytest
import torch
from conftest import make_project, submission

from shiftbench.core.errors import UserError
from shiftbench.evaluation import run_stream
from shiftbench.evaluation.online import online_error, window_errors
from shiftbench.evaluation.stream_layout import domains
from shiftbench.methods import Method
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import cells_of, scenario_cell
from shiftbench.run.runner import run_submissions
from shiftbench.run.store import Store
from shiftbench.run.submission import check_submission
from shiftbench.run.workspace import Workspace

SEQUENCE = "[[{shift: gaussian_noise, severity: 5}], [{shift: speckle_noise, severity: 5}], [{shift: shot_noise, severity: 5}]]"

SETTINGS = f"""\
name: settings
dataset: digits
batch_size: 64
model: {{arch: small_cnn, width: 8}}
training: {{name: erm, epochs: 3, lr: 0.05, batch_size: 64}}
scenarios:
  - {{name: noise-s5, family: covariate, shifts: [{{shift: gaussian_noise, severity: 5}}]}}
  - {{name: sequence, family: covariate, segments: {SEQUENCE}}}
  - name: gradual
    family: covariate
    segments: [[{{shift: gaussian_noise, severity: 5}}], [{{shift: speckle_noise, severity: 5}}]]
    stream: {{severities: [1, 2, 3, 4, 5, 4, 3, 2, 1]}}
  - {{name: mixed, family: covariate, segments: {SEQUENCE}, stream: {{mix: true, seed_name: sequence}}}}
  - name: correlated
    family: covariate
    segments: {SEQUENCE}
    stream: {{label_order: {{concentration: 0}}, seed_name: sequence}}
  - name: correlated-0.1
    family: covariate
    segments: {SEQUENCE}
    stream: {{label_order: {{concentration: 0.1}}, seed_name: sequence}}
  - name: mixed-correlated
    family: covariate
    segments: {SEQUENCE}
    stream: {{mix: true, label_order: {{concentration: 0}}, seed_name: sequence}}
  - {{name: long, family: covariate, segments: {SEQUENCE}, stream: {{cycles: 3, window: 100, seed_name: sequence}}}}
  - name: "noise-s5-b{{b}}"
    family: covariate
    matrix: {{b: [1, 4, 16]}}
    shifts: [{{shift: gaussian_noise, severity: 5}}]
    stream: {{batch_size: "{{b}}", seed_name: noise-s5}}
  - {{name: noise-s5-w100, family: covariate, shifts: [{{shift: gaussian_noise, severity: 5}}], stream: {{window: 100, seed_name: noise-s5}}}}
  - {{name: noise-s5-again, family: covariate, shifts: [{{shift: gaussian_noise, severity: 5}}]}}
"""

RECORDER = '''
import torch
from shiftbench.methods import Method


class Recorder(Method):
    """The source model; reports the size of every batch it was given."""

    def __init__(self):
        self.sizes = []

    def predict(self, x):
        self.sizes.append(len(x))
        return self.model(x)

    def describe(self):
        return {"batch_sizes": self.sizes}


class NeedsPairs(Recorder):
    min_batch_size = 2
'''


def header(name: str) -> str:
    """The settings benchmark's head (dataset, model, training) under another name."""
    return SETTINGS.split("scenarios:")[0].replace("name: settings", f"name: {name}")


def only(checked, names):
    """The submission restricted to some scenarios (the others marked as not to be run), to keep tests short."""
    skip = {s.name: "not in this test" for s in checked.benchmark.scenarios if s.name not in names}
    return checked.model_copy(update={"unsupported": skip})


@pytest.fixture(scope="module")
def settings_project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("settings") / "p", {}, benchmark=SETTINGS)
    (root / "benchmarks" / "tiny.yaml").rename(root / "benchmarks" / "settings.yaml")
    (root / "recording.py").write_text(RECORDER)
    return root


@pytest.fixture
def project(settings_project, monkeypatch):
    monkeypatch.chdir(settings_project)
    monkeypatch.syspath_prepend(str(settings_project))
    return settings_project


@pytest.fixture(scope="module")
def workspace():
    return Workspace(torch.device("cpu"), progress=False)


def stream_of(workspace, scenario: str, seed: int = 0):
    return workspace.stream(scenario_cell(load_benchmark("settings"), scenario, seed=seed))


def rows(segment, with_domain: bool = False) -> Counter:
    """The segment as a multiset of (image bytes, label[, domain]) rows."""
    doms = segment.meta["domains"].tolist() if with_domain else [None] * len(segment)
    return Counter((img.numpy().tobytes(), int(y), d) for img, y, d in zip(segment.images, segment.labels, doms))


def test_gradual_plays_each_corruption_at_severities_one_to_five_to_one(project, workspace):
    spec = scenario_cell(load_benchmark("settings"), "gradual").spec
    path = [1, 2, 3, 4, 5, 4, 3, 2, 1]
    assert [(c[0]["shift"], c[0]["severity"]) for c in spec["segments"]] == (
        [("gaussian_noise", s) for s in path] + [("speckle_noise", s) for s in path])
    clean = workspace.dataset("digits").split("test").images.double()
    stream = stream_of(workspace, "gradual")
    assert len(stream) == 18
    assert stream[3] is stream[5] and stream[9] is stream[17]  # a severity met again replays its images
    for block in (stream[:9], stream[9:]):  # the noise grows along 1..5 and shrinks back, image by image
        deviation = [(seg.images.double() - clean).abs().mean().item() for seg in block]
        assert all(a < b for a, b in pairwise(deviation[:5]))
        assert all(a > b for a, b in pairwise(deviation[4:]))


def test_mixed_holds_every_image_once_in_a_seeded_order_that_is_not_the_concatenation(project, workspace):
    sequence = stream_of(workspace, "sequence")
    (mixed,) = stream_of(workspace, "mixed")
    assert len(mixed) == sum(len(s) for s in sequence)
    assert rows(mixed) == sum((rows(s) for s in sequence), Counter())
    concatenated = torch.cat([s.images for s in sequence])
    assert not torch.equal(mixed.images, concatenated)
    # each image remembers the segment it came from, and splitting gives every segment back
    tagged = sum((Counter({(k[0], k[1], d): v for k, v in rows(s).items()}) for d, s in enumerate(sequence)), Counter())
    assert rows(mixed, with_domain=True) == tagged
    for (part, _), seg in zip(domains(mixed, torch.zeros(len(mixed), 10)), sequence):
        assert rows(part) == rows(seg)
    # seeded: the same cell seed gives the same order, another seed another one
    assert torch.equal(stream_of(Workspace(torch.device("cpu")), "mixed")[0].images, mixed.images)
    assert not torch.equal(stream_of(workspace, "mixed", seed=1)[0].labels, mixed.labels)


def test_label_order_with_concentration_zero_sorts_each_segment_by_class(project, workspace):
    sequence = stream_of(workspace, "sequence")
    correlated = stream_of(workspace, "correlated")
    for seg, plain in zip(correlated, sequence):
        assert torch.equal(seg.labels, seg.labels.sort().values)
        assert rows(seg) == rows(plain)


def test_label_order_over_mixed_domains_sorts_the_whole_stream_and_keeps_each_images_domain(project, workspace):
    (mixed,) = stream_of(workspace, "mixed")
    (both,) = stream_of(workspace, "mixed-correlated")
    assert torch.equal(both.labels, both.labels.sort().values)
    assert rows(both, with_domain=True) == rows(mixed, with_domain=True)
    assert len(set(both.meta["domains"][:200].tolist())) > 1  # not one domain after another


def test_small_concentration_puts_fewer_classes_in_a_batch_than_iid(project, workspace):
    def classes_per_batch(stream):
        return sum(len(set(s.labels[i:i + 64].tolist())) for s in stream for i in range(0, len(s), 64))

    assert classes_per_batch(stream_of(workspace, "correlated-0.1")) < 0.6 * classes_per_batch(
        stream_of(workspace, "sequence"))


def test_seed_name_decides_the_images_and_the_scenario_name_does_not_when_it_is_set(project):
    bench = load_benchmark("settings")

    def images(name):  # a fresh workspace each time: nothing shared in memory
        return Workspace(torch.device("cpu"), progress=False).stream(scenario_cell(bench, name))[0].images

    assert torch.equal(images("noise-s5-b4"), images("noise-s5"))
    assert not torch.equal(images("noise-s5-again"), images("noise-s5"))  # same chain, own name: other noise


@pytest.fixture(scope="module")
def source_records(settings_project, tmp_path_factory):
    """Records of the source model on the sequence, its long (cycled) and mixed versions."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(settings_project)
        (settings_project / "leaderboard" / "submissions" / "src.yaml").write_text(
            submission("Src", "source", benchmark="settings"))
        checked = only(check_submission(settings_project / "leaderboard" / "submissions" / "src.yaml"),
                       {"long", "sequence", "mixed"})
        out = tmp_path_factory.mktemp("source-records")
        run_submissions([checked], device="cpu", store=Store(out / "s"), results_root=out / "r", progress=False)
        (path,) = (out / "r" / "settings").glob("*.json")
        return {r["cell"]["scenario"]: r for r in json.loads(path.read_text())["records"]}


def test_mixed_records_metrics_per_segment_it_was_mixed_from(source_records):
    mixed, sequence = source_records["mixed"], source_records["sequence"]
    assert mixed["status"] == "ok" and len(mixed["segments"]) == 3
    for m, s in zip(mixed["segments"], sequence["segments"]):  # the source model: same images, same answers
        assert m["n"] == s["n"] and m["error"] == s["error"] and m["nll"] == pytest.approx(s["nll"], rel=1e-4)
    assert mixed["metrics"]["error"] == pytest.approx(sequence["metrics"]["error"])


def test_long_stream_is_n_copies_and_reports_error_per_window(source_records):
    records = source_records
    long, sequence = records["long"], records["sequence"]
    assert long["status"] == "ok" and long["metrics"]["n"] == 3 * sequence["metrics"]["n"]
    assert long["segments"] == sequence["segments"] * 3  # the source model sees the same images each cycle
    assert long["provenance"]["scenario_sha256"] == sequence["provenance"]["scenario_sha256"] * 3
    online = long["online"]
    assert set(online) == {"window", "error"} and online["window"] == 100
    n = long["metrics"]["n"]
    assert len(online["error"]) == math.ceil(n / 100)
    weights = [min(100, n - 100 * i) for i in range(len(online["error"]))]
    assert sum(w * e for w, e in zip(weights, online["error"])) / n == pytest.approx(long["metrics"]["error"])
    assert "online" in sequence and len(sequence["online"]["error"]) == math.ceil(sequence["metrics"]["n"] / 1000)


def test_window_errors_against_hand_counts():
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0])
    pred = torch.tensor([0, 1, 0, 0, 0, 1, 0])  # wrong at rows 2, 4, 5
    logits = torch.nn.functional.one_hot(pred, 2).float()
    assert window_errors(logits, labels, 3) == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert online_error(logits, labels, 7) is None
    assert online_error(logits, labels, 2) == {"window": 2, "error": pytest.approx([0.0, 0.5, 1.0, 0.0])}


def test_batch_size_axis_changes_the_batches_the_method_sees(project, tmp_path):
    (project / "leaderboard" / "submissions" / "rec.yaml").write_text(
        submission("Rec", "recording:Recorder", benchmark="settings"))
    axis = {f"noise-s5-b{b}" for b in (1, 4, 16)} | {"noise-s5"}
    checked = only(check_submission(project / "leaderboard" / "submissions" / "rec.yaml"), axis)
    assert sorted(c.batch_size for c in cells_of(checked)) == [1, 4, 16, 64]
    run_submissions([checked], device="cpu", store=Store(tmp_path / "s"), results_root=tmp_path / "r",
                    progress=False)
    (path,) = (tmp_path / "r" / "settings").glob("*.json")
    records = {r["cell"]["scenario"]: r for r in json.loads(path.read_text())["records"]}
    for name, b in (("noise-s5-b1", 1), ("noise-s5-b4", 4), ("noise-s5-b16", 16), ("noise-s5", 64)):
        sizes = records[name]["method_info"]["batch_sizes"]
        assert sum(sizes) == 539 and set(sizes[:-1]) == {b} and sizes[-1] == 539 - b * (len(sizes) - 1)
    # one seed name: every batch size sees the very same images, so the source model's numbers agree
    assert len({json.dumps(r["provenance"]["scenario_sha256"]) for r in records.values()}) == 1
    assert len({r["metrics"]["error"] for r in records.values()}) == 1


def test_a_method_that_needs_larger_batches_skips_those_scenarios_and_validation_says_so(project, capsys):
    from shiftbench.cli.main import main

    path = project / "leaderboard" / "submissions" / "pairs.yaml"
    path.write_text(submission("Pairs", "recording:NeedsPairs", benchmark="settings"))
    checked = check_submission(path)
    assert list(checked.unsupported) == ["noise-s5-b1"] and "batch size 1 < 2" in checked.unsupported["noise-s5-b1"]
    assert "noise-s5-b1" not in {c.scenario for c in cells_of(checked)}
    assert main(["validate", str(path)]) == 0
    assert "skips scenario 'noise-s5-b1': batch size 1 < 2" in capsys.readouterr().out


def test_a_method_that_can_run_no_scenario_is_refused(tmp_path, monkeypatch, capsys):
    from shiftbench.cli.main import main

    only_b1 = header("tiny") + (
        "scenarios:\n  - {name: b1, family: covariate, shifts: [{shift: gaussian_noise}], stream: {batch_size: 1}}\n")
    root = make_project(tmp_path / "p", {"pairs.yaml": submission("Pairs", "recording:NeedsPairs")},
                        benchmark=only_b1)
    (root / "recording.py").write_text(RECORDER)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    assert main(["validate", "leaderboard/submissions/pairs.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pairs.yaml: method:" in err[0] and "batch size 1 < 2" in err[0]


def test_the_evaluator_refuses_batches_smaller_than_the_method_allows():
    class Pairs(Method):
        min_batch_size = 2

    from shiftbench.core.imageset import ImageSet

    seg = ImageSet(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), ("a", "b"))
    with pytest.raises(ValueError, match="batch size 1 < 2"):
        run_stream(Pairs(), [seg], "continual", 1, torch.device("cpu"))


def test_every_setting_is_in_the_cell_key_and_the_stream_key_ignores_only_batch_and_window(project):
    bench = load_benchmark("settings")
    cells = {s.name: scenario_cell(bench, s.name) for s in bench.scenarios}
    assert len({c.key for c in cells.values()}) == len(cells)
    specs = [json.dumps(cells[n].spec, sort_keys=True) for n in ("sequence", "mixed", "correlated", "mixed-correlated")]
    assert len(set(specs)) == 4
    ws = Workspace(torch.device("cpu"), progress=False)
    same_images = {ws._stream_key(cells[n]) for n in ("noise-s5", "noise-s5-b1", "noise-s5-b4", "noise-s5-w100")}
    assert len(same_images) == 1
    assert ws._stream_key(cells["long"]) != ws._stream_key(cells["sequence"])


def test_stream_layout_counts_as_evaluator_code():
    from shiftbench.core.code_identity import closure

    assert "shiftbench.evaluation.stream_layout" in closure("shiftbench.run.compute")


@pytest.mark.parametrize("stream, message", [
    ("{severities: [1, 6]}", "scenario 'x': stream.severities.severity: parameter 'severity'"),
    ("{label_order: {concentration: -1}}", "scenario 'x': stream.label_order.concentration: parameter"),
    ("{label_order: {order: 3}}", "scenario 'x': stream.label_order"),
    ("{cycles: 0}", "scenarios.0.stream.cycles"),
    ("{mixed: true}", "scenarios.0.stream.mixed"),
])
def test_bad_stream_settings_are_one_line_naming_file_and_field(tmp_path, monkeypatch, capsys, stream, message):
    from shiftbench.cli.main import main

    bench = header("tiny") + (
        f"scenarios:\n  - {{name: x, family: covariate, shifts: [{{shift: gaussian_noise}}], stream: {stream}}}\n")
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "source")}, benchmark=bench)
    monkeypatch.chdir(root)
    assert main(["validate", "leaderboard/submissions/a.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiny.yaml" in err[0] and message in err[0], err


def test_gradual_needs_a_severity_to_vary(tmp_path, monkeypatch):
    bench = header("tiny") + (
        "scenarios:\n  - {name: g, family: covariate, shifts: [{shift: dirichlet_prior}], stream: {severities: [1]}}\n")
    make_project(tmp_path / "p", {}, benchmark=bench)
    monkeypatch.chdir(tmp_path / "p")
    with pytest.raises(UserError, match=r"scenario 'g': stream.severities: segment 0 has no shift with a 'severity'"):
        load_benchmark("tiny")


@pytest.mark.parametrize("scenario, message", [
    ("{name: 'n-{x}', family: covariate, matrix: {b: [1, 2]}, shifts: [{shift: gaussian_noise}]}",
     "'{x}' names no matrix key"),
    ("{name: s, family: covariate, segment_matrix: {c: [1]}, segments: [[{shift: gaussian_noise}]]}",
     "segment_matrix makes the segments from `shifts`"),
    ("{name: s, family: covariate, segment_matrix: {c: [1]}}", "segment_matrix makes the segments from `shifts`"),
])
def test_bad_templates_are_one_line(tmp_path, monkeypatch, capsys, scenario, message):
    from shiftbench.cli.main import main

    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "source")},
                        benchmark=header("tiny") + f"scenarios:\n  - {scenario}\n")
    monkeypatch.chdir(root)
    assert main(["validate", "leaderboard/submissions/a.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiny.yaml: scenarios:" in err[0] and message in err[0], err


def test_segment_matrix_writes_a_sequence_and_composes_with_matrix():
    import yaml

    from shiftbench.run.benchmark import Benchmark

    bench = Benchmark(**yaml.safe_load(header("t") + """\
scenarios:
  - {name: explicit, family: covariate, segments: [[{shift: gaussian_noise, severity: 3}], [{shift: shot_noise, severity: 3}]]}
  - name: "compact-s{s}"
    family: covariate
    matrix: {s: [3, 5]}
    segment_matrix: {c: [gaussian_noise, shot_noise]}
    shifts: [{shift: "{c}", severity: "{s}"}]
    stream: {batch_size: "{s}"}
"""))
    assert [s.name for s in bench.scenarios] == ["explicit", "compact-s3", "compact-s5"]
    assert bench.scenario("compact-s3").segments == bench.scenario("explicit").segments
    assert bench.scenario("compact-s5").segments == [[{"shift": "gaussian_noise", "severity": 5}],
                                                     [{"shift": "shot_noise", "severity": 5}]]
    assert bench.scenario("compact-s5").shifts == [] and bench.batch_size_of(bench.scenario("compact-s5")) == 5


def test_a_recurring_segment_is_laid_out_once():
    from shiftbench.core.imageset import ImageSet
    from shiftbench.evaluation.stream_layout import lay_out

    def seg(k):
        return ImageSet(torch.full((40, 1, 2, 2), k, dtype=torch.uint8), torch.arange(40) % 4, ("a", "b", "c", "d"))

    a, b = seg(1), seg(2)
    order = {"shift": "label_correlated_order", "concentration": 0.1, "chunks": None}
    out = lay_out([a, b, a], {"mix": False, "label_order": order, "cycles": 2}, seed=0)
    assert len(out) == 6 and out[0] is out[2] is out[3] is out[5] and out[1] is out[4]
    assert not torch.equal(out[0].labels, a.labels) and sorted(out[0].labels.tolist()) == sorted(a.labels.tolist())
