"""The life of one worker process of the `local` executor: set limits, then compute the cells it is sent.

It is started with the spawn method (a fresh interpreter: forking a process whose OpenMP
threads have run can hang the child), in its own process group (so Ctrl-C reaches only the
driver, which stops the workers) and dies with the driver. It writes nothing: records go back
over the pipe and the driver stores them, so a worker killed at any moment leaves no
half-written file.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSettings:
    device: str  # "cpu" or "cuda"
    threads: int
    memory_bytes: int | None
    parent_pid: int
    gpu_index: int | None = None
    gpu_fraction: float | None = None


def worker_main(conn, settings: WorkerSettings) -> None:
    from . import limits

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.setpgid(0, 0)
    except (AttributeError, OSError):
        pass
    limits.die_with_parent()
    if os.getppid() != settings.parent_pid:  # the driver died before the line above took effect
        return
    if settings.device == "cpu":
        limits.cap_memory(settings.memory_bytes)

    import torch

    from ...core.allocator import keep_freed_memory
    from ...core.device import resolve_device
    from ..compute import compute_cell
    from ..workspace import Workspace
    from .records import guarded

    keep_freed_memory()
    torch.set_num_threads(settings.threads)
    if settings.device == "cuda":
        if settings.gpu_index is not None:
            torch.cuda.set_device(settings.gpu_index)
        if settings.gpu_fraction is not None:
            torch.cuda.set_per_process_memory_fraction(settings.gpu_fraction)
    workspace = Workspace(resolve_device(settings.device), progress=False)
    conn.send(("ready", None))
    while True:
        try:
            cell = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if cell is None:
            return
        record = guarded(lambda c: compute_cell(c, workspace), cell)
        try:
            conn.send(("record", json.dumps(record)))
        except (BrokenPipeError, OSError):
            return
