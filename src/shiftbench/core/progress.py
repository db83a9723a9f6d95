"""Progress bars for long work, one place for how they look and when they show."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(total: int | None, desc: str, enabled: bool = True, unit: str = "it", leave: bool = False):
    return tqdm(total=total, desc=desc, disable=not enabled, leave=leave, unit=unit)
