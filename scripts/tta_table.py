"""Mean error over the 15 corruptions at severity 5 for every test-time adaptation method and protocol.

    PYTHONPATH=src python scripts/tta_table.py --data DIR --checkpoint FILE [--n 2000] [--batch 200] \
        [--rows tent eata ...] [--results tta_results.json] [--threads 1] [--slow-n 500]

DIR holds CIFAR-10 as image folders (`test/<class>/*.jpg`, `train/<class>/*.jpg`); FILE is a
CIFAR ResNet-20 checkpoint in akamaster's format (loads into `cifar_resnet`, depth 20).
Target data: a seeded, class-stratified, shuffled subset of --n test images, corrupted by
shiftbench's own generators at severity 5 (each corruption seeded from its name). Source data
(EATA's Fisher): a stratified 2,000 of the train folder. Protocols: `reset` resets the method at
the start of every corruption (per_scenario over the 15 segments), `continual` never does (the 15
in a row), `mixed` shuffles the 15 into one stream, `noniid` plays the 15 in a row, each in a
label-correlated order (Dirichlet concentration 0.1, RoTTA's setting); the last three never reset.
MEMO resets itself per image, so it runs once and fills every column; --slow-n runs MEMO and
CoTTA on the first images of each corruption only (each costs tens of source passes per image),
--first every row.

Every (row, protocol) result is stored in --results as soon as it exists, so an interrupted run
resumes where it stopped (--force recomputes). The printed table: mean error per protocol, the
passes per image, and (with --cost R) seconds per image relative to the source model's, measured
in one invocation on one batch, best of R rounds that each time every row once.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import time
from pathlib import Path

import torch

from shiftbench.core.device import resolve_device
from shiftbench.core.files import atomic_write_text
from shiftbench.core.hashing import seed_from
from shiftbench.core.imageset import ImageSet
from shiftbench.data.image_folder import read_image_folder
from shiftbench.evaluation import run_stream
from shiftbench.methods import SourceContext, create_method
from shiftbench.models.architectures.registry import build_model
from shiftbench.models.checkpoint import load_weights
from shiftbench.evaluation.stream_layout import domains, lay_out
from shiftbench.run.stream_settings import LABEL_ORDER_SHIFT
from shiftbench.shifts import get_shift

CORRUPTIONS = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
               "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
               "jpeg_compression"]
SEVERITY = 5
SEED = 0

# label, method, parameters (defaults unless given)
ROWS = [
    ("source", "source", {}),
    ("bn_adapt", "bn_adapt", {}),
    ("alpha_bn", "alpha_bn", {}),
    ("tent", "tent", {}),
    ("eata", "eata", {}),
    ("eata, CIFAR settings", "eata", {"optimizer": "adam", "lr": 1e-3, "redundancy_margin": 0.4, "fisher_alpha": 1.0}),
    ("sar", "sar", {}),
    ("deyo", "deyo", {}),
    ("cotta", "cotta", {}),
    ("rotta", "rotta", {}),
    ("lame", "lame", {}),
    ("lame, rbf affinity", "lame", {"affinity": "rbf"}),
    ("t3a", "t3a", {}),
    ("shot_im", "shot_im", {}),
    ("memo", "memo", {}),
    ("unmix_tns", "unmix_tns", {}),
    ("roid", "roid", {}),
    ("cmf", "cmf", {}),
    ("rmt", "rmt", {}),
    ("rmt, warm-up on 4,000 source images", "rmt", {"warmup_samples": 4000}),
]
EPISODIC_BY_NATURE = {"memo"}
SLOW = {"memo", "cotta"}  # tens of passes per image: --slow-n images per corruption

# forward (F) and backward (B) passes per test image, from the code (memo: per view, 32 views)
PASSES = {
    "source": "1F", "bn_adapt": "1F", "alpha_bn": "1F", "tent": "1F + 1B", "eata": "1F + 1B (+ Fisher once)",
    "sar": "2F + 2B", "deyo": "2F + 1B", "cotta": "35F + 1B", "rotta": "3F + 1B", "lame": "1F", "t3a": "1F",
    "shot_im": "1F + 1B (all layers)", "memo": "33F + 32B", "unmix_tns": "1F",
    "roid": "1.5F + 1B", "cmf": "1.5F + 1B", "rmt": "4F + 1B (all layers; + warm-up once)",
}


def stratified(data: ImageSet, n: int, seed: int) -> ImageSet:
    """n images, n / K of each class chosen at random, in a random order (seeded)."""
    g = torch.Generator().manual_seed(seed)
    per_class = n // data.num_classes
    rows = [torch.nonzero(data.labels == k).flatten() for k in range(data.num_classes)]
    chosen = torch.cat([r[torch.randperm(len(r), generator=g)[:per_class]] for r in rows])
    return data.subset(chosen[torch.randperm(len(chosen), generator=g)])


def image_folder(folder: Path) -> ImageSet:
    images, labels, classes = read_image_folder(folder)
    # the folder reader returns channels-last strides, which shot noise's uint8 path cannot view
    return ImageSet(images.contiguous(), labels, classes)


def target_segments(data_dir: Path, n: int, names: list[str] = CORRUPTIONS, cache: Path | None = None) -> list[ImageSet]:
    """The corrupted test subsets, in the order of names; `cache` keeps them between runs (they take minutes)."""
    if cache is not None and cache.exists():
        stored = torch.load(cache, weights_only=True)
        if stored["n"] == n and all(c in stored["images"] for c in names):
            return [ImageSet(stored["images"][c], stored["labels"], tuple(stored["classes"])) for c in names]
    clean = stratified(image_folder(data_dir / "test"), n, seed_from("tta_table", "test", SEED))
    segments = [get_shift(c).fn(clean, seed=seed_from("tta_table", c, SEVERITY, SEED), severity=SEVERITY)
                for c in names]
    if cache is not None:
        torch.save({"n": n, "labels": clean.labels, "classes": list(clean.classes),
                    "images": {c: s.images for c, s in zip(names, segments)}}, cache)
    return segments


def resnet20(checkpoint: Path) -> torch.nn.Module:
    model = build_model("cifar_resnet", 10, 3, depth=20)
    load_weights(model.net, checkpoint)
    return model.eval()


def source_context(model: torch.nn.Module, data_dir: Path, device: torch.device, batch: int) -> SourceContext:
    train = stratified(image_folder(data_dir / "train"), 3000, seed_from("tta_table", "train", SEED))
    return SourceContext(model=model, val=train.subset(torch.arange(2000, 3000)), prior=torch.full((10,), 0.1),
                         device=device, seed=SEED, train=train.subset(torch.arange(2000)), batch_size=batch)


# protocol -> (the evaluator's protocol, the stream layout of evaluation/stream_layout.py)
PROTOCOLS = {
    "reset": ("per_scenario", {"mix": False, "label_order": None, "cycles": 1}),
    "continual": ("continual", {"mix": False, "label_order": None, "cycles": 1}),
    "mixed": ("continual", {"mix": True, "label_order": None, "cycles": 1}),
    # RoTTA's non-i.i.d. stream: the 15 in a row, each in a label-correlated order (Dirichlet 0.1)
    "noniid": ("continual", {"mix": False, "cycles": 1,
                             "label_order": {"shift": LABEL_ORDER_SHIFT, "concentration": 0.1}}),
}


def evaluate(method_name: str, params: dict, protocol: str, model, source, segments, batch: int, device) -> dict:
    method = create_method(method_name, params)
    torch.manual_seed(SEED)
    method.setup(copy.deepcopy(model), source)
    run_as, layout = PROTOCOLS[protocol]
    stream = lay_out(segments, layout, seed_from("tta_table", "stream", SEED))
    start = time.perf_counter()
    logits = run_stream(method, stream, run_as, batch, device)
    seconds = time.perf_counter() - start
    parts = [part for seg, lg in zip(stream, logits) for part in domains(seg, lg)]
    errors = [1 - (lg.argmax(1) == seg.labels).double().mean().item() for seg, lg in parts]
    return {"errors": dict(zip(CORRUPTIONS, errors)), "mean_error": sum(errors) / len(errors),
            "seconds_per_image": seconds / sum(len(s) for s in segments), "images": [len(s) for s in segments],
            "info": method.describe()}


def cost(rows: list, model, source, segment: ImageSet, batch: int, device, repeats: int) -> dict[str, float]:
    """Seconds per image of each row on the first batch of one corruption, best of `repeats` rounds; the rounds go
    over all rows in turn, so a busy spell on a shared machine slows one round of every row, not one row."""
    x = segment.images[:batch].to(device).float().div(255)
    best: dict[str, float] = {}
    for _ in range(repeats):
        for label, name, params in rows:
            method = create_method(name, params)
            torch.manual_seed(SEED)
            method.setup(copy.deepcopy(model), source)
            method.reset()
            start = time.perf_counter()
            method.predict(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best[label] = min(best.get(label, float("inf")), (time.perf_counter() - start) / len(x))
    return best


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def percent(result: dict | None) -> str:
    return f"{100 * result['mean_error']:.2f}" if result else "-"


def table(results: dict, rows: list) -> str:
    timing = results.get("cost", {})
    src = timing.get("source")
    lines = ["| method | " + " | ".join(PROTOCOLS) + " | passes per image | time / source |",
             "|---|" + "---|" * len(PROTOCOLS) + "---|---|"]
    for label, name, _ in rows:
        errors = " | ".join(percent(results.get(f"{label}|{p}")) for p in PROTOCOLS)
        rel = f"{timing[label] / src:.1f}x" if label in timing and src else "-"
        lines.append(f"| {label} | {errors} | {PASSES[name]} | {rel} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--slow-n", type=int, default=None,
                    help="images per corruption for the slow rows, memo and cotta (default --n)")
    ap.add_argument("--first", type=int, default=None,
                    help="every row on the first images of each corruption only (of the --n the cache holds)")
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--rows", nargs="+", default=None, help="row labels to compute (default all)")
    ap.add_argument("--protocols", nargs="+", default=["reset", "continual"], choices=list(PROTOCOLS))
    ap.add_argument("--results", type=Path, default=Path("tta_results.json"))
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-cache", type=Path, default=None, help="file that keeps the corrupted test images")
    ap.add_argument("--cost", type=int, default=0, metavar="R",
                    help="also time every row on one batch, best of R rounds (source included, for the ratio)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results = json.loads(args.results.read_text()) if args.results.exists() else {}
    rows = [r for r in ROWS if args.rows is None or r[0] in args.rows]
    model = resnet20(args.checkpoint).to(device)
    segments = target_segments(args.data, args.n, cache=args.data_cache)
    source = source_context(model, args.data, device, args.batch)
    if args.cost:
        timed = rows if any(r[0] == "source" for r in rows) else [ROWS[0], *rows]
        results["cost"] = {**results.get("cost", {}), **cost(timed, model, source, segments[0], args.batch, device,
                                                                args.cost)}
        results["cost_note"] = f"best of {args.cost} rounds, one batch of {args.batch}, {args.threads} thread(s)"
        atomic_write_text(args.results, json.dumps(results, indent=1))
    for label, name, params in rows:
        for protocol in args.protocols:
            key = f"{label}|{protocol}"
            if key in results and not args.force:
                continue
            if name in EPISODIC_BY_NATURE and protocol != "reset" and f"{label}|reset" in results:
                results[key] = {**results[f"{label}|reset"], "note": "same run: the method resets itself per image"}
            else:
                first = min(n for n in (args.first, args.slow_n if name in SLOW else None, args.n) if n)
                segs = [s.subset(torch.arange(first)) for s in segments] if first < args.n else segments
                results[key] = {**evaluate(name, params, protocol, model, source, segs, args.batch, device),
                                "method": name, "params": params, "n": len(segs[0]), "batch": args.batch,
                                "commit": git_commit(), "threads": args.threads, "device": str(device)}
            atomic_write_text(args.results, json.dumps(results, indent=1))
            print(f"{label:24s} {protocol:9s} {100 * results[key]['mean_error']:6.2f}  "
                  f"{results[key]['seconds_per_image'] * 1000:8.2f} ms/image", flush=True)
    print(table(results, rows))


if __name__ == "__main__":
    main()
