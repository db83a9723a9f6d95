"""Cost of CLIP test-time adaptation per image: a plain zero-shot forward against a TPT step and a TDA update.

    PYTHONPATH=src python scripts/bench_clip.py [--model ViT-B-32] [--classes 10] [--views 64] [--reps 3]
                                               [--threads N] [--device cpu|cuda]

Builds open_clip:MODEL with random weights (the cost does not depend on their values; nothing
is downloaded), a zero-shot head over --classes class names, and times on 224 px images:
  zero-shot, batch of 64      the source forward, per image
  zero-shot, one image        the same with batches of 1 (TPT and TDA see one image at a time)
  TDA, one image              the cache update and cache logits on top of it (one view, the authors' ImageNet setting)
  TPT, one image              --views views through the image tower, the text tower over every class
                              prompt forward and backward, one AdamW step, the prediction
Each is the best of --reps runs (a shared machine's bursts of load land on one run, not on the best).
The zero-shot head of the random model is cached in a temporary folder, not the user's cache.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import torch

from shiftbench.core.imageset import ImageSet
from shiftbench.methods import SourceContext, create_method
from shiftbench.models.train import build_classifier


def best_time(fn, reps: int, device: torch.device) -> float:
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--views", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    os.environ["SHIFTBENCH_CACHE"] = tempfile.mkdtemp(prefix="bench_clip-")  # the random model's head stays out of the cache
    names = [f"class {k}" for k in range(args.classes)]
    torch.manual_seed(0)
    model = build_classifier({"arch": f"open_clip:{args.model}", "class_names": names, "templates": ["a photo of a {}."]},
                             args.classes, 3)
    model.net.weights_loaded("timing-only-random-weights")
    model = model.to(device).eval()
    val = ImageSet(torch.zeros(1, 3, 224, 224, dtype=torch.uint8), torch.zeros(1, dtype=torch.int64), tuple(names))
    source = SourceContext(model=model, val=val, prior=torch.full((args.classes,), 1 / args.classes), device=device,
                           seed=0)
    methods = {}
    for name, params in (("tda", {}), ("tpt", {"n_views": args.views})):
        methods[name] = create_method(name, params)
        methods[name].setup(copy.deepcopy(model), source)
    batch = torch.rand(64, 3, 224, 224, device=device)
    one = batch[:1]

    def plain():
        with torch.no_grad():
            model(one)

    rows = [("zero-shot, batch of 64", best_time(lambda: plain_batch(model, batch), args.reps, device) / 64),
            ("zero-shot, one image", best_time(plain, args.reps, device)),
            ("TDA, one image", best_time(lambda: methods["tda"].predict(one), args.reps, device)),
            (f"TPT ({args.views} views), one image", best_time(lambda: methods["tpt"].predict(one), args.reps, device))]
    base = rows[1][1]
    print(f"open_clip:{args.model}, {args.classes} classes, {device.type}"
          f"{'' if device.type == 'cuda' else f', {torch.get_num_threads()} threads'}, best of {args.reps}")
    print(f"{'':34s} {'ms / image':>11s} {'x one-image zero-shot':>22s}")
    for label, seconds in rows:
        print(f"{label:34s} {seconds * 1000:11.1f} {seconds / base:22.1f}")


def plain_batch(model, batch):
    with torch.no_grad():
        model(batch)


if __name__ == "__main__":
    main()
