"""Run cells as Ray tasks: on a local Ray started here, or on an existing cluster (`--address`).

One task computes the cells of one scenario (same benchmark, seed and source
model), so a worker builds that scenario's data and source logits once; records
come back per task. What workers need and how they get it:

- Source models: the driver has trained every model before any cell runs. Each
  checkpoint goes into Ray's object store once, named by its sha256; a worker
  whose $SHIFTBENCH_CACHE lacks that checkpoint writes it there before loading,
  so no worker ever trains, and the cache need not be shared between nodes.
- The project folder (benchmarks/, data_manifests/, plugin modules named by
  import path): workers enter the driver's project folder, so on a cluster it
  must exist at the same path on every node (shared filesystem or same checkout).
- Environment: SHIFTBENCH_CACHE and PYTHONPATH are passed on to the workers.

A worker keeps a Workspace per (device, project, cache) for its whole life, so
the datasets, scenario data and models it builds serve every cell it runs.
A worker that dies mid-task (killed, out of memory) is replaced and the task
retried up to `max_retries` times; after that its cells are recorded as failed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from ...core.errors import UserError
from ...core.paths import cache_dir, project_root
from ...core.progress import progress_bar
from ..cell import Cell
from ..compute import compute_cell
from ..provenance import software
from ..workspace import Workspace
from .registry import register_executor

ray = None  # imported when a RayExecutor is made: importing Ray takes seconds


@register_executor("ray")
class RayExecutor:
    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus_per_cell: float = 0.0,
                 cpus_per_cell: float = 1.0, max_retries: int = 3, env_vars: dict[str, str] | None = None,
                 progress: bool = True):
        global ray
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'shiftbench[ray]'", field="--executor") from None
        if address is not None and num_cpus is not None:
            raise UserError("sizes a local Ray only; with --address the cluster's own CPUs are used",
                            field="--workers")
        if num_cpus is not None and num_cpus < 1:
            raise UserError(f"must be at least 1, got {num_cpus}", field="--workers")
        if gpus_per_cell < 0:
            raise UserError(f"must be >= 0, got {gpus_per_cell}", field="--gpus-per-cell")
        self.address = address
        self.num_cpus = num_cpus
        self.gpus_per_cell = gpus_per_cell
        self.cpus_per_cell = cpus_per_cell
        self.max_retries = max_retries
        self.env_vars = env_vars or {}
        self.progress = progress

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        worker_device = self._worker_device(device)
        runtime_env = {"env_vars": self._worker_env()}
        options = dict(num_cpus=self.cpus_per_cell, num_gpus=self.gpus_per_cell, max_retries=self.max_retries,
                       retry_exceptions=False)
        owned = not ray.is_initialized()
        if owned:  # the job's own environment lets the workers Ray starts up front take cells
            import logging

            try:
                ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                         logging_level=logging.WARNING, runtime_env=runtime_env)
            except ConnectionError as e:
                raise UserError(f"cannot reach a Ray cluster at '{self.address}': {e}", field="--address") from None
        else:
            options["runtime_env"] = runtime_env
        pending: dict[Any, Cell] = {}
        try:
            self._check_gpus()
            checkpoints = self._share_checkpoints(cells)
            task = ray.remote(_run_cells).options(**options)
            project = str(project_root())
            threads = max(1, int(self.cpus_per_cell))
            for group in scenario_groups(cells):
                ref = task.remote(group, project, worker_device, threads, checkpoints[group[0].checkpoint_sha256])
                pending[ref] = group
            with progress_bar(len(cells), "cells", self.progress, unit="cell") as bar:
                waiting = list(pending)
                while waiting:
                    done, waiting = ray.wait(waiting, num_returns=1)
                    if waiting:  # collect everything else that is ready too, in one call
                        more, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=0)
                        done += more
                    for ref in done:
                        group = pending.pop(ref)
                        yield from self._results(ref, group)
                        bar.update(len(group))
        finally:
            for ref in pending:  # interrupted: stop what is still queued or running
                ray.cancel(ref, force=True)
            if owned:
                ray.shutdown()

    def _check_gpus(self) -> None:
        """Fail at once rather than wait forever for GPUs a local Ray does not have (a cluster may autoscale)."""
        gpus = ray.cluster_resources().get("GPU", 0)
        if self.address is None and self.gpus_per_cell > gpus:
            raise UserError(f"{self.gpus_per_cell} GPUs per cell, but the Ray cluster has {gpus:g}",
                            field="--gpus-per-cell")

    def _worker_device(self, device: str) -> str:
        """Each cell gets the device Ray reserved for it: a GPU share when gpus_per_cell > 0, else a CPU."""
        if device == "auto":
            return "cuda" if self.gpus_per_cell > 0 else "cpu"
        if device != "cpu" and self.gpus_per_cell == 0:
            raise UserError(f"--device {device} with the ray executor needs --gpus-per-cell > 0 (e.g. 1 or 0.25)",
                            field="--gpus-per-cell")
        return device

    def _worker_env(self) -> dict[str, str]:
        env = {"SHIFTBENCH_CACHE": str(cache_dir().resolve())}
        paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update(self.env_vars)
        return env

    def _share_checkpoints(self, cells: list[Cell]) -> dict[str, tuple[str, str, Any]]:
        """sha256 -> (model key, sha256, object ref of the checkpoint files), one put per model.

        The runner trained or loaded every model already, so this only reads the cache.
        """
        loader = Workspace(torch.device("cpu"), progress=False)
        shared: dict[str, tuple[str, str, Any]] = {}
        for cell in cells:
            if cell.checkpoint_sha256 in shared:
                continue
            model = loader.model(cell)
            if model.sha256 != cell.checkpoint_sha256:
                raise RuntimeError(f"the cached checkpoint {model.checkpoint} changed since the run was planned")
            blob = (model.checkpoint.read_bytes(), model.checkpoint.with_suffix(".json").read_bytes())
            shared[model.sha256] = (model.key, model.sha256, ray.put(blob))
        return shared

    def _results(self, ref, group: list[Cell]) -> list[dict[str, Any]]:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, UserError):  # a set-up problem on the worker stops the run, as it would locally
                raise UserError(str(e.cause)) from None
            return [failed_record(cell, f"{type(e.cause).__name__}: {e.cause}") for cell in group]
        except ray.exceptions.RayError as e:  # the worker died on every try (crash, OOM kill, lost node)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
            return [failed_record(cell, f"{type(e).__name__}: the worker running this cell died "
                                        f"({self.max_retries + 1} tries); last: {reason}") for cell in group]


def scenario_groups(cells: list[Cell]) -> list[list[Cell]]:
    """Cells sharing (benchmark, seed, scenario, source checkpoint), in first-seen order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.benchmark, cell.seed, cell.scenario, cell.checkpoint_sha256), []).append(cell)
    return list(groups.values())


