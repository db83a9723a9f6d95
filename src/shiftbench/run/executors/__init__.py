"""Executors run pending cells and yield their records as they finish: `local` (a pool of worker
processes, the default), `inline` (in this process) or `ray`."""

from __future__ import annotations

from .base import Executor
from .inline import InlineExecutor
from .local import LocalExecutor
from .registry import EXECUTORS, make_executor, register_executor

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "LocalExecutor", "make_executor", "register_executor"]
