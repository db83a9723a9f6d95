"""Image tensors too large for RAM, kept in a temporary file instead.

A run derives new image sets from the stored one: the rows a scenario plays (a subset, a
shuffle), every corrupted segment, a mixed stream. For an ImageNet-scale split each is gigabytes,
and the run holds several at once. Any such tensor above SPILL_FROM_BYTES is allocated here in a
memory-mapped file under $SHIFTBENCH_CACHE/spill and filled chunk by chunk, so the process holds
only the pages it touches (the kernel writes them out and drops them under pressure) and the
bytes are the same as in RAM. The file is unlinked as soon as it is mapped: it disappears with
the last tensor that uses it, also when the process is killed.

SHIFTBENCH_SPILL_MIB sets the threshold (0: spill everything, as tests do).
"""

from __future__ import annotations

import os
import tempfile
import weakref

import numpy as np
import torch

from .paths import cache_dir

SPILL_FROM_BYTES = 256 * 2**20
COPY_CHUNK_BYTES = 64 * 2**20  # rows are copied into a spilled tensor this many bytes at a time


def spill_from_bytes() -> int:
    if (env := os.environ.get("SHIFTBENCH_SPILL_MIB")) is not None:
        return int(float(env) * 2**20)
    return SPILL_FROM_BYTES


def empty_images(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised uint8 tensor: in RAM when small, in a spill file when its size passes the threshold."""
    shape = tuple(int(s) for s in shape)
    nbytes = int(np.prod(shape, dtype=np.int64))
    if nbytes <= spill_from_bytes() or nbytes == 0:
        return torch.empty(shape, dtype=torch.uint8)
    folder = cache_dir() / "spill"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="images-", suffix=".u8", dir=folder)
    os.close(fd)
    array = np.memmap(name, dtype=np.uint8, mode="w+", shape=shape)
    try:
        os.unlink(name)  # the mapping keeps the file alive (POSIX)
    except OSError:  # a platform that cannot unlink a mapped file: remove it with the array
        weakref.finalize(array, _remove, name)
    return torch.from_numpy(array)


def _remove(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def take_rows(images: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """images[index] (rows may repeat), gathered chunk by chunk into a spill file when large."""
    index = torch.as_tensor(index, dtype=torch.int64)
    out = empty_images((len(index), *images.shape[1:]))
    per = _rows_per_chunk(images)
    for start in range(0, len(index), per):
        torch.index_select(images, 0, index[start:start + per], out=out[start:start + per])
    return out


def copy_images(view: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of a (possibly strided) image tensor, chunk by chunk into a spill file when large."""
    out = empty_images(tuple(view.shape))
    per = _rows_per_chunk(view)
    for start in range(0, len(view), per):
        out[start:start + per].copy_(view[start:start + per])
    return out


def _rows_per_chunk(images: torch.Tensor) -> int:
    row = max(1, images[0].numel()) if len(images) else 1
    return max(1, COPY_CHUNK_BYTES // row)


def staged(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The images moved to `device` whole when they are small (one copy beats a copy per batch),
    else left where they are: the caller moves each batch (`batch.to(device)`, a no-op when it is
    there already), so a large set never sits whole in GPU memory."""
    if device.type == "cpu" or images.nbytes <= spill_from_bytes():
        return images.to(device, non_blocking=True)
    return images
