"""Hand cells one at a time to long-lived workers, each cell with a time limit; shared by the process
pool (`local`) and Ray.

A worker takes the cells of one scenario in a row (so the datasets, scenario data and source
logits it memoises serve them all), then a fresh scenario, and at the end the later half of
the busiest worker's remaining cells. A worker is replaced only when it dies or its cell runs
past the time limit; then only that cell fails:
  died      the cell goes back to the queue up to `retries` times (a worker may die for reasons
            of its own: the OOM killer, a lost node), then it is recorded as failed;
  timed out the worker is stopped and the cell recorded as failed at once (a retry would
            only hang again).
Backends report events (slot, kind, payload): kind 'ready' (a worker started), 'record' (the
cell it ran, as JSON or a dict) or 'died' (payload: why, one phrase).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any, Iterator, Protocol

from ...core.errors import UserError
from ...core.progress import progress_bar
from ..cell import Cell
from .records import failed_record, returned_record, with_limits

MAX_START_FAILURES = 3  # workers that die before taking a cell, in a row: the pool cannot start
START_TIMEOUT_S = 600.0  # a worker not ready by then (stuck importing, a Ray node that never comes) is replaced


class Backend(Protocol):
    def start(self, slot: int) -> None: ...
    def submit(self, slot: int, cell: Cell) -> None: ...
    def wait(self, timeout: float | None) -> list[tuple[int, str, Any]]: ...
    def stop(self, slot: int) -> None: ...
    def close(self) -> None: ...


def scenario_groups(cells: list[Cell]) -> list[list[Cell]]:
    """Cells sharing (benchmark, seed, scenario, source checkpoint), in first-seen order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.benchmark, cell.seed, cell.scenario, cell.checkpoint_sha256), []).append(cell)
    return list(groups.values())


class Queue:
    """Which cell each worker takes next: its own scenario's, then a fresh scenario, then a share of the
    busiest worker's; cells to retry before all of them."""

    def __init__(self, cells: list[Cell]):
        self.fresh = deque(deque(g) for g in scenario_groups(cells))
        self.own: dict[int, deque[Cell]] = {}
        self.again: deque[Cell] = deque()

    def __len__(self) -> int:
        return len(self.again) + sum(map(len, self.fresh)) + sum(map(len, self.own.values()))

    def retry(self, cell: Cell) -> None:
        self.again.append(cell)

    def next_for(self, slot: int) -> Cell | None:
        if self.again:
            return self.again.popleft()
        if self.own.get(slot):
            return self.own[slot].popleft()
        if self.fresh:
            self.own[slot] = self.fresh.popleft()
            return self.own[slot].popleft()
        victim = max(self.own, key=lambda s: len(self.own[s]), default=None)
        if victim is None or not self.own[victim]:
            return None
        theirs = self.own[victim]
        share = deque(theirs.pop() for _ in range(max(1, len(theirs) // 2)))
        share.reverse()
        self.own[slot] = share
        return share.popleft()


def dispatch(cells: list[Cell], backend: Backend, workers: int, *, timeout_s: float | None, retries: int,
             memory_bytes: int | None, progress: bool = True) -> Iterator[dict[str, Any]]:
    """Each cell's record (with the limits it ran under) as it finishes; the backend is closed at the end."""
    queue = Queue(cells)
    idle: set[int] = set()
    running: dict[int, tuple[Cell, float]] = {}  # slot -> (cell, deadline)
    started: dict[int, float] = {}
    starting: dict[int, float] = {}  # slot -> when its worker was started, until it is ready
    tries: Counter[str] = Counter()
    start_failures = 0
    left = len(cells)

    def finish(record: dict[str, Any]) -> dict[str, Any]:
        bar.update(1)
        return with_limits(record, timeout_s, memory_bytes)

    def start(slot: int) -> None:
        starting[slot] = time.monotonic()
        backend.start(slot)

    with progress_bar(len(cells), "cells", progress, unit="cell", leave=True) as bar:
        try:
            for slot in range(min(workers, len(cells))):
                start(slot)
            while left:
                for slot in sorted(idle):
                    cell = queue.next_for(slot)
                    if cell is None:
                        break
                    idle.discard(slot)
                    started[slot] = time.monotonic()
                    running[slot] = (cell, started[slot] + timeout_s if timeout_s else float("inf"))
                    backend.submit(slot, cell)
                deadline = min([d for _, d in running.values()] + [t + START_TIMEOUT_S for t in starting.values()],
                               default=float("inf"))
                wait = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
                for slot, kind, payload in backend.wait(wait):
                    if kind == "ready":
                        starting.pop(slot, None)
                        idle.add(slot)
                        start_failures = 0
                    elif kind == "record" and slot in running:
                        cell, _ = running.pop(slot)
                        idle.add(slot)
                        left -= 1
                        yield finish(returned_record(payload, cell))
                    elif kind == "died":
                        never_ready = starting.pop(slot, None) is not None
                        idle.discard(slot)
                        if slot in running:
                            cell, _ = running.pop(slot)
                            tries[cell.key] += 1
                            if tries[cell.key] <= retries:
                                queue.retry(cell)
                            else:
                                left -= 1
                                yield finish(failed_record(cell, f"WorkerDied: the worker process running this cell "
                                                                 f"{payload} (tries: {tries[cell.key]})",
                                                           time.monotonic() - started[slot]))
                        elif never_ready:
                            start_failures += 1
                            if start_failures >= MAX_START_FAILURES:
                                raise UserError(f"worker processes die before taking a cell: the last {payload}")
                        if len(queue):
                            start(slot)
                now = time.monotonic()
                for slot, since in list(starting.items()):
                    if now >= since + START_TIMEOUT_S:
                        backend.stop(slot)
                        del starting[slot]
                        start_failures += 1
                        if start_failures >= MAX_START_FAILURES:
                            raise UserError(f"worker processes are not ready {START_TIMEOUT_S:g} s after starting")
                        start(slot)
                for slot, (cell, deadline) in list(running.items()):
                    if now >= deadline:
                        backend.stop(slot)
                        del running[slot]
                        left -= 1
                        yield finish(failed_record(cell, f"CellTimeout: the cell was still running after {timeout_s:g} s "
                                                         "(--cell-timeout); its worker was stopped",
                                                   now - started[slot]))
                        if len(queue):
                            start(slot)
        finally:
            backend.close()
