"""The whole computation of one cell, from its spec to its record:

  workspace.stream_model -> workspace.stream -> create_method -> method.setup -> run_stream -> metrics.

A record holds the metrics of the whole stream, per-segment metrics when the stream has more
than one segment (a mixed stream's per segment it was mixed from, in their order; a cycled
stream's per played copy), and `online` (error per window of images) when the stream is longer
than one window.
"""

from __future__ import annotations

import copy
import time
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from ..core.device import device_name
from ..evaluation import compute_metrics, run_stream
from ..evaluation.metrics import domain_prior_error, prior_estimation_error, true_domain_priors, true_prior
from ..evaluation.online import online_error
from ..evaluation.stream_layout import domains
from ..methods import create_method
from .cell import Cell
from .provenance import software

if TYPE_CHECKING:
    from .workspace import Workspace


class NonFiniteLogits(RuntimeError):
    pass


def compute_cell(cell: Cell, workspace: Workspace) -> dict[str, Any]:
    """The cell's record. Never raises for a method's fault: the record then says 'failed'."""
    start = time.perf_counter()
    record: dict[str, Any] = {"key": cell.key, "cell": cell.as_dict(), "status": "ok", "error": None, "provenance": {}}
    try:
        model = workspace.stream_model(cell)  # restricted to the played set's classes where it has fewer
        if model.sha256 != cell.checkpoint_sha256:
            raise RuntimeError("source checkpoint differs from the one this cell was planned with")
        stream = workspace.stream(cell)
        method = create_method(cell.method, cell.params)
        base_logits = workspace.base_logits(cell, model) if method.logit_only else None
        source = workspace.source(cell, model)
        if method.oracle:
            source = replace(source, target_priors=[(len(s), true_prior(s)) for s in stream],
                             domain_priors=[true_domain_priors(s) for s in stream])
        torch.manual_seed(cell.seed)
        method.setup(model.model if method.logit_only else copy.deepcopy(model.model), source)
        logits = run_stream(method, stream, cell.protocol, cell.batch_size, workspace.device, base_logits)
        if not torch.isfinite(torch.cat(logits)).all():
            raise NonFiniteLogits("the method produced NaN or infinite logits")
        record["metrics"] = stream_metrics(stream, logits)
        parts = [part for s, lg in zip(stream, logits) for part in domains(s, lg)]
        if len(parts) > 1:
            record["segments"] = [segment_metrics(s, lg) for s, lg in parts]
        online = online_error(torch.cat(logits), torch.cat([s.labels for s in stream]), cell.spec["window"])
        if online:
            record["online"] = online
        record["method_info"] = method.describe()
        if len(stream) == 1:
            record["metrics"].update(prior_estimation_error(record["method_info"], stream[0].meta, source.prior))
            record["metrics"].update(domain_prior_error(record["method_info"], stream[0].meta, logits[0],
                                                        stream[0].labels))
        hashes = {key: s.sha256() for key, s in {id(s): s for s in stream}.items()}  # cycled copies: hashed once
        record["provenance"] = {"data_sha256": cell.data_sha256, "scenario_sha256": [hashes[id(s)] for s in stream],
                                "checkpoint_sha256": model.sha256, "model_key": model.key,
                                "model": model.provenance(),
                                "test_stream": {k: cell.spec.get(k) for k in ("split", "n_per_scenario", "order")}}
    except Exception as e:  # a failing method fails its own cell, never the run
        record.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=6))
    record["provenance"].update(software(), device=device_name(workspace.device), config_hash=cell.key)
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
