"""Executors by name (`--executor NAME`): each runs pending cells and yields their records as they finish."""

from __future__ import annotations

from typing import Any

from ...core.registry import Registry

EXECUTORS: Registry[type] = Registry("executor", "shiftbench.run.executors", "shiftbench.executors")


def register_executor(name: str):
    """Class decorator: an executor class with run(cells, device) -> iterator of records."""
    return EXECUTORS.decorator(name)


def make_executor(name: str, **options: Any):
    return EXECUTORS.get(name, field="--executor")(**options)
