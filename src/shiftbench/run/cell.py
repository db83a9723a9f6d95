"""One cell = (benchmark, scenario, method + params, protocol, seed): its key and how to compute it."""

from __future__ import annotations

import copy
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..core.hashing import config_hash
from ..evaluate import compute_metrics, run_stream
from ..evaluate.metrics import prior_estimation_error, true_prior
from ..methods import SourceContext, create_method
from .benchmark import load_benchmark
from .provenance import device_name, software
from .workspace import Workspace


@dataclass(frozen=True)
class Cell:
    benchmark: str
    benchmark_hash: str
    scenario: str
    family: str
    method: str
    params: dict[str, Any]
    protocol: str
    seed: int
    training: dict[str, Any] | None = None
    checkpoint_sha256: str = ""
    version: str = ""
    code: str = ""
    submissions: tuple[str, ...] = field(default=(), compare=False)

    def spec(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("submissions")
        return d

    @property
    def key(self) -> str:
        """Content address: everything that decides the result, nothing that does not."""
        return config_hash(self.spec(), length=32)


class NonFiniteLogits(RuntimeError):
    pass


def execute_cell(cell: Cell, workspace: Workspace) -> dict[str, Any]:
    """Compute one cell's record. Never raises for a method's fault: the record says 'failed'."""
    start = time.perf_counter()
    bench = load_benchmark(cell.benchmark)
    scenario = bench.scenario(cell.scenario)
    record: dict[str, Any] = {"key": cell.key, "cell": cell.spec(), "status": "ok", "error": None}
    try:
        source_model = workspace.model(bench, scenario, cell.training, cell.seed)
        if source_model.sha256 != cell.checkpoint_sha256:
            raise RuntimeError("source checkpoint differs from the one this cell was planned with")
        segments = workspace.segments(bench, scenario, cell.seed)
        method = create_method(cell.method, cell.params)
        base = None
        if method.logit_only:
            base = workspace.base_logits(bench, scenario, cell.seed, source_model)
            model = source_model.model
        else:
            model = copy.deepcopy(source_model.model)
        torch.manual_seed(cell.seed)
        source_train = workspace.train_split(bench, scenario, "source_train", cell.seed)
        context = SourceContext(
            source_val=workspace.train_split(bench, scenario, "source_val", cell.seed),
            source_prior=source_train.class_prior(),
            device=workspace.device, seed=cell.seed, model=source_model.model,
            source_train=source_train, model_sha256=source_model.sha256,
            val_logits_fn=lambda: workspace.val_logits(bench, scenario, cell.seed, source_model),
            target_priors=[(len(s), true_prior(s)) for s in segments] if method.oracle else None,
        )
        method.setup(model, context)
        logits = run_stream(method, segments, cell.protocol, bench.batch_size, workspace.device, base)
        all_logits = torch.cat(logits)
        if not torch.isfinite(all_logits).all():
            raise NonFiniteLogits("the method produced NaN or infinite logits")
        record["metrics"] = stream_metrics(segments, logits)
        if len(segments) > 1:
            record["segments"] = [segment_metrics(s, lg) for s, lg in zip(segments, logits)]
        record["method_info"] = method.describe()
        if len(segments) == 1:
            record["metrics"].update(prior_estimation_error(record["method_info"], segments[0].meta, context.source_prior))
        record["provenance"] = {
            "data_sha256": workspace.data_sha256(bench),
            "scenario_sha256": [s.sha256() for s in segments],
            "checkpoint_sha256": source_model.sha256,
            "model_key": source_model.key,
        }
    except Exception as e:  # a failing method fails its own cell, never the run
        record["status"] = "failed"
        record["error"] = f"{type(e).__name__}: {e}"
        record["traceback"] = traceback.format_exc(limit=6)
        record.setdefault("provenance", {})
    record["provenance"].update(software())
    record["provenance"].update(device=device_name(workspace.device), config_hash=cell.key,
                                benchmark_hash=cell.benchmark_hash)
    record["seconds"] = round(time.perf_counter() - start, 4)
    return record


def segment_metrics(seg, logits) -> dict[str, Any]:
    return compute_metrics(logits, seg.labels, groups=seg.groups, source_index=seg.source_index, meta=seg.meta)


def stream_metrics(segments, logits) -> dict[str, Any]:
    if len(segments) == 1:
        return segment_metrics(segments[0], logits[0])
    labels = torch.cat([s.labels for s in segments])
    groups = None if any(s.groups is None for s in segments) else torch.cat([s.groups for s in segments])
    return compute_metrics(torch.cat(logits), labels, groups=groups)
