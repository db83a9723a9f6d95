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


class Misbehave(Method):
    """The source model, except on a batch of exactly `batch` images (on the fast grid, one scenario's
    last batch: see scaleout_support), where it misbehaves as `mode` says: hang (sleeps an hour), exit
    (os._exit(3)), segfault, system_exit (raise SystemExit(0)), interrupt (raise KeyboardInterrupt),
    memory (allocates `gigabytes` GiB)."""

    def __init__(self, mode: Literal["hang", "exit", "segfault", "system_exit", "interrupt", "memory"] = "hang",
                 batch: int = 2, gigabytes: float = 64.0):
        self.mode, self.batch, self.gigabytes = mode, batch, gigabytes

    @torch.no_grad()
    def predict(self, x):
        if len(x) == self.batch:
            self.misbehave()
        return self.model(x)

    def misbehave(self):
        if self.mode == "hang":
            time.sleep(3600)
        elif self.mode == "exit":
            os._exit(3)
        elif self.mode == "segfault":
            import ctypes

            ctypes.string_at(0)
        elif self.mode == "system_exit":
            raise SystemExit(0)
        elif self.mode == "interrupt":
            raise KeyboardInterrupt
        elif self.mode == "memory":
            torch.ones(int(self.gigabytes * 2**30), dtype=torch.uint8)


class WrongLogits(Method):
    """Logits that broadcast but are not (batch, classes) floats: 20 columns, or an int64 one-hot."""

    def __init__(self, kind: Literal["wide", "onehot", "row"] = "wide"):
        self.kind = kind

    @torch.no_grad()
    def predict(self, x):
        logits = self.model(x)
        if self.kind == "wide":
            return torch.cat([logits, logits], dim=1)
        if self.kind == "onehot":
            return torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1])
        return logits[:1]
