"""The default executor: a pool of worker processes on this machine, one cell at a time each, each cell
under a time limit and each worker under a memory cap (see dispatch.py and limits.py).

A cell whose method hangs, exits, segfaults or raises anything fails alone; the other cells
and submissions go on. Workers: one per CPU by default, torch threads = CPUs / workers. With
CUDA, one worker per visible GPU by default, each pinned to its GPU and held to its share of
that GPU's memory.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import wait as wait_for
from typing import Any, Iterator

from ...core.errors import UserError
from ..cell import Cell
from . import limits
from .dispatch import dispatch
from .registry import register_executor
from .worker import WorkerSettings, worker_main


@register_executor("local")
class LocalExecutor:
    def __init__(self, workers: int | None = None, cell_timeout: float | None = limits.DEFAULT_CELL_TIMEOUT_S,
                 memory_gb: float | None = None, retries: int = 1, progress: bool = True, **_ignored: Any):
        if workers is not None and workers < 1:
            raise UserError(f"must be at least 1, got {workers}", field="--workers")
        if cell_timeout is not None and cell_timeout < 0:
            raise UserError(f"must be >= 0 seconds (0: no limit), got {cell_timeout:g}", field="--cell-timeout")
        if memory_gb is not None and memory_gb < 0:
            raise UserError(f"must be >= 0 GiB (0: no cap), got {memory_gb:g}", field="--cell-memory")
        self.workers = workers
        self.timeout_s = cell_timeout or None
        self.memory_gb = memory_gb
        self.retries = retries
        self.progress = progress

    def plan(self, device: str) -> tuple[str, int, int | None]:
        """(worker device, number of workers, memory cap in bytes or None) for a run on `device`."""
        import torch

        from ...core.device import resolve_device

        kind = resolve_device(device).type
        gpus = torch.cuda.device_count() if kind == "cuda" else 0
        workers = self.workers or (gpus or limits.cpu_count())
        if self.memory_gb == 0 or kind == "cuda":
            memory = None
        elif self.memory_gb is not None:
            memory = max(limits.MIN_MEMORY_CAP, int(self.memory_gb * (1 << 30)))
        else:
            memory = limits.default_memory_cap(workers)
        return kind, workers, memory

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        if not cells:
            return
        import torch

        kind, workers, memory = self.plan(device)
        workers = min(workers, len(cells))
        threads = max(1, torch.get_num_threads() // workers)
        gpus = torch.cuda.device_count() if kind == "cuda" else 0
        backend = ProcessPool(kind, threads, memory, gpus, workers)
        yield from dispatch(cells, backend, workers, timeout_s=self.timeout_s, retries=self.retries,
                            memory_bytes=memory, progress=self.progress)


class ProcessPool:
    """Worker processes by slot, started with spawn; events from their pipes and exit sentinels."""

    def __init__(self, device: str, threads: int, memory: int | None, gpus: int, workers: int):
        self.context = multiprocessing.get_context("spawn")
        self.device, self.threads, self.memory, self.gpus = device, threads, memory, gpus
        self.workers_total = workers
        self.workers: dict[int, tuple[Any, Any]] = {}  # slot -> (process, connection)
        self.gone: list[tuple[int, str, Any]] = []  # deaths seen while sending

    def start(self, slot: int) -> None:
        share = None
        if self.gpus:  # workers pinned to one GPU split its memory
            share = 1 / len(range(slot % self.gpus, self.workers_total, self.gpus))
        settings = WorkerSettings(device=self.device, threads=self.threads, memory_bytes=self.memory,
                                  parent_pid=os.getpid(), gpu_index=slot % self.gpus if self.gpus else None,
                                  gpu_fraction=share)
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=worker_main, args=(theirs, settings), name=f"shiftbench-worker-{slot}")
        process.start()
        theirs.close()
        self.workers[slot] = (process, ours)

    def submit(self, slot: int, cell: Cell) -> None:
        _, conn = self.workers[slot]
        try:
            conn.send(cell)
        except OSError:  # it died between two cells; the next wait reports it
            self.gone.append(self._bury(slot))

    def wait(self, timeout: float | None) -> list[tuple[int, str, Any]]:
        if self.gone:
            events, self.gone = self.gone, []
            return events
        by_object = {}
        for slot, (process, conn) in self.workers.items():
            by_object[conn] = slot
            by_object[process.sentinel] = slot
        events = []
        for slot in sorted({by_object[obj] for obj in wait_for(list(by_object), timeout)}):
            process, conn = self.workers[slot]
            try:
                while conn.poll():
                    kind, payload = conn.recv()
                    events.append((slot, kind, payload))
            except (EOFError, OSError, ValueError, TypeError):  # its end of the pipe closed: it is dying
                process.join(5)
                events.append(self._bury(slot))
                continue
            if not process.is_alive():
                events.append(self._bury(slot))
        return events

    def _bury(self, slot: int) -> tuple[int, str, Any]:
        process, conn = self.workers.pop(slot)
        _kill(process)
        conn.close()
        return slot, "died", limits.describe_death(process.exitcode)

    def stop(self, slot: int) -> None:
        process, conn = self.workers.pop(slot)
        _kill(process)
        conn.close()

    def close(self) -> None:
        for slot in list(self.workers):
            self.stop(slot)
        self.gone = []


def _kill(process) -> None:
    """The worker and anything it started (its process group), at once."""
    if process.pid is not None and process.is_alive():
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError, OSError):
            process.kill()
    process.join(5)
