"""Builds and memoises what cells share within one process: datasets, source models, scenario data, logits.

Everything here is a pure function of its key, so a Ray worker can rebuild it
from the same spec; source models come from the on-disk cache by content hash.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from ..core.hashing import seed_from
from ..core.imageset import ImageSet
from ..data import DatasetSplits, load_dataset
from ..models import SourceModel, get_source_model
from ..shifts import apply_shifts
from .benchmark import Benchmark, ScenarioSpec


@dataclass(frozen=True)
class ModelRequest:
    """What decides a source model: benchmark data, training shifts, architecture, recipe, seed."""

    benchmark: str
    train_shifts: tuple
    arch: tuple
    recipe: tuple
    seed: int

    @staticmethod
    def of(bench: Benchmark, scenario: ScenarioSpec, recipe: dict[str, Any] | None, seed: int) -> "ModelRequest":
        return ModelRequest(
            bench.name,
            _freeze(scenario.train_shifts),
            _freeze(bench.model),
            _freeze(recipe if recipe is not None else bench.training),
            seed,
        )


def _freeze(obj: Any) -> Any:
    import json

    return json.dumps(obj, sort_keys=True)


class LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def remember(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)
        return value


class Workspace:
    def __init__(self, device: torch.device, progress: bool = True):
        self.device = device
        self.progress = progress
        self.models: dict[ModelRequest, SourceModel] = {}
        self.scenario_data = LRU(6)
        self.logits = LRU(12)
        self._datasets: dict[str, DatasetSplits] = {}
        self._data_sha: dict[str, str] = {}

    def dataset(self, bench: Benchmark) -> DatasetSplits:
        if bench.dataset not in self._datasets:
            self._datasets[bench.dataset] = load_dataset(bench.dataset)
        return self._datasets[bench.dataset]

    def data_sha256(self, bench: Benchmark) -> str:
        """The dataset's sha256, hashed once per process (it goes into every record)."""
        if bench.dataset not in self._data_sha:
            self._data_sha[bench.dataset] = self.dataset(bench).sha256()
        return self._data_sha[bench.dataset]

    def train_split(self, bench: Benchmark, scenario: ScenarioSpec, split: str, seed: int) -> ImageSet:
        """A source split as the scenario's source model sees it (through its train_shifts); built once."""
        data = self.dataset(bench).split(split)
        if not scenario.train_shifts:
            return data
        key = ("train", bench.name, _freeze(scenario.train_shifts), split, seed)
        return self.scenario_data.remember(key, lambda: apply_shifts(
            data, scenario.train_shifts, seed_from(bench.name, "train_shifts", scenario.train_shifts, split, seed)))

    def model(self, bench: Benchmark, scenario: ScenarioSpec, recipe: dict[str, Any] | None, seed: int) -> SourceModel:
        req = ModelRequest.of(bench, scenario, recipe, seed)
        if req not in self.models:
            self.models[req] = get_source_model(
                self.train_split(bench, scenario, "source_train", seed),
                self.train_split(bench, scenario, "source_val", seed),
                bench.model, recipe if recipe is not None else bench.training, seed, self.device, self.progress,
            )
        return self.models[req]

    def segments(self, bench: Benchmark, scenario: ScenarioSpec, seed: int) -> list[ImageSet]:
        """The scenario's test stream, one ImageSet per segment, full images plus `window` (the evaluator crops)."""
        key = (bench.name, bench.content_hash(), scenario.name, seed)

        def build():
            base = self.dataset(bench).split(scenario.split)
            return [
                apply_shifts(base, chain, seed_from(bench.name, scenario.name, i, seed))
                for i, chain in enumerate(scenario.segment_chains())
            ]

        return self.scenario_data.remember(key, build)

    def base_logits(self, bench: Benchmark, scenario: ScenarioSpec, seed: int, model: SourceModel) -> list[torch.Tensor]:
        """Source-model logits per segment, shared by all logit-only methods of a scenario."""
        from ..evaluate.stream import source_logits

        key = (bench.name, bench.content_hash(), scenario.name, seed, model.sha256)
        return self.logits.remember(key, lambda: [
            source_logits(model.model, seg, self.forward_batch(bench), self.device)
            for seg in self.segments(bench, scenario, seed)
        ])

    def forward_batch(self, bench: Benchmark) -> int:
        """Batch size for shared no-grad forward passes: large on CUDA; on CPU the benchmark's own
        (512-image batches of a conv net overflow the CPU caches and run slower than 64-image ones)."""
        return 512 if self.device.type == "cuda" else bench.batch_size

    def val_logits(self, bench: Benchmark, scenario: ScenarioSpec, seed: int,
                   model: SourceModel) -> tuple[torch.Tensor, torch.Tensor]:
        """Source-model logits and labels on the held-out source split, shared by every cell on that model."""
        from ..evaluate.stream import source_logits

        key = ("val", bench.name, _freeze(scenario.train_shifts), seed, model.sha256)

        def build():
            val = self.train_split(bench, scenario, "source_val", seed).model_view()
            return source_logits(model.model, val, self.forward_batch(bench), self.device), val.labels.clone()

        return self.logits.remember(key, build)