def failed_record(cell: Cell, error: str) -> dict[str, Any]:
    """The record of a cell that produced no result, in the shape compute_cell gives failures."""
    provenance = {**software(), "config_hash": cell.key}
    return {"key": cell.key, "cell": cell.as_dict(), "status": "failed", "error": error, "provenance": provenance,
            "seconds": 0.0}


# ---- what runs inside a Ray worker ---------------------------------------------------------------

_workspaces: dict[tuple[str, str, str], Workspace] = {}
_checked_checkpoints: set[tuple[str, str]] = set()


def _run_cells(cells: list[Cell], project: str, device: str, threads: int,
               checkpoint: tuple[str, str, Any]) -> list[dict[str, Any]]:
    from ...core.allocator import keep_freed_memory
    from ...core.device import resolve_device

    keep_freed_memory()
    torch.set_num_threads(threads)
    _enter_project(project)
    _install_checkpoint(*checkpoint)
    memo = (device, project, str(cache_dir()))
    if memo not in _workspaces:
        _workspaces[memo] = Workspace(resolve_device(device), progress=False)
    return [compute_cell(cell, _workspaces[memo]) for cell in cells]


def _enter_project(project: str) -> None:
    """Work in the driver's project folder, with it importable, as `python -m shiftbench` there would."""
    if not os.path.isdir(project):
        import socket

        raise UserError(f"the project folder {project} does not exist on Ray node {socket.gethostname()}; "
                        "put it on a filesystem every node shares, at the same path")
    if os.getcwd() != project:
        os.chdir(project)
    if project not in sys.path:
        sys.path.insert(0, project)


def _install_checkpoint(key: str, sha256: str, blob_ref) -> None:
    """Make sure this worker's cache holds the checkpoint the driver planned with (fetched only if missing)."""
    from ...core.files import atomic_write_bytes
    from ...core.hashing import file_sha256

    ckpt = cache_dir() / "models" / f"{key}.pt"
    if (str(ckpt), sha256) in _checked_checkpoints:
        return
    meta = ckpt.with_suffix(".json")
    if not (ckpt.exists() and meta.exists() and file_sha256(ckpt) == sha256):
        import ray

        weights, info = ray.get(blob_ref)
        atomic_write_bytes(meta, info)
        atomic_write_bytes(ckpt, weights)
    _checked_checkpoints.add((str(ckpt), sha256))
