"""A decoded image set kept on disk: uint8 (N, C, H, W) in one .npy file under
$SHIFTBENCH_CACHE/decoded, memory-mapped when read, so a set of any size costs RAM only for
the pages a batch touches (the kernel drops clean mapped pages under memory pressure).

The file is `<set>-<stamp>.npy`: `set` hashes the file paths in order and the decoding geometry,
`stamp` every file's size and mtime, so a changed file makes a new stamp and the set is decoded
again (the file of the old stamp is removed). It is written to a temporary file, fsynced, then
renamed: a file under its final name was written whole; one whose length disagrees with its
header (a copy cut short) is decoded again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core.errors import UserError
from ..core.files import atomic_file
from ..core.hashing import config_hash
from ..core.paths import cache_dir

VERSION = 1


def cache_file(paths: list[Path], geometry: dict) -> Path:
    """Where the decoded set of these files (as they are on disk now) lives."""
    stamp = hashlib.sha256()
    for path in paths:
        st = os.stat(path)
        stamp.update(f"{st.st_size}:{st.st_mtime_ns};".encode())
    # abspath, not resolve(): resolving 50,000 paths costs seconds, a cache key needs only to be unique
    name = config_hash([VERSION, [os.path.abspath(p) for p in paths], geometry], length=32)
    return cache_dir() / "decoded" / f"{name}-{stamp.hexdigest()[:32]}.npy"


def mapped_images(paths: list[Path], geometry: dict, decode: Callable[[Path], np.ndarray], first: np.ndarray,
                  where: str) -> torch.Tensor:
    """The files decoded (`decode(path)` -> uint8 (C, H, W); `first` is paths[0] decoded) as a
    memory-mapped uint8 (N, C, H, W) tensor, decoded into the cache first unless already there.
    Writes to the tensor stay in this process (copy-on-write), never reach the file."""
    path = cache_file(paths, geometry)
    shape = (len(paths), *first.shape)
    images = _open(path, shape)
    if images is None:
        _write(path, paths, decode, first, where)
        images = _open(path, shape)
        if images is None:
            raise UserError("the decoded images just written do not read back", source=str(path))
    return images


def _open(path: Path, shape: tuple[int, ...]) -> torch.Tensor | None:
    try:
        array = np.load(path, mmap_mode="c")
    except (OSError, ValueError):  # absent, or shorter than its header says
        return None
    if array.dtype != np.uint8 or array.shape != shape:
        return None
    return torch.from_numpy(array)


def _write(path: Path, paths: list[Path], decode: Callable[[Path], np.ndarray], first: np.ndarray,
           where: str) -> None:
    """Decode image by image into a temporary file (nothing is held but one image), then rename."""
    with atomic_file(path, buffering=1 << 22, shared=False) as f:  # few large writes, not one per image
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|u1", "fortran_order": False, "shape": (len(paths), *first.shape)})
        f.write(np.ascontiguousarray(first).data)
        for p in paths[1:]:
            array = decode(p)
            if array.shape != first.shape:
                raise UserError(f"images differ in size ({first.shape} in {paths[0].name}, {array.shape} here); "
                                f"set params.size to resize them all", source=str(p))
            f.write(np.ascontiguousarray(array).data)
    set_name = path.stem.split("-")[0]
    for old in path.parent.glob(f"{set_name}-*.npy"):
        if old != path:
            old.unlink(missing_ok=True)
