"""Keep freed memory in the process instead of handing it back to the OS after every step.

glibc's malloc returns freed blocks of a few MB to the OS (munmap, heap trimming), so the next
step of the same size takes them back one page fault per 4 KB. Image corruptions and the
evaluator allocate such blocks over and over; on a 224-px batch the page faults cost more
than the arithmetic (brightness and contrast run 3-4x faster without them, see
scripts/bench_corruptions.py --system-malloc). The command line applies this to its own process
and to Ray workers; code importing shiftbench as a library decides for itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (32 MB, 1 GB). True where that took effect; a no-op
    elsewhere (macOS, Windows, musl). The process keeps its peak heap until it exits."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # allocations up to 32 MB (the largest glibc allows) come from the heap ...
    mapped = mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    # ... and up to 1 GB of free heap stays with the process
    trimmed = mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    return bool(mapped and trimmed)
