"""Writing files atomically (readers see the old file or the new one, never a half-written one),
checking before a run that its folders can be written, and moving bad cache files aside."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import UserError


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a unique temporary file in the same folder, fsync, then rename over the target.

    A failure (full disk, read-only folder, a file where a folder should be) is a one-line
    UserError naming the file; the target keeps its old content and no temporary file stays.
    """
    try:
        _write(Path(path), data)
    except OSError as e:
        raise UserError(f"cannot write ({e.strerror or e})", source=str(path)) from None


def _write(path: Path, data: bytes) -> None:
    with atomic_file(path) as f:
        f.write(data)


@contextmanager
def atomic_file(path: Path, buffering: int = -1, shared: bool = True) -> Iterator[BinaryIO]:
    """A binary file written under a temporary name beside `path` and renamed onto it once complete
    (flushed to disk), so that `path` is the old file or the whole new one; an error removes the
    temporary file. shared: readable by others (mkstemp makes 0600), as results are meant to be."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if shared:
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb", buffering=buffering) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable_folder(path: Path, *, field: str | None = None) -> None:
    """A one-line UserError now, before any work, if files cannot be created in folder `path`
    (or in the folders it would be made in): a file in the way, a read-only place, no permission."""
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise UserError(f"{existing} is a broken symbolic link", source=str(path), field=field)
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{existing} is a file, not a folder", source=str(path), field=field)
    try:  # os.access says yes to root on a read-only file system; only a write tells
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".shiftbench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write in {existing} ({e.strerror})", source=str(path), field=field) from None


def move_aside(path: Path, suffix: str = ".corrupt") -> Path:
    """path -> path + suffix (replacing an earlier one there: the newest bad copy is the one to look at)."""
    aside = path.with_name(path.name + suffix)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    os.replace(path, aside)
    return aside
