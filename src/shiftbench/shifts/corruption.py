"""How a pixel corruption becomes a registered covariate shift.

A corruption is fn(x, param, generator) -> x' on float images in [0, 1] of shape
(N, C, H, W), batched, on whatever device x lives on. Each is registered with the two
parameter tables of the published generators (make_cifar_c.py, make_imagenet_c.py): the
CIFAR-10-C one for images of at most 64 px and the ImageNet-C one for larger images;
`table` overrides the choice.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Callable, Literal

import torch
from pydantic import Field

from ..core.imageset import ImageSet
from ..core.spill import empty_images
from .registry import generator, register_shift

Severity = Annotated[int, Field(ge=1, le=5)]
Table = Literal["auto", "cifar", "imagenet"]
SMALL_IMAGE_MAX = 64


# On the CPU a batch is corrupted in blocks of about this many values (2 MB of float32), so
# the temporaries of each step stay in cache: 2-4x faster than whole-batch passes at 224 px.
# Each block draws from its own generator, seeded from (seed, block number), so blocks can run
# on several cores at once and the output stays a pure function of (images, seed) whatever the
# thread count. CUDA tensors go in one block.
CPU_BLOCK_VALUES = 1 << 19
# Threaded corruptions use half that: 512 images of 32 px then make six blocks, which two or
# three threads share evenly (three blocks would leave one thread idle a third of the time).
THREADED_BLOCK = 1 << 18


class Corruption:
    def __init__(self, name: str, fn: Callable, cifar: tuple, imagenet: tuple, blocked: bool = True,
                 threaded: bool = False, block_values: int = CPU_BLOCK_VALUES):
        assert len(cifar) == 5 and len(imagenet) == 5, name
        self.name, self.fn, self.cifar, self.imagenet = name, fn, tuple(cifar), tuple(imagenet)
        self.blocked, self.threaded, self.block_values = blocked, threaded, block_values
        self.uint8_fn: Callable | None = None  # see on_uint8

    def param(self, severity: int, table: str, image_size: int) -> Any:
        if table == "auto":
            table = "cifar" if image_size <= SMALL_IMAGE_MAX else "imagenet"
        return (self.cifar if table == "cifar" else self.imagenet)[severity - 1]

    def blocks(self, x: torch.Tensor) -> list[slice]:
        n = x.shape[0]
        per = n if x.device.type != "cpu" or not self.blocked else max(1, self.block_values // max(1, x[0].numel()))
        return [slice(i, min(n, i + per)) for i in range(0, n, per)] or [slice(0, 0)]

    def _per_block(self, x: torch.Tensor, severity: int, seed: int, table: str, step: Callable,
                   out: torch.Tensor | None = None) -> list:
        """step(block, param, generator) for every block; with `out`, each result is written into
        its rows of `out` as it comes (nothing but one block per thread is held) and None returned."""
        p = self.param(severity, table, x.shape[-1])
        blocks = self.blocks(x)
        gens = block_generators(seed, len(blocks), x.device)

        def work(i):
            y = step(x[blocks[i]], p, gens[i])
            if out is None:
                return y
            out[blocks[i]] = y

        return map_blocks(work, len(blocks), x.device, self.threaded)

    def apply_float(self, x: torch.Tensor, severity: int, seed: int, table: str = "auto") -> torch.Tensor:
        """The corrupted float images in [0, 1]."""
        return torch.cat(self._per_block(x, severity, seed, table, self.fn)).clamp_(0, 1)

    def apply_uint8(self, images: torch.Tensor, severity: int, seed: int, table: str = "auto") -> torch.Tensor:
        """The corrupted 8-bit images, block by block (straight on 8-bit values where the
        corruption has a uint8 version)."""

        def step(block, p, g):
            if self.uint8_fn is not None:
                return self.uint8_fn(block, p, g)
            y = self.fn(block.to(torch.float32).mul_(1 / 255), p, g)
            # y is new, or a view of this block's float copy: scaling it in place is safe
            return levels_to_uint8(y.mul_(255) if y.is_contiguous() else y.mul(255))

        if images.device.type != "cpu":
            return torch.cat(self._per_block(images, severity, seed, table, step))
        out = empty_images(tuple(images.shape))  # a large set's output goes to a spill file, block by block
        self._per_block(images, severity, seed, table, step, out)
        return out


def block_generators(seed: int, count: int, device: torch.device) -> list[torch.Generator]:
    """One generator per block, seeded by a stream drawn from `seed`."""
    seeds = torch.randint(0, 2**62, (count,), generator=generator(seed)).tolist()
    return [generator(s, device) for s in seeds]


def map_blocks(work: Callable[[int], Any], count: int, device: torch.device, threads: bool) -> list:
    """[work(0), ..., work(count - 1)]; with `threads`, on the CPU one block per thread (as many
    as torch's), each running its ops single-threaded."""
    n = torch.get_num_threads()
    if not threads or device.type != "cpu" or count < 2 or n < 2:
        return [work(i) for i in range(count)]
    return list(_pool(n, os.getpid()).map(work, range(count)))


@functools.lru_cache(maxsize=4)
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    # keyed by process: a forked child has none of its parent's pool threads
    # torch's thread count is per thread: the workers' own setting leaves the caller's alone
    return ThreadPoolExecutor(threads, initializer=torch.set_num_threads, initargs=(1,),
                              thread_name_prefix="shiftbench-corrupt")


CORRUPTIONS: dict[str, Corruption] = {}


def register_corruption(name: str, *, cifar: tuple, imagenet: tuple, blocked: bool = True, threaded: bool = False,
                        block_values: int = CPU_BLOCK_VALUES):
    """Decorator registering fn(x, param, generator) as covariate shift `name` with `severity`.

    blocked=False: always call fn on the whole batch (for functions whose cost is a long
    sequence of small batched steps, which blocks would repeat).
    threaded=True: on the CPU run blocks on torch's threads at once, each single-threaded, instead
    of one block at a time with multi-threaded ops. For corruptions whose time goes into drawing
    random numbers: torch's CPU generators are serial, so only separate blocks use several cores.
    block_values: the CPU block size in values, for corruptions whose per-block cost is mostly a
    fixed number of small steps (larger blocks repeat them less often).
    """

    def wrap(fn):
        corruption = Corruption(name, fn, cifar, imagenet, blocked, threaded, block_values)
        CORRUPTIONS[name] = corruption

        def shift(data: ImageSet, *, seed: int, severity: Severity = 3, table: Table = "auto") -> ImageSet:
            return data.with_(images=corruption.apply_uint8(data.images, severity, seed, table))

        shift.__doc__ = fn.__doc__
        shift.__name__ = name
        register_shift(name, "covariate")(shift)
        return fn

    return wrap


def on_uint8(name: str):
    """Decorator registering fn(images uint8, param, generator) -> uint8 as the 8-bit version of
    corruption `name`: the same corruption computed straight on 8-bit values, whose output has
    the same distribution as the float version followed by truncation. Registered shifts use it."""

    def wrap(fn):
        CORRUPTIONS[name].uint8_fn = fn
        return fn

    return wrap


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats (clipped) to 0..255, truncated as the published generators' np.uint8."""
    return levels_to_uint8(x.mul(255))


def levels_to_uint8(y: torch.Tensor) -> torch.Tensor:
    """Floats on the 0..255 scale (clipped) to 8 bits, truncated (np.uint8 of the published
    generators: 254.9 becomes 254); overwrites y."""
    # through int32: torch's direct float -> uint8 conversion is not vectorised (4x slower)
    return y.clamp_(0, 255).to(torch.int32).to(torch.uint8)
