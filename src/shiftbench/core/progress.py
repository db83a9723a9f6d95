"""Progress bars for long work, one place for how they look and when they show.

On a terminal: a tqdm bar. When stderr is not a terminal (a log file, a pipe, CI): no
carriage-return frames, only plain lines, one at every tenth of the work (every step when
there are at most ten) and one when the work ends. `enabled=False` (--quiet) shows nothing.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Iterable, Iterator, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def is_terminal(stream: IO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class LineProgress:
    """tqdm's update/close/context-manager interface, written as whole lines (for logs)."""

    def __init__(self, total: int | None, desc: str, unit: str = "it", initial: int = 0, stream: IO | None = None,
                 unit_scale: bool = False, **_ignored):
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream if stream is not None else sys.stderr
        self.unit_scale = unit_scale
        self.start = time.monotonic()
        self._shown = 0  # the last tenth of the work (or step, for ten steps or fewer) a line was written for
        self.closed = False

    def _count(self, n: float) -> str:
        if self.unit_scale and n >= 1024:
            for prefix in ("K", "M", "G", "T"):
                n /= 1024
                if n < 1024:
                    break
            return f"{n:.1f} {prefix}"
        return f"{int(n)}"

    def _write(self, text: str) -> None:
        try:
            print(text, file=self.stream, flush=True)
        except (OSError, ValueError):  # the log went away: progress is not worth failing for
            pass

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return
        step = min(10, int(10 * self.n / self.total)) if self.total > 10 else int(self.n)
        if step > self._shown and self.n < self.total:
            self._shown = step
            self._write(f"{self.desc}: {self._count(self.n)}/{self._count(self.total)} {self.unit} "
                        f"({100 * self.n / self.total:.0f}%, {time.monotonic() - self.start:.1f} s)")

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        of = f"/{self._count(self.total)}" if self.total else ""
        self._write(f"{self.desc}: {self._count(self.n)}{of} {self.unit} done in {time.monotonic() - self.start:.1f} s")

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, enabled: bool = True, unit: str = "it", leave: bool = False,
                 **tqdm_options):
    """A bar for `total` steps: tqdm on a terminal, whole lines on a log, nothing when not enabled."""
    if enabled and not is_terminal(sys.stderr):
        return LineProgress(total, desc, unit=unit, **tqdm_options)
    return tqdm(total=total, desc=desc, disable=not enabled, leave=leave, unit=unit, **tqdm_options)


def progress_iter(items: Iterable[T], desc: str, enabled: bool = True, unit: str = "it",
                  total: int | None = None) -> Iterator[T]:
    """Iterate over items with a progress bar (see progress_bar)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    bar = progress_bar(total, desc, enabled, unit=unit)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()
