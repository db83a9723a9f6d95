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

With `--run`, it measures a whole `shiftbench run` over the same set instead (inline executor, one
process): a generated benchmark whose test split is the folder (plus a small train folder for a
small CNN), with a shuffled corrupted scenario and a mixed stream of two corruptions, scored
by source and TENT with a small network that pools to 8 px first (the run's cost is then the
images' journey through the suite, not convolutions), twice:

  run_in_ram    every derived image set (played rows, corrupted segments, the mixed stream) in RAM:
                what a run did before core/spill.py (SHIFTBENCH_SPILL_MIB and the decoded
                cache threshold set past the set's size)
  run_spilled   the default: sets over the threshold are memory-mapped files

and checks that both runs wrote the same metrics.
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
RUN_VARIANTS = ("run_in_ram", "run_spilled")
TRAIN_PER_CLASS = 20


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


BENCHMARK = """name: bench-streaming
description: A generated 100-class image folder, for measuring the memory of a run.
dataset: bench-folder
batch_size: 200
order: shuffled
model: {arch: "import:benchnet:build"}
training: {name: erm, epochs: 1, lr: 0.05, batch_size: 64, precision: float32}
scenarios:
  - {name: noise-s5, family: covariate, shifts: [{shift: gaussian_noise, severity: 5}]}
  - name: mixed-s5
    family: covariate
    segment_matrix: {c: [gaussian_noise, contrast]}
    shifts: [{shift: "{c}", severity: 5}]
    stream: {mix: true}
"""

MANIFEST = """name: bench-folder
loader: image_folder
description: generated by scripts/bench_streaming.py
license: none
citation: none
homepage: none
root: set
params: {train: train, test: test, channels: 3, val_fraction: 0.2, split_seed: 0}
"""


NETWORK = """import torch.nn as nn


def build(num_classes: int, in_channels: int):
    # pooled to 8 px first: the run's cost is the images' journey, not convolutions at full size
    return nn.Sequential(nn.AvgPool2d(8), nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes))
"""


def make_project(project: Path, root: Path) -> None:
    """A shiftbench project whose one data set is `root` (test) plus a small train folder beside it."""
    from PIL import Image

    train = project / "data" / "set" / "train"
    if not (train / ".complete").is_file():
        rng = np.random.default_rng(1)
        side = Image.open(next((root / "class000").iterdir())).size[0]
        for i in range(100 * TRAIN_PER_CLASS):
            folder = train / f"class{i % 100:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
        (train / ".complete").write_text("done")
    test = project / "data" / "set" / "test"
    if not test.exists():
        test.symlink_to(root.resolve())
    for sub in ("benchmarks", "data_manifests", "leaderboard/submissions"):
        (project / sub).mkdir(parents=True, exist_ok=True)
    (project / "benchmarks" / "bench-streaming.yaml").write_text(BENCHMARK)
    (project / "data_manifests" / "bench-folder.yaml").write_text(MANIFEST)
    (project / "benchnet.py").write_text(NETWORK)
    for method in ("source", "tent"):
        (project / "leaderboard" / "submissions" / f"{method}.yaml").write_text(
            f"name: {method}\nmethod: {method}\nbenchmark: bench-streaming\nseeds: [0]\nprotocol: per_scenario\n")


def run_child(variant: str, project: Path) -> dict:
    import torch

    from shiftbench.cli.main import main as shiftbench
    from shiftbench.data import image_folder

    torch.set_num_threads(2)
    if variant == "run_in_ram":
        image_folder.MEMMAP_FROM_BYTES = float("inf")
        os.environ["SHIFTBENCH_SPILL_MIB"] = str(2**40)
    os.chdir(project)
    results = project / f"results-{variant}"
    peak = PeakAnon()
    t0 = time.perf_counter()
    code = shiftbench(["run", "--executor", "inline", "--quiet", "--device", "cpu", "--data-dir",
                       str(project / "data"), "--results", str(results), "--site", str(project / f"site-{variant}")])
    seconds = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"shiftbench run exited {code}")
    metrics = {}
    for path in sorted(results.rglob("*.json")):
        for record in json.loads(path.read_text()).get("records", []):
            if record["status"] != "ok":
                raise SystemExit(f"a cell failed: {record['error']}")
            metrics[f"{record['cell']['scenario']}/{record['cell']['method']}"] = record["metrics"]["accuracy"]
    return dict(variant=variant, seconds=seconds, metrics=metrics,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                peak_anon_rss_mb=peak.stop() / 1024)


def main_run(args, tmp: str) -> None:
    root = args.root or Path(tmp) / "set"
    generate(root, args.n, args.side)
    project = Path(tmp) / "project"
    make_project(project, root)
    rows = []
    for variant in RUN_VARIANTS:
        env = {**os.environ, "SHIFTBENCH_CACHE": str(Path(tmp) / f"cache-{variant}"),
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), str(project)])}
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--root", str(project)], env=env,
                             check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    decoded = args.n * 3 * args.side**2 / 2**20
    print(f"shiftbench run over {args.n} JPEGs of {args.side} px ({decoded:.0f} MiB decoded): "
          f"{len(rows[0]['metrics'])} cells, inline executor")
    print(f"{'variant':<12} {'seconds':>8} {'peak RSS MiB':>12} {'peak anon MiB':>13}")
    for r in rows:
        print(f"{r['variant']:<12} {r['seconds']:>8.0f} {r['peak_rss_mb']:>12.0f} {r['peak_anon_rss_mb']:>13.0f}")
    if rows[0]["metrics"] != rows[1]["metrics"] or not rows[0]["metrics"]:
        raise SystemExit(f"the runs disagree: {rows[0]['metrics']} vs {rows[1]['metrics']}")
    print("same accuracy in every cell:", ", ".join(f"{k} {v:.4f}" for k, v in rows[0]["metrics"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=None, help="folder of the generated set (kept; default: a temp dir)")
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--side", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--run", action="store_true", help="measure a whole shiftbench run over the set (see above)")
    ap.add_argument("--child", choices=VARIANTS + RUN_VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child in RUN_VARIANTS:
        print(json.dumps(run_child(args.child, args.root)))
        return
    if args.child:
        print(json.dumps(child(args.child, args.root, args.batch)))
        return
    if args.run:
        with tempfile.TemporaryDirectory(prefix="bench_streaming_") as tmp:
            main_run(args, tmp)
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
