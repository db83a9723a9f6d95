"""Speed on a real model: CIFAR-10 ResNet-20, batches of 200, CPU. Ratios measured in one run.

1. the evaluator's loop (run_stream with the `source` method) vs a bare `model(x)` loop over the same tensors;
2. TENT's adaptation step (run_stream with `tent`) vs a bare entropy-minimisation loop written here;
3. generating the 15 CIFAR-10-C corruptions at severity 5 on 10,000 CIFAR images, per corruption.

Uses the real JPEG test images and the published weights when the data root holds cifar10-jpeg/ and
cifar10-resnet20/ (--data-dir or $SHIFTBENCH_DATA), else random images and random weights (the same
arithmetic).

    python scripts/bench_real_models.py [--data-dir ROOT] [--threads 2] [--repeats 5] [--n 2000]
                                        [--corruption-images 10000]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import torch

C15 = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
       "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"]
BATCH = 200


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def model_and_images(n: int):
    from shiftbench.core.errors import UserError
    from shiftbench.core.imageset import ImageSet
    from shiftbench.data import load_dataset
    from shiftbench.data.test_stream import shuffled, stratified_subset
    from shiftbench.models import get_source_model
    from shiftbench.models.train import build_classifier

    try:
        d = load_dataset("cifar10-jpeg")
        model = get_source_model(d.source_train, d.source_val, {"weights": "cifar10-resnet20"}, {}, 0,
                                 torch.device("cpu"), False).model
        test = shuffled(d.test, 0)
        what = "CIFAR-10 JPEG test images, published ResNet-20 weights"
    except UserError as e:
        print(f"(real data not found: {e}; using random images and weights)")
        torch.manual_seed(0)
        model = build_classifier({"arch": "cifar_resnet", "depth": 20}, 10, 3).eval()
        test = ImageSet(torch.randint(0, 256, (10_000, 3, 32, 32), dtype=torch.uint8),
                        torch.arange(10_000) % 10, tuple(map(str, range(10))))
        what = "random images, random ResNet-20 weights"
    return model, test, stratified_subset(test, n, 0), what


def bare_forward(model, images: torch.Tensor) -> None:
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), BATCH):
            model(images[i:i + BATCH].float().div_(255))


def bare_entropy_minimisation(model, images: torch.Tensor) -> None:
    """TENT written out: BN on batch statistics, Adam on BN affine parameters, one entropy step per batch."""
    net = copy.deepcopy(model)
    net.requires_grad_(False)
    params = []
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.train()
            m.track_running_stats, m.running_mean, m.running_var = False, None, None
            m.weight.requires_grad_(True)
            m.bias.requires_grad_(True)
            params += [m.weight, m.bias]
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))
    for i in range(0, len(images), BATCH):
        logits = net(images[i:i + BATCH].float().div_(255))
        loss = -(logits.softmax(1) * logits.log_softmax(1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def through_evaluator(model, segment, method_name: str) -> None:
    from shiftbench.evaluation import run_stream
    from shiftbench.methods import SourceContext, create_method

    method = create_method(method_name, {})
    context = SourceContext(model=model, val=segment, prior=segment.class_prior(), device=torch.device("cpu"), seed=0)
    method.setup(copy.deepcopy(model) if method_name != "source" else model, context)
    run_stream(method, [segment], "per_scenario", BATCH, torch.device("cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n", type=int, default=2000, help="images in the forward and TENT comparisons")
    ap.add_argument("--corruption-images", type=int, default=10_000, help="0: skip the corruption timings")
    args = ap.parse_args()
    if args.data_dir:
        os.environ["SHIFTBENCH_DATA"] = str(args.data_dir)
    if args.threads:
        torch.set_num_threads(args.threads)
    from shiftbench.shifts import get_shift

    model, test, segment, what = model_and_images(args.n)
    print(f"{what}; torch {torch.__version__}, {torch.get_num_threads()} threads, batches of {BATCH}, "
          f"{len(segment)} images, best of {args.repeats} (alternating)")
    images = segment.images

    for label, bare, ours in (
        ("forward: evaluator vs bare model(x)", lambda: bare_forward(model, images),
         lambda: through_evaluator(model, segment, "source")),
        ("TENT: evaluator vs bare entropy minimisation", lambda: bare_entropy_minimisation(model, images),
         lambda: through_evaluator(model, segment, "tent")),
    ):
        ours()  # warm-up
        b, o = [], []
        for _ in range(args.repeats):
            b.append(timed(bare))
            o.append(timed(ours))
        print(f"{label}: {min(o):.3f} s vs {min(b):.3f} s = {min(o) / min(b):.3f}x")

    if not args.corruption_images:
        return
    data = test.subset(torch.arange(args.corruption_images) % len(test))
    print(f"\ncorruptions at severity 5 on {len(data)} images of 32 px (one run each):")
    total = 0.0
    for c in C15:
        fn = get_shift(c).fn
        seconds = timed(lambda: fn(data, seed=0, severity=5))  # noqa: B023 (called at once)
        total += seconds
        print(f"  {c:18s} {seconds:7.2f} s  {len(data) / seconds:9.0f} images/s")
    print(f"  {'all 15':18s} {total:7.2f} s")


if __name__ == "__main__":
    main()
