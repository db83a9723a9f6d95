"""Run cells on Ray actors: on a local Ray started here, or on an existing cluster (`--address`).

The same scheduling as the local pool (dispatch.py): long-lived workers, here Ray actors, each
given one cell at a time, the cells of one scenario in a row, each cell under the time limit.
An actor that dies (killed, out of memory, a lost node) fails only the cell it was running:
that cell is retried on a fresh actor up to `max_retries` times, then recorded as failed; a
cell past its time limit has its actor killed and is recorded as failed. What workers need
and how they get it:

- Source models: the driver has trained every model before any cell runs. Each
  checkpoint goes into Ray's object store once, named by its sha256; an actor
  whose $SHIFTBENCH_CACHE lacks that checkpoint writes it there before loading,
  so no worker ever trains, and the cache need not be shared between nodes.
- The project folder (benchmarks/, data_manifests/, plugin modules named by
  import path): actors enter the driver's project folder, so on a cluster it
  must exist at the same path on every node (shared filesystem or same checkout).
- Environment: SHIFTBENCH_CACHE and PYTHONPATH are passed on to the workers.

An actor keeps one Workspace for its whole life, so the datasets, scenario data and models it
builds serve every cell it runs. A memory cap (RLIMIT_DATA) is set in each actor only when
`--cell-memory` is given: on a cluster the nodes' memory is Ray's to manage.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

from ...core.errors import UserError
from ...core.paths import cache_dir, project_root
from ..cell import Cell
from . import limits
from .dispatch import dispatch, scenario_groups
from .registry import register_executor

ray = None  # imported when a RayExecutor is made: importing Ray takes seconds

__all__ = ["RayExecutor", "scenario_groups"]


@register_executor("ray")
class RayExecutor:
    def __init__(self, address: str | None = None, num_cpus: int | None = None, gpus_per_cell: float = 0.0,
                 cpus_per_cell: float = 1.0, max_retries: int = 3, env_vars: dict[str, str] | None = None,
                 progress: bool = True, cell_timeout: float | None = limits.DEFAULT_CELL_TIMEOUT_S,
                 memory_gb: float | None = None, workers: int | None = None, **_ignored: Any):
        global ray
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'shiftbench[ray]'", field="--executor") from None
        num_cpus = num_cpus if num_cpus is not None else workers
        if address is not None and num_cpus is not None:
            raise UserError("sizes a local Ray only; with --address the cluster's own CPUs are used",
                            field="--workers")
        if num_cpus is not None and num_cpus < 1:
            raise UserError(f"must be at least 1, got {num_cpus}", field="--workers")
        if gpus_per_cell < 0:
            raise UserError(f"must be >= 0, got {gpus_per_cell}", field="--gpus-per-cell")
        if cell_timeout is not None and cell_timeout < 0:
            raise UserError(f"must be >= 0 seconds (0: no limit), got {cell_timeout:g}", field="--cell-timeout")
        self.address = address
        self.num_cpus = num_cpus
        self.gpus_per_cell = gpus_per_cell
        self.cpus_per_cell = cpus_per_cell
        self.max_retries = max_retries
        self.env_vars = env_vars or {}
        self.progress = progress
        self.timeout_s = cell_timeout or None
        self.memory = int(memory_gb * (1 << 30)) if memory_gb else None

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        worker_device = self._worker_device(device)
        runtime_env = {"env_vars": self._worker_env()}
        owned = not ray.is_initialized()
        if owned:  # the job's own environment lets the workers Ray starts up front take cells
            import logging

            try:
                ray.init(address=self.address, num_cpus=self.num_cpus, include_dashboard=False,
                         logging_level=logging.WARNING, runtime_env=runtime_env)
            except ConnectionError as e:
                raise UserError(f"cannot reach a Ray cluster at '{self.address}': {e}", field="--address") from None
        try:
            self._check_gpus()
            actors = ActorPool(self, worker_device, None if owned else runtime_env, self._share_checkpoints(cells))
            yield from dispatch(cells, actors, self._actor_count(), timeout_s=self.timeout_s, retries=self.max_retries,
                                memory_bytes=self.memory, progress=self.progress)
        finally:
            if owned:
                ray.shutdown()

    def _actor_count(self) -> int:
        """As many actors as the cluster can hold at once (one cell each)."""
        resources = ray.cluster_resources()
        count = int(resources.get("CPU", 1) // self.cpus_per_cell) if self.cpus_per_cell else 1
        if self.gpus_per_cell:
            count = min(count, int(resources.get("GPU", 0) // self.gpus_per_cell))
        return max(1, count)

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
        import torch

        from ..workspace import Workspace

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


class ActorPool:
    """Ray actors by slot; events from their pending calls (an actor's death is its call's error)."""

    def __init__(self, executor: RayExecutor, device: str, runtime_env: dict | None,
                 checkpoints: dict[str, tuple[str, str, Any]]):
        options: dict[str, Any] = dict(num_cpus=executor.cpus_per_cell, num_gpus=executor.gpus_per_cell,
                                       max_restarts=0, max_concurrency=1)
        if runtime_env is not None:
            options["runtime_env"] = runtime_env
        self.actor_class = ray.remote(CellActor).options(**options)
        self.args = (str(project_root()), device, max(1, int(executor.cpus_per_cell)), executor.memory)
        self.checkpoints = checkpoints
        self.actors: dict[int, Any] = {}
        self.calls: dict[Any, tuple[int, str]] = {}  # object ref -> (slot, 'ready' | 'record')

    def start(self, slot: int) -> None:
        actor = self.actor_class.remote(*self.args)
        self.actors[slot] = actor
        self.calls[actor.ready.remote()] = (slot, "ready")

    def submit(self, slot: int, cell: Cell) -> None:
        ref = self.actors[slot].compute.remote(cell, self.checkpoints[cell.checkpoint_sha256])
        self.calls[ref] = (slot, "record")

    def wait(self, timeout: float | None) -> list[tuple[int, str, Any]]:
        if not self.calls:
            return []
        done, _ = ray.wait(list(self.calls), num_returns=1, timeout=timeout)
        if done:  # everything else that is ready too, in one call
            done, _ = ray.wait(list(self.calls), num_returns=len(self.calls), timeout=0)
        events = []
        for ref in done:
            slot, kind = self.calls.pop(ref)
            try:
                events.append((slot, kind, ray.get(ref)))
            except ray.exceptions.RayTaskError as e:  # the actor's own code raised: set-up went wrong on the node
                if isinstance(e.cause, UserError):
                    raise UserError(str(e.cause)) from None
                self._forget(slot)
                events.append((slot, "died", f"failed to set up ({type(e.cause).__name__}: {e.cause})"))
            except ray.exceptions.RayError as e:  # the actor died (crash, OOM kill, lost node)
                self._forget(slot)
                reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
                events.append((slot, "died", f"died ({type(e).__name__}: {reason[:200]})"))
        return events

    def _forget(self, slot: int) -> None:
        actor = self.actors.pop(slot, None)
        for ref, (s, _) in list(self.calls.items()):
            if s == slot:
                del self.calls[ref]
        if actor is not None:
            ray.kill(actor, no_restart=True)

    def stop(self, slot: int) -> None:
        self._forget(slot)

    def close(self) -> None:
        for slot in list(self.actors):
            self._forget(slot)


# ---- what runs inside a Ray actor ----------------------------------------------------------------

class CellActor:
    def __init__(self, project: str, device: str, threads: int, memory: int | None):
        import torch

        from ...core.allocator import keep_freed_memory
        from ...core.device import resolve_device
        from ..workspace import Workspace

        if device == "cpu":
            limits.cap_memory(memory)
        keep_freed_memory()
        torch.set_num_threads(threads)
        _enter_project(project)
        self.workspace = Workspace(resolve_device(device), progress=False)
        self.checked: set[tuple[str, str]] = set()

    def ready(self) -> int:
        return os.getpid()

    def compute(self, cell: Cell, checkpoint: tuple[str, str, Any]) -> str:
        import json

        from ..compute import compute_cell
        from .records import guarded

        self._install_checkpoint(*checkpoint)
        return json.dumps(guarded(lambda c: compute_cell(c, self.workspace), cell))

    def _install_checkpoint(self, key: str, sha256: str, blob_ref) -> None:
        """Make sure this worker's cache holds the checkpoint the driver planned with (fetched only if missing)."""
        from ...core.files import atomic_write_bytes
        from ...core.hashing import file_sha256

        ckpt = cache_dir() / "models" / f"{key}.pt"
        if (str(ckpt), sha256) in self.checked:
            return
        meta = ckpt.with_suffix(".json")
        if not (ckpt.exists() and meta.exists() and file_sha256(ckpt) == sha256):
            import ray

            weights, info = ray.get(blob_ref)
            atomic_write_bytes(meta, info)
            atomic_write_bytes(ckpt, weights)
        self.checked.add((str(ckpt), sha256))


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
