"""Run cells one after another in this process, with a progress bar."""

from __future__ import annotations

from typing import Any, Iterator

from ...core.device import resolve_device
from ...core.progress import progress_iter
from ..cell import Cell
from ..compute import compute_cell
from ..workspace import Workspace
from .registry import register_executor


@register_executor("local")
class LocalExecutor:
    def __init__(self, progress: bool = True, workspace: Workspace | None = None):
        self.progress = progress
        self.workspace = workspace

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        ws = self.workspace or Workspace(resolve_device(device), self.progress)
        for cell in progress_iter(cells, "cells", self.progress, unit="cell"):
            yield compute_cell(cell, ws)
