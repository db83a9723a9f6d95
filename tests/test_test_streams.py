"""Which rows a scenario plays and in what order: the seeded class-stratified subset, the seeded shuffle,
the per-loader default, the published corrupted files following the rows, and sibling benchmarks."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import REPO
from tiny_formats import write_cifar10, write_cifar_c, write_image_folder

from shiftbench.core.errors import UserError
from shiftbench.core.imageset import ImageSet
from shiftbench.data.test_stream import ROWS, shuffled, stratified_counts, stratified_subset
from shiftbench.run.benchmark import load_benchmark
from shiftbench.run.plan import scenario_cell
from shiftbench.run.workspace import Workspace


def imageset(labels: list[int], k: int) -> ImageSet:
    n = len(labels)
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2)
    return ImageSet(images.contiguous(), torch.tensor(labels), tuple(map(str, range(k))))


def test_stratified_counts_are_proportional_and_sum_to_n():
    g = np.random.default_rng(0)
    for _ in range(200):
        k = int(g.integers(2, 12))
        labels = torch.from_numpy(g.integers(0, k, int(g.integers(k, 400))))
        n = int(g.integers(1, len(labels) + 1))
        counts = stratified_counts(labels, n, k)
        share = torch.bincount(labels, minlength=k).double() * n / len(labels)
        assert int(counts.sum()) == n
        assert bool(((counts - share).abs() < 1).all())
        assert bool((counts <= torch.bincount(labels, minlength=k)).all())
    with pytest.raises(UserError, match="n_per_scenario is 11 but the test split has only 10 images"):
        stratified_counts(torch.zeros(10, dtype=torch.int64), 11, 1)


def test_subset_and_shuffle_are_seeded_and_record_the_stored_rows():
    data = imageset([i % 4 for i in range(100)], 4)
    sub = stratified_subset(data, 40, seed=3)
    assert torch.bincount(sub.labels).tolist() == [10, 10, 10, 10]
    rows = sub.meta[ROWS]
    assert torch.equal(rows, rows.sort().values)  # a subset keeps the stored order
    assert torch.equal(sub.images, data.images[rows]) and torch.equal(sub.labels, data.labels[rows])
    assert torch.equal(stratified_subset(data, 40, seed=3).meta[ROWS], rows)
    assert not torch.equal(stratified_subset(data, 40, seed=4).meta[ROWS], rows)
    mixed = shuffled(sub, seed=5)
    assert sorted(mixed.meta[ROWS].tolist()) == rows.tolist() and not torch.equal(mixed.meta[ROWS], rows)
    assert torch.equal(mixed.images, data.images[mixed.meta[ROWS]])  # rows compose through both steps
    assert torch.equal(shuffled(sub, seed=5).meta[ROWS], mixed.meta[ROWS])


FOLDER_MANIFEST = "name: pets\nloader: image_folder\nroot: pets\nparams: {channels: 3, val_fraction: 0.0}\n"
FOLDER_BENCH = """\
name: pets
dataset: pets
model: {arch: small_cnn, width: 4}
training: {name: erm, epochs: 1, batch_size: 8}
scenarios:
  - {name: clean, family: clean}
  - {name: as-stored, family: clean, order: as_stored}
"""



def test_folders_are_shuffled_by_default_while_seeded_permutations_play_as_stored(proj, tmp_path):
    write_image_folder(tmp_path / "data" / "pets" / "pets" / "train", per_class=4)
    write_image_folder(tmp_path / "data" / "pets" / "pets" / "test", per_class=6, seed=8)
    (proj / "data_manifests" / "pets.yaml").write_text(FOLDER_MANIFEST)
    (proj / "benchmarks" / "pets.yaml").write_text(FOLDER_BENCH)
    bench = load_benchmark("pets")
    assert [s.resolved()["order"] for s in bench.scenarios] == ["shuffled", "as_stored"]
    assert {s.resolved()["order"] for s in load_benchmark("digits").scenarios} == {"as_stored"}
    ws = Workspace(torch.device("cpu"), progress=False)
    stored = ws.stream(scenario_cell(bench, "as-stored"))[0]
    played = ws.stream(scenario_cell(bench, "clean"))[0]
    assert stored.labels.tolist() == sorted(stored.labels.tolist())  # read class by class
    assert played.labels.tolist() != stored.labels.tolist()
    assert torch.equal(played.images, stored.images[played.meta[ROWS]])
    # one order per (benchmark, split, seed): every scenario plays the same images in the same order
    other = ws.stream(scenario_cell(bench, "clean", seed=1))[0]
    assert not torch.equal(other.meta[ROWS], played.meta[ROWS])


TINY_C = """\
name: tiny-c
dataset: cifar10
batch_size: 4
n_per_scenario: {n}
order: shuffled
model: {{arch: small_cnn, width: 4}}
training: {{name: erm, epochs: 1, batch_size: 8}}
scenarios:
  - name: fog-file
    family: covariate
    shifts: [{{shift: corruption_file, dataset: cifar10c, corruption: fog, severity: 2}}]
"""


def test_published_corrupted_files_follow_the_subset_and_the_shuffle(proj, tmp_path):
    written = write_cifar10(tmp_path / "data" / "cifar10" / "cifar-10-batches-py", n_test=20)
    files = write_cifar_c(tmp_path / "data" / "cifar10c" / "CIFAR-10-C", written["test_y"])
    path = proj / "data_manifests" / "cifar10c.yaml"
    path.write_text(path.read_text().replace("rows_per_severity: 10000", "rows_per_severity: 20"))
    n_classes = len(set(written["test_y"]))
    (proj / "benchmarks" / "tiny-c.yaml").write_text(TINY_C.format(n=n_classes + 3))
    bench = load_benchmark("tiny-c")
    seg = Workspace(torch.device("cpu"), progress=False).stream(scenario_cell(bench, "fog-file"))[0]
    rows = seg.meta[ROWS]
    assert len(seg) == n_classes + 3 and len(set(rows.tolist())) == len(rows)
    want = torch.from_numpy(files["fog"][20:40][rows.numpy()]).permute(0, 3, 1, 2)  # severity 2 rows, in play order
    assert torch.equal(seg.images, want)
    assert seg.labels.tolist() == [written["test_y"][r] for r in rows.tolist()]


def test_a_sibling_benchmark_extends_the_scenario_list_and_skips_by_pattern(proj):
    for name in ("cifar10", "cifar10-jpeg"):
        shutil.copy(REPO / "benchmarks" / f"{name}.yaml", proj / "benchmarks" / f"{name}.yaml")
    parent, sibling = load_benchmark("cifar10"), load_benchmark("cifar10-jpeg")
    assert sibling.dataset == "cifar10-jpeg" and sibling.n_per_scenario == 2000 and sibling.model == parent.model
    parent_all = [s.name for s in parent.scenarios]
    skipped = ("cifar10c-file-", "generated-gradual", "generated-long-")
    assert [s.name for s in sibling.scenarios] == [n for n in parent_all if not n.startswith(skipped)]
    assert "generated-gradual" in parent_all and "generated-long-x10-s5" in parent_all
    assert {s.order for s in sibling.scenarios} == {"shuffled"} and {s.order for s in parent.scenarios} == {"as_stored"}
    (proj / "benchmarks" / "a.yaml").write_text("extends: b\nname: a\n")
    (proj / "benchmarks" / "b.yaml").write_text("extends: a\nname: b\n")
    with pytest.raises(UserError, match="extends: 'a' extends this benchmark in turn"):
        load_benchmark("a")
