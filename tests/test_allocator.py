"""keep_freed_memory stops the page faults of reallocating the same few MB over and over."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from shiftbench.core.allocator import keep_freed_memory
    assert keep_freed_memory()
for _ in range(3):
    np.ones(1 << 19)  # 4 MB, warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    a = np.ones(1 << 19)
    b = np.ones(1 << 19)
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc knob")
def test_reallocated_blocks_stop_faulting_in_pages():
    # 100 fresh 4 MB blocks are 100 x 1024 pages; glibc returns about half of them to the OS
    # between allocations by default, kept memory is reused without faults
    assert page_faults("default") > 20_000
    assert page_faults("keep") < 2_000
