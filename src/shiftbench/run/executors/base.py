"""The executor interface."""

from __future__ import annotations

from typing import Any, Iterator, Protocol

from ..cell import Cell


class Executor(Protocol):
    def run(self, cells: list[Cell], device: str) -> Iterator[dict[str, Any]]:
        """Compute each cell and yield its record (in any order) as soon as it is done."""
        ...
