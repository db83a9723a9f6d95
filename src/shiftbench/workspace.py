"""Builds and memoises what cells share within one process: datasets, source models, scenario data, logits.

Everything here is a pure function of its key, so a Ray worker can rebuild it
from the same spec; source models come from the on-disk cache by content hash.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from .benchmark import Benchmark, ScenarioSpec
from .data import DatasetSplits, load_dataset
from .hashing import config_hash, seed_from
from .imageset import ImageSet
from .models import SourceModel, get_source_model
from .shifts import apply_shifts


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

    def dataset(self, bench: Benchmark) -> DatasetSplits:
        return load_dataset(bench.dataset)

    def train_split(self, bench: Benchmark, scenario: ScenarioSpec, split: str, seed: int) -> ImageSet:
        data = self.dataset(bench).split(split)
        if not scenario.train_shifts:
            return data
        return apply_shifts(data, scenario.train_shifts, seed_from(bench.name, "train_shifts", scenario.train_shifts, split, seed))

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
        from .evaluate.evaluator import source_logits

        key = (bench.name, bench.content_hash(), scenario.name, seed, model.sha256)
        return self.logits.remember(key, lambda: [
            source_logits(model.model, seg, 512, self.device) for seg in self.segments(bench, scenario, seed)
        ])

    def data_key(self, bench: Benchmark) -> str:
        return config_hash(self.dataset(bench).sha256())
