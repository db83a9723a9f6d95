"""Peak memory and decoding speed of loading a large image folder: held in RAM against memory-mapped.

    PYTHONPATH=src python scripts/bench_streaming.py [--root DIR] [--n 50000] [--side 64] [--batch 256]

Generates (once, into --root; default a temporary folder) a class-folder set of `--n` small
JPEGs (100 classes, `--side` px), then loads it through the image_folder loader's decoding
(read_image_folder) and reads it batch by batch as the evaluator does (a slice, converted to
float), each variant in its own child process so each peak is its own:

  in_memory     every image decoded into one tensor in RAM (the path of sets under
                image_folder.MEMMAP_FROM_BYTES)
  mapped_cold   decoded once into the on-disk cache, then memory-mapped (data/decoded_cache.py)
  mapped_warm   the same set again: the cache is read, nothing is decoded

For each it prints images/s of the load (decode, or open the cache) and of the batch pass, and
peak RSS: the kernel's high-water mark (ru_maxrss, which counts mapped file pages that were
read) and the largest anonymous RSS sampled every 20 ms (memory the process itself holds; the
mapped pages are page cache, which the kernel drops under pressure).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

VARIANTS = ("in_memory", "mapped_cold", "mapped_warm")


def generate(root: Path, n: int, side: int) -> None:
    """n JPEGs of smooth random colour fields with some noise, spread over 100 class folders."""
    from PIL import Image

    done = root / ".complete"
    if done.is_file() and done.read_text() == f"{n} {side}":
        return
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(n):
        folder = root / f"class{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        pixels = np.asarray(coarse, dtype=np.int16) + rng.integers(-12, 13, (side, side, 3))
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=90)
    done.write_text(f"{n} {side}")
    print(f"generated {n} JPEGs of {side} px in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


class PeakAnon:
    """The largest RssAnon of this process, sampled every 20 ms on a thread."""

    def __init__(self):
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def _run(self):
        while not self._stop.wait(0.02):
            self.sample()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self.peak_kb


def child(variant: str, root: Path, batch: int) -> dict:
    import torch

    from shiftbench.data import image_folder
    from shiftbench.models.forward import batches, to_float

    torch.set_num_threads(1)
    image_folder.MEMMAP_FROM_BYTES = float("inf") if variant == "in_memory" else 0  # whatever the set's size
    peak = PeakAnon()
    t0 = time.perf_counter()
    images, labels, classes = image_folder.read_image_folder(root)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    total = 0.0
    for s in batches(len(images), batch):
        total += float(to_float(images[s]).mean())
    pass_s = time.perf_counter() - t0
    return dict(variant=variant, n=len(images), decoded_mb=images.numel() / 2**20, load_s=load_s,
                load_images_per_s=len(images) / load_s, pass_images_per_s=len(images) / pass_s,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                peak_anon_rss_mb=peak.stop() / 1024, checksum=total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="folder of the generated set (kept; default: a temp dir)")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.batch)))
        return
    with tempfile.TemporaryDirectory(prefix="bench_streaming_") as tmp:
        root = args.root or Path(tmp) / "set"
        generate(root, args.n, args.side)
        env = {**os.environ, "SHIFTBENCH_CACHE": str(Path(tmp) / "cache")}  # a cold cache, removed afterwards
        rows = []
        for variant in VARIANTS:
            out = subprocess.run([sys.executable, __file__, "--child", variant, "--root", str(root),
                                  "--batch", str(args.batch)], env=env, check=True, capture_output=True, text=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.n} JPEGs of {args.side} px, {rows[0]['decoded_mb']:.0f} MiB decoded; batches of {args.batch}")
    print(f"{'variant':<12} {'load img/s':>10} {'pass img/s':>10} {'peak RSS MiB':>12} {'peak anon MiB':>13}")
    for r in rows:
        print(f"{r['variant']:<12} {r['load_images_per_s']:>10.0f} {r['pass_images_per_s']:>10.0f} "
              f"{r['peak_rss_mb']:>12.0f} {r['peak_anon_rss_mb']:>13.0f}")
    if len({round(r["checksum"], 3) for r in rows}) != 1:
        raise SystemExit(f"the variants read different pixels: {[r['checksum'] for r in rows]}")


if __name__ == "__main__":
    main()
