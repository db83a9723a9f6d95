"""Methods that misbehave on purpose, for the fault-tolerance tests.

Submissions name them by import path (`fault_methods:CrashOnce`); the tests copy
this file into the throwaway project folder, where `python -m shiftbench` and
Ray workers (which enter the project folder) import it. Marker files live in
the project folder (the current directory while a cell runs), so they switch
behaviour without changing the cell's key.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Literal

import torch

from shiftbench.methods import Method

FAIL_MARKER = "FAIL"


class CrashOnce(Method):
    """Kills its own process (as a crashed or OOM-killed worker dies) the first time any cell runs it; then the source."""

    def __init__(self):
        pass

    def setup(self, model, source):
        super().setup(model, source)
        try:
            os.close(os.open("crashed-once", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(17)


class FailWhileMarked(Method):
    """The source model, except that it fails in the given way while the file FAIL exists in the project folder."""

    def __init__(self, mode: Literal["error", "nan", "oom", "memory"] = "error"):
        self.mode = mode

    @torch.no_grad()
    def predict(self, x):
        logits = self.model(x)
        if not Path(FAIL_MARKER).exists():
            return logits
        if self.mode == "error":
            raise ValueError("deliberate failure")
        if self.mode == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        if self.mode == "memory":
            raise MemoryError("simulated host out-of-memory")
        return logits * float("nan")


class Sleepy(Method):
    """The source model after a pause, so that a run lasts long enough to be killed part-way."""

    def __init__(self, seconds: float = 0.2):
        self.seconds = seconds

    def setup(self, model, source):
        super().setup(model, source)
        time.sleep(self.seconds)
