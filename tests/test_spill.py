"""Large derived image sets live in spill files (core/spill.py): the same bytes as in RAM, and the
RAM is not held. SHIFTBENCH_SPILL_MIB=0 spills everything, so small sets exercise the path."""

from __future__ import annotations

import sys

import pytest
import torch

from conftest import make_project, records_of, run_cli, submission
from shiftbench.core import spill
from shiftbench.core.imageset import ImageSet
from shiftbench.evaluation.stream_layout import mix
from shiftbench.run.workspace import LRU
from shiftbench.shifts import get_shift


@pytest.fixture
def spill_all(monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_SPILL_MIB", "0")


def images(n=300, side=16, seed=0):
    return torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def mapped_spill_files() -> list[str]:
    with open("/proc/self/maps") as f:
        return [line for line in f if "/spill/images-" in line]


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")


@linux
def test_a_spilled_tensor_is_a_mapped_file_that_is_already_unlinked(spill_all, isolated_cache):
    before = len(mapped_spill_files())
    x = spill.empty_images((10, 3, 8, 8))
    maps = mapped_spill_files()
    assert len(maps) == before + 1 and maps[-1].rstrip().endswith("(deleted)")
    assert list((isolated_cache / "spill").iterdir()) == []  # nothing left behind if the process dies
    del x
    assert len(mapped_spill_files()) == before


@linux
def test_small_tensors_stay_in_ram(monkeypatch):
    monkeypatch.delenv("SHIFTBENCH_SPILL_MIB", raising=False)
    before = len(mapped_spill_files())
    kept = spill.take_rows(images(), torch.arange(50))
    assert len(mapped_spill_files()) == before and kept.shape == (50, 3, 16, 16)


def test_take_rows_and_copy_equal_indexing_chunk_by_chunk(spill_all, monkeypatch):
    monkeypatch.setattr(spill, "COPY_CHUNK_BYTES", 3 * 16 * 16 * 7)  # 7 rows a chunk: chunk edges are exercised
    x = images()
    index = torch.randint(0, 300, (123,), generator=torch.Generator().manual_seed(1))  # repeats
    assert torch.equal(spill.take_rows(x, index), x[index])
    view = x[:, :, 2:14, 3:15]
    copied = spill.copy_images(view)
    assert copied.is_contiguous() and torch.equal(copied, view)


def test_imageset_subset_and_model_view_spill_the_same_rows(spill_all):
    data = ImageSet(images(side=20), torch.arange(300) % 10, tuple("abcdefghij"), window=16)
    index = torch.tensor([5, 5, 0, 299])
    assert torch.equal(data.subset(index).images, data.images[index])
    assert torch.equal(data.model_view().images, data.images[:, :, 2:18, 2:18])


@pytest.mark.parametrize("name", ["gaussian_noise", "contrast", "jpeg_compression"])
def test_corruptions_write_the_same_bytes_into_a_spill_file(name, monkeypatch):
    x = images(n=40, side=32)
    data = ImageSet(x, torch.zeros(40, dtype=torch.int64), ("a",))
    monkeypatch.setenv("SHIFTBENCH_SPILL_MIB", str(1 << 20))
    in_ram = get_shift(name).fn(data, seed=3, severity=5).images
    monkeypatch.setenv("SHIFTBENCH_SPILL_MIB", "0")
    spilled = get_shift(name).fn(data, seed=3, severity=5).images
    assert torch.equal(in_ram, spilled) and not torch.equal(in_ram, x)


def test_a_mixed_stream_is_the_same_spilled(monkeypatch):
    segs = [ImageSet(images(n=50, seed=s), torch.arange(50) % 10, tuple("abcdefghij")) for s in range(3)]
    in_ram = mix(segs, seed=7)
    monkeypatch.setenv("SHIFTBENCH_SPILL_MIB", "0")
    spilled = mix(segs, seed=7)
    assert torch.equal(in_ram.images, spilled.images) and torch.equal(in_ram.labels, spilled.labels)


def test_the_stream_cache_holds_no_more_image_bytes_than_its_budget_but_always_the_newest():
    one = ImageSet(images(n=10), torch.zeros(10, dtype=torch.int64), ("a",))  # 7,680 bytes
    lru = LRU(6, max_bytes=2 * one.images.nbytes)
    for key in "abc":
        lru.remember(key, lambda: one.with_(images=one.images.clone()))
    assert list(lru) == ["b", "c"]
    lru = LRU(6, max_bytes=1)
    lru.remember("a", lambda: [one, one])  # a list of segments sharing images counts them once
    assert list(lru) == ["a"]
    lru.remember("b", lambda: one)
    assert list(lru) == ["b"]


SPILL_BENCHMARK = """\
name: tiny
description: A shuffled subset, a corruption and a mixed stream, for the spill law.
dataset: digits
batch_size: 64
n_per_scenario: 400
order: shuffled
model: {arch: small_cnn, width: 4}
training: {name: erm, epochs: 1, lr: 0.05, batch_size: 64, precision: float32}
scenarios:
  - {name: noise-s5, family: covariate, shifts: [{shift: gaussian_noise, severity: 5}]}
  - name: mixed
    family: covariate
    segment_matrix: {c: [contrast, pixelate]}
    shifts: [{shift: "{c}", severity: 5}]
    stream: {mix: true}
"""


def test_a_run_with_every_set_spilled_scores_exactly_as_one_in_ram(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "proj", {"source.yaml": submission("Source", "source"),
                                            "tent.yaml": submission("TENT", "tent")}, SPILL_BENCHMARK)
    monkeypatch.chdir(root)
    accuracies = []
    for threshold in (str(1 << 20), "0"):
        monkeypatch.setenv("SHIFTBENCH_SPILL_MIB", threshold)
        results = tmp_path / f"results-{threshold}"
        code, _, err = run_cli(capsys, "run", "--executor", "inline", "--quiet", "--store", str(tmp_path / threshold),
                               "--results", str(results), "--site", str(tmp_path / f"site-{threshold}"))
        assert code == 0, err
        accuracies.append({key: r["metrics"] for key, r in records_of(results / "tiny").items()})
    assert len(accuracies[0]) == 4 and accuracies[0] == accuracies[1]
