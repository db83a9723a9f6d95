"""Executors run pending cells and yield their records as they finish: `local` (in process) or `ray`."""

from __future__ import annotations

from .base import Executor
from .local import LocalExecutor

EXECUTORS = ("local", "ray")


def make_executor(name: str, **options) -> Executor:
    if name == "local":
        return LocalExecutor(**options)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(**options)
    from ...core.errors import UserError

    raise UserError(f"unknown executor '{name}'; allowed: {', '.join(EXECUTORS)}", field="--executor")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "make_executor"]
