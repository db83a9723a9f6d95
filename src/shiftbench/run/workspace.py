"""Builds and memoises what cells share within one process: datasets, source models, scenario streams, logits.

Everything here is a pure function of a cell's fields, so any process (a Ray worker, a pool
worker) rebuilds the same thing from the same cell; source models come from the on-disk cache
by content hash.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable

import torch

from ..core.hashing import config_hash, seed_from
from ..core.imageset import ImageSet
from ..data import DatasetSplits, load_dataset
from ..data.test_stream import shuffled, stratified_subset
from ..evaluation.stream_layout import lay_out
from ..methods import SourceContext
from ..models import SourceModel, get_source_model
from ..models.class_subset import restrict_classifier, restrict_split, subset_columns
from ..models.forward import forward
from ..shifts import apply_shifts
from .cell import Cell


STREAM_CACHE_BYTES = 4 * 2**30


class LRU(OrderedDict):
    """The `size` most recently used values; with `max_bytes`, also no more image bytes than that
    (but always the newest value): an ImageNet-scale stream is gigabytes of spill file
    (core/spill.py), and six of them would fill a disk."""

    def __init__(self, size: int, max_bytes: int | None = None):
        super().__init__()
        self.size, self.max_bytes = size, max_bytes

    def remember(self, key, make: Callable[[], Any]):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > self.size or (self.max_bytes is not None and len(self) > 1
                                        and image_bytes(self.values()) > self.max_bytes):
            self.popitem(last=False)
        return value


def image_bytes(values) -> int:
    """The bytes of the distinct image tensors in values (ImageSets, or lists of them)."""
    seen: dict[int, int] = {}
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, ImageSet):
                seen[id(item.images)] = item.images.nbytes
    return sum(seen.values())


def _frozen(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


class Workspace:
    def __init__(self, device: torch.device, progress: bool = True):
        self.device = device
        self.progress = progress
        self._datasets: dict[str, DatasetSplits] = {}
        self._data_sha: dict[str, str] = {}
        self._models: dict[str, SourceModel] = {}
        self._data = LRU(6, STREAM_CACHE_BYTES)  # scenario streams and shifted source splits (images: the large part)
        self._shared = LRU(24)  # source logits and source contexts

    def dataset(self, name: str) -> DatasetSplits:
        if name not in self._datasets:
            self._datasets[name] = load_dataset(name)
        return self._datasets[name]

    def data_sha256(self, name: str) -> str:
        """The dataset's sha256, hashed once per process."""
        if name not in self._data_sha:
            self._data_sha[name] = self.dataset(name).sha256()
        return self._data_sha[name]

    def source_split(self, cell: Cell, split: str) -> ImageSet:
        """A source split as the scenario's source model sees it (through its train_shifts)."""
        data = self.dataset(cell.dataset).split(split)
        shifts = cell.spec["train_shifts"]
        if not shifts:
            return data
        key = ("train", cell.dataset, cell.benchmark, _frozen(shifts), split, cell.seed)
        return self._data.remember(key, lambda: apply_shifts(
            data, shifts, seed_from(cell.benchmark, "train_shifts", shifts, split, cell.seed)))

    def cell_data_sha256(self, cell: Cell) -> str:
        """The sha256 of the data a cell reads: the benchmark's dataset and, for a scenario that plays
        another dataset's split, that one too."""
        own = self.data_sha256(cell.dataset)
        played = cell.spec.get("dataset")
        return config_hash([own, self.data_sha256(played)], length=64) if played else own

    def played_dataset(self, cell: Cell) -> str:
        return cell.spec.get("dataset") or cell.dataset

    def class_columns(self, cell: Cell) -> list[int] | None:
        """The model's logit columns of the played test set's classes (models/class_subset.py), or None
        when the played set has the model's own classes in the model's order."""
        model_classes = self.dataset(cell.dataset).source_train.classes
        played = self.dataset(self.played_dataset(cell)).split(cell.spec["split"]).classes
        if tuple(played) == tuple(model_classes):
            return None
        return subset_columns(model_classes, played, what=f"dataset '{self.played_dataset(cell)}'")

    def stream_model(self, cell: Cell) -> SourceModel:
        """The source model as the scenario scores it: restricted to the played set's classes when
        those are some of the model's (ImageNet-R: 200 of 1000), else the source model itself."""
        model = self.model(cell)
        columns = self.class_columns(cell)
        if columns is None:
            return model
        key = ("restricted", _frozen([cell.dataset, cell.benchmark, cell.spec["train_shifts"], cell.model,
                                      cell.training, cell.seed]), tuple(columns))
        return self._shared.remember(key, lambda: replace(model, model=restrict_classifier(model.model, columns)))

    def model(self, cell: Cell) -> SourceModel:
        """The source model: trained on the (shifted) source split once, then loaded from the cache."""
        key = _frozen([cell.dataset, cell.benchmark, cell.spec["train_shifts"], cell.model, cell.training, cell.seed])
        if key not in self._models:
            self._models[key] = get_source_model(self.source_split(cell, "source_train"),
                                                  self.source_split(cell, "source_val"), cell.model, cell.training,
                                                  cell.seed, self.device, self.progress)
        return self._models[key]

    def stream(self, cell: Cell) -> list[ImageSet]:
        """The scenario's test stream as played, one ImageSet per played segment, full images plus
        `window` (the evaluator crops): the shift chains applied, then laid out as the scenario's
        stream settings say (mixed, label-ordered, cycled). A chain that recurs in the stream (a
        gradual path's way back down) plays the same images again: one object, built once."""
        spec = cell.spec
        name = spec["seed_name"]

        def build():
            base = self.played_rows(cell)
            built: dict[str, ImageSet] = {}
            for i, chain in enumerate(spec["segments"]):
                if _frozen(chain) not in built:
                    built[_frozen(chain)] = apply_shifts(base, chain, seed_from(cell.benchmark, name, i, cell.seed))
            segments = [built[_frozen(chain)] for chain in spec["segments"]]
            return lay_out(segments, spec["stream"], seed_from(cell.benchmark, name, "stream", cell.seed))

        return self._data.remember(self._stream_key(cell), build)

    @staticmethod
    def _stream_key(cell: Cell) -> tuple:
        """Scenarios that differ only in batch size or online window share one built stream."""
        decides = {k: v for k, v in cell.spec.items() if k != "window"}
        return ("stream", cell.dataset, cell.benchmark, _frozen(decides), cell.seed)

    def played_rows(self, cell: Cell) -> ImageSet:
        """The split's rows the scenario plays, before its shifts: the seeded subset, in the seeded order.
        One subset and order per (benchmark, split, seed), so every scenario sees the same images."""
        spec = cell.spec
        data = self.dataset(self.played_dataset(cell)).split(spec["split"])
        if spec.get("n_per_scenario"):
            data = stratified_subset(data, spec["n_per_scenario"],
                                     seed_from(cell.benchmark, spec["split"], "subset", cell.seed))
        if spec.get("order", "as_stored") == "shuffled":
            data = shuffled(data, seed_from(cell.benchmark, spec["split"], "order", cell.seed))
        return data

    def forward_batch(self, cell: Cell) -> int:
        """Batch size for shared no-grad forward passes: large on CUDA; on CPU the cell's own, but at
        least 64 (512-image batches of a conv net overflow the CPU caches and run slower than 64-image
        ones; a batch-size-1 scenario must not make the shared passes crawl)."""
        return 512 if self.device.type == "cuda" else max(cell.batch_size, 64)

    def base_logits(self, cell: Cell, model: SourceModel) -> list[torch.Tensor]:
        """Source-model logits per played segment, shared by all logit-only methods of a scenario
        (a cycled stream's copies are one segment object: computed once)."""

        def build():
            stream = self.stream(cell)
            done: dict[int, torch.Tensor] = {}
            for seg in stream:
                if id(seg) not in done:
                    done[id(seg)] = forward(model.model, seg, self.forward_batch(cell), self.device)
            return [done[id(seg)] for seg in stream]

        return self._shared.remember(self._stream_key(cell) + ("logits", model.sha256, self.forward_batch(cell)), build)

    def source(self, cell: Cell, model: SourceModel) -> SourceContext:
        """What methods may know of the source side; one per model, so its memo (held-out logits,
        calibrators) serves every cell on that model."""

        columns = self.class_columns(cell)

        def build():
            train, val = self.source_split(cell, "source_train"), self.source_split(cell, "source_val")
            if columns is not None:  # the source side speaks of the played set's classes, as the model now does
                classes = self.dataset(self.played_dataset(cell)).split(cell.spec["split"]).classes
                train, val = (restrict_split(s, columns, classes) for s in (train, val))
            return SourceContext(model=model.model, val=val, prior=train.class_prior(), device=self.device,
                                 seed=cell.seed, model_sha256=model.sha256, train=train,
                                 batch_size=self.forward_batch(cell))

        key = ("source", cell.dataset, cell.benchmark, _frozen(cell.spec["train_shifts"]), cell.seed, model.sha256,
               self.forward_batch(cell), None if columns is None else tuple(columns))
        return self._shared.remember(key, build)
