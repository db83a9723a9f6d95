"""What a worker process may use, and how it is held to that: CPU threads, a memory cap, its parent's life.

Memory cap: RLIMIT_DATA (Linux counts the heap and every private writable mapping in it,
which is where tensors live), so an allocation past the cap fails inside the cell ("can't
allocate memory") and fails that cell alone, instead of the kernel's OOM killer picking a
process. Where the OS has no such limit (macOS does not enforce it for mmap, Windows has
none) the cap is not applied. On CUDA the host cap is not set: the CUDA driver maps host
address space of its own that a cap sized for tensors would break; each worker's CUDA
caching allocator is held to its share of the GPU instead
(torch.cuda.set_per_process_memory_fraction), so a cell that wants more fails with CUDA out
of memory.
"""

from __future__ import annotations

import os
import signal
import sys

DEFAULT_CELL_TIMEOUT_S = 3600.0
MIN_MEMORY_CAP = 1 << 30  # below this a torch process cannot even start


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def default_memory_cap(workers: int) -> int | None:
    """An equal share of the machine's memory per worker, so that together they cannot exhaust it."""
    total = physical_memory()
    return None if total is None else max(MIN_MEMORY_CAP, total // max(1, workers))


def cap_memory(max_bytes: int | None) -> bool:
    """Limit this process's data segment to max_bytes; True where the limit took effect."""
    if max_bytes is None or not sys.platform.startswith("linux"):
        return False
    import resource

    try:
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            max_bytes = min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (max_bytes, hard))
    except (ValueError, OSError):
        return False
    return True


def die_with_parent() -> None:
    """Have the kernel kill this process when the process that started it dies (Linux), so a worker
    never outlives a run that was killed, even in the middle of a hanging cell."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


def describe_death(exitcode: int | None) -> str:
    """'exited with code 3' / 'was killed by signal 11 (SIGSEGV)' for a worker process's exit code."""
    if exitcode is None:
        return "stopped answering"
    if exitcode >= 0:
        return f"exited with code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    hint = {"SIGKILL": "; out of memory?", "SIGSEGV": "; a crash in native code"}.get(name, "")
    return f"was killed by signal {-exitcode} ({name}{hint})"
