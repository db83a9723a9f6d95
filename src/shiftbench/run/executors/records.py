"""Records that executors make themselves: a cell that produced none, a cell run under limits,
and the check that what a worker sent back is this cell's record."""

from __future__ import annotations

import json
import time
from typing import Any

from ...core.params import short_repr
from ..cell import Cell
from ..provenance import software


def failed_record(cell: Cell, error: str, seconds: float = 0.0) -> dict[str, Any]:
    """The record of a cell that produced no result, in the shape compute_cell gives failures."""
    provenance = {**software(), "config_hash": cell.key}
    return {"key": cell.key, "cell": cell.as_dict(), "status": "failed", "error": error, "provenance": provenance,
            "seconds": round(seconds, 4)}


def guarded(compute, cell: Cell, passthrough: tuple[type[BaseException], ...] = ()) -> dict[str, Any]:
    """compute(cell) as a JSON-ready record, whatever the method does.

    compute_cell already turns a method's exceptions into a failed record; this also catches
    what it lets through (SystemExit, KeyboardInterrupt raised by a method, GeneratorExit) and
    a record that JSON cannot hold (a describe() returning tensors). `passthrough`: exceptions
    that are not the method's to catch (Ctrl-C in the driver's own process).
    """
    start = time.perf_counter()
    try:
        record = compute(cell)
    except passthrough:
        raise
    except SystemExit as e:
        return failed_record(cell, f"SystemExit: the method tried to end the process (exit code {short_repr(e.code)})",
                             time.perf_counter() - start)
    except BaseException as e:  # noqa: BLE001 - in a worker, Ctrl-C never reaches here (SIGINT is ignored)
        return failed_record(cell, f"{type(e).__name__}: {str(e)[:300] or '(no message)'}", time.perf_counter() - start)
    try:
        json.dumps(record, allow_nan=True)
    except (TypeError, ValueError) as e:
        return failed_record(cell, f"UnstorableRecord: the record cannot be written as JSON ({e}); "
                                   "describe() must return plain numbers, strings, lists and dicts")
    return record


def returned_record(payload: Any, cell: Cell) -> dict[str, Any]:
    """What a worker sent back, if it is this cell's record; else a failed record saying what came instead."""
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return failed_record(cell, "BadRecord: the worker sent back something that is not JSON")
    if not isinstance(payload, dict) or payload.get("key") != cell.key or payload.get("status") not in ("ok", "failed"):
        return failed_record(cell, f"BadRecord: the worker sent back something that is not this cell's record "
                                   f"({short_repr(payload)})")
    return payload


HOST_MEMORY_ERRORS = ("MemoryError:", "can't allocate memory", "Cannot allocate memory")


def with_limits(record: dict[str, Any], timeout_s: float | None, memory_bytes: int | None) -> dict[str, Any]:
    """The record with the limits the cell ran under (None: no limit); a failure to allocate says what the cap was."""
    record["limits"] = {"cell_timeout_s": timeout_s, "memory_cap_bytes": memory_bytes}
    error = record.get("error")
    if memory_bytes and isinstance(error, str) and any(error.startswith(m) if m.endswith(":") else m in error
                                                       for m in HOST_MEMORY_ERRORS):
        record["error"] = (f"{error} [the worker's memory cap is {memory_bytes / 2**30:.1f} GiB; "
                           "raise it with --cell-memory or run fewer --workers]")
    return record
