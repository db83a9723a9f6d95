"""Run cells one after another in this process: no isolation, no time limit (for debugging a method
under pdb, and for library use that wants no processes)."""

from __future__ import annotations

from typing import Any, Iterator

from ...core.progress import progress_bar
from ..cell import Cell
from ..compute import compute_cell
from ..workspace import Workspace
from .records import guarded, with_limits
from .registry import register_executor


@register_executor("inline")
class InlineExecutor:
    def __init__(self, progress: bool = True, workspace: Workspace | None = None, **_ignored: Any):
        self.progress = progress
        self.workspace = workspace

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        from ...core.device import resolve_device

        ws = self.workspace or Workspace(resolve_device(device), self.progress)
        with progress_bar(len(cells), "cells", self.progress, unit="cell", leave=True) as bar:
            for cell in cells:
                record = guarded(lambda c: compute_cell(c, ws), cell, passthrough=(KeyboardInterrupt,))
                bar.update(1)
                yield with_limits(record, None, None)
