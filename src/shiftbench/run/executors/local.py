"""Run cells one after another in this process, with a progress bar."""

from __future__ import annotations

from typing import Any, Iterator

from tqdm.auto import tqdm

from ..cell import Cell, execute_cell
from ..provenance import resolve_device
from ..workspace import Workspace


class LocalExecutor:
    def __init__(self, progress: bool = True, workspace: Workspace | None = None):
        self.progress = progress
        self.workspace = workspace

    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        ws = self.workspace or Workspace(resolve_device(device), self.progress)
        for cell in tqdm(cells, desc="cells", unit="cell", disable=not self.progress):
            yield execute_cell(cell, ws)
