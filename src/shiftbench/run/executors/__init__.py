"""Executors run pending cells and yield their records as they finish: `local` (in process) or `ray`."""

from __future__ import annotations

from .base import Executor
from .local import LocalExecutor
from .registry import EXECUTORS, make_executor, register_executor

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "make_executor", "register_executor"]
