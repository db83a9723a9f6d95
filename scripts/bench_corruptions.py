"""Speed of the batched corruptions against straightforward per-image NumPy / SciPy / Pillow versions.

    PYTHONPATH=src python scripts/bench_corruptions.py [--quick] [--all-severities] [--threads N]

Corrupts the same batch (512 colourised digits at 32 px with the CIFAR-10-C table, 64 at
224 px with the ImageNet-C table) with every corruption (frost only when its photos are under
the data root, $SHIFTBENCH_DATA) and prints images per second for ours (the registered shift:
uint8 ImageSet in, uint8 out) and for a per-image reference of the same operation written
below, and their ratio, all measured in this one run, then the
geometric mean of the ratios. Slow references are timed on the first images until 0.6 s have
passed (a rate in images per second does not need the whole batch). Ours and the reference are
timed alternately three times and each keeps its best rate, so a burst of load from elsewhere
on a shared machine does not land on one side only.

The references exist only here, as the obvious way to write each corruption one image at a
time (the originals' approach); they are not used by shiftbench.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import time

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from shiftbench.core.allocator import keep_freed_memory
from shiftbench.core.imageset import ImageSet
from shiftbench.shifts import all_shifts, get_shift
from shiftbench.shifts.corruption import CORRUPTIONS

LUMA = np.array([0.299, 0.587, 0.114])


# ----------------------------------------------------------------------------- per-image references
# Each takes one float image (H, W, 3) in [0, 1], the parameter and a numpy Generator.

def ref_gaussian_noise(x, s, rng):
    return x + rng.normal(size=x.shape, scale=s)


def ref_shot_noise(x, c, rng):
    return rng.poisson(x * c) / c


def ref_impulse_noise(x, a, rng):
    hit, salt = rng.random(x.shape) < a, rng.random(x.shape) < 0.5
    return np.where(hit, salt.astype(float), x)


def ref_speckle_noise(x, s, rng):
    return x + x * rng.normal(size=x.shape, scale=s)


def ref_gaussian_blur(x, s, rng):
    return ndimage.gaussian_filter(x, (s, s, 0), mode="nearest")


def ref_disk(radius, alias_blur):
    half = 8 if radius <= 8 else int(radius)
    t = np.arange(-half, half + 1)
    xx, yy = np.meshgrid(t, t)
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    disk /= disk.sum()
    k = 3 if radius <= 8 else 5
    u = np.arange(k) - (k - 1) / 2
    taps = np.exp(-(u**2) / (2 * alias_blur**2))
    taps /= taps.sum()
    return ndimage.correlate1d(ndimage.correlate1d(disk, taps, 0, mode="mirror"), taps, 1, mode="mirror")


def ref_defocus_blur(x, p, rng):
    k = ref_disk(*p)
    return np.stack([ndimage.correlate(x[..., c], k, mode="mirror") for c in range(x.shape[2])], -1)


def ref_glass_blur(x, p, rng):
    sigma, d, iters = p
    h, w = x.shape[:2]
    x = np.uint8(np.clip(ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="nearest"), 0, 1) * 255)
    for _ in range(iters):
        for r in range(h - d, d, -1):
            for c in range(w - d, d, -1):
                dx, dy = rng.integers(-d, d, size=2)
                x[r, c] = x[r + dy, c + dx]  # the published "swap" copies one way
    return ndimage.gaussian_filter(x / 255.0, (sigma, sigma, 0), mode="nearest")


def ref_glass_blur_swap(x, p, rng):
    sigma, d, iters = p
    h, w = x.shape[:2]
    x = np.uint8(np.clip(ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="nearest"), 0, 1) * 255)
    for _ in range(iters):
        for r in range(h - d, d, -1):
            for c in range(w - d, d, -1):
                dy, dx = rng.integers(-d, d, size=2)
                x[r, c], x[r + dy, c + dx] = x[r + dy, c + dx], x[r, c].copy()
    return ndimage.gaussian_filter(x / 255.0, (sigma, sigma, 0), mode="nearest")


def ref_motion(x, radius, sigma, angle):
    h, w = x.shape[:2]
    width = 2 * math.ceil(radius) + 1
    i = np.arange(width)
    k = np.exp(-(i**2) / (2 * sigma**2))
    k /= k.sum()
    a = np.deg2rad(angle)
    out = np.zeros_like(x)
    rows, cols = np.arange(h), np.arange(w)
    for j in range(width):
        oy, ox = math.ceil(j * math.sin(a) - 0.5), math.ceil(j * math.cos(a) - 0.5)
        out += k[j] * x[np.clip(rows + oy, 0, h - 1)][:, np.clip(cols + ox, 0, w - 1)]
    return out


def ref_motion_blur(x, p, rng):
    return ref_motion(x, p[0], p[1], rng.uniform(-45, 45))


def ref_clipped_zoom(x, z):
    h = x.shape[0]
    ch = int(np.ceil(h / z))
    top = (h - ch) // 2
    zoom = (z, z) + (1,) * (x.ndim - 2)
    out = ndimage.zoom(x[top : top + ch, top : top + ch], zoom, order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim : trim + h, trim : trim + h]


def ref_zoom_blur(x, p, rng):
    factors = np.arange(1, p[0], p[1])
    out = x.copy()
    for z in factors:
        out += ref_clipped_zoom(x, z)
    return out / (len(factors) + 1)


def ref_snow(x, p, rng):
    mu, sigma, zoom, thr, radius, bsigma, blend = p
    flakes = ref_clipped_zoom(rng.normal(size=x.shape[:2], loc=mu, scale=sigma), zoom)
    flakes[flakes < thr] = 0
    flakes = np.floor(np.clip(flakes, 0, 1) * 255) / 255
    flakes = np.round(ref_motion(flakes, radius, bsigma, rng.uniform(-135, -45)) * 255) / 255
    x = blend * x + (1 - blend) * np.maximum(x, (x @ LUMA)[..., None] * 1.5 + 0.5)
    return x + (flakes + np.rot90(flakes, 2))[..., None]


@functools.lru_cache(maxsize=2)
def frost_photos(shrink: float) -> list[np.ndarray]:
    """The first five published frost photos (RGB), shrunk as the recipe of the table does."""
    from shiftbench.shifts.frost_photos import PHOTOS, PICKED, photo_folder

    out = []
    for name in PHOTOS[:PICKED]:
        photo = Image.open(photo_folder() / name).convert("RGB")
        if shrink != 1:
            photo = photo.resize((round(photo.width * shrink), round(photo.height * shrink)), Image.BILINEAR)
        out.append(np.asarray(photo))
    return out


def ref_frost(x, p, rng):
    h, w = x.shape[:2]
    photo = frost_photos(p[2])[rng.integers(5)]
    top, left = rng.integers(0, photo.shape[0] - h), rng.integers(0, photo.shape[1] - w)
    return p[0] * x + p[1] / 255 * photo[top : top + h, left : left + w]


def ref_frost_generated(x, p, rng):
    h, w = x.shape[:2]
    veins, amp, total = np.zeros((h, w)), 1.0, 0.0
    for cells in (3, 6, 12, 24):
        v = ndimage.zoom(rng.random((cells + 1, cells + 1)), (h / (cells + 1), w / (cells + 1)), order=3)
        veins += amp * np.clip(1 - np.abs(2 * v - 1), 0, 1) ** 8
        total += amp
        amp *= 0.7
    tex = 0.85 * veins / total + 0.15 * ndimage.gaussian_filter(rng.random((h, w)), 0.5, mode="nearest")
    tex = 0.2 + 0.8 * (tex - tex.min()) / max(tex.max() - tex.min(), 1e-6)
    return p[0] * x + p[1] * tex[..., None] * np.array([0.86, 0.93, 1.0])


def ref_plasma(mapsize, decay, rng):
    m = np.zeros((mapsize, mapsize))
    step, wibble = mapsize, 100.0
    while step >= 2:
        half = step // 2
        corner = m[0::step, 0::step]
        sq = corner + np.roll(corner, -1, 0)
        sq += np.roll(sq, -1, 1)
        m[half::step, half::step] = sq / 4 + wibble * rng.uniform(-wibble, wibble, sq.shape)
        dr, ul = m[half::step, half::step], m[0::step, 0::step]
        lt = dr + np.roll(dr, 1, 0) + ul + np.roll(ul, -1, 1)
        m[0::step, half::step] = lt / 4 + wibble * rng.uniform(-wibble, wibble, lt.shape)
        tt = dr + np.roll(dr, 1, 1) + ul + np.roll(ul, -1, 0)
        m[half::step, 0::step] = tt / 4 + wibble * rng.uniform(-wibble, wibble, tt.shape)
        step //= 2
        wibble /= decay
    m -= m.min()
    return m / m.max()


def ref_fog(x, p, rng):
    h, w = x.shape[:2]
    top = x.max()
    size = 1 << (max(h, w) - 1).bit_length()
    x = x + p[0] * ref_plasma(size, p[1], rng)[:h, :w, None]
    return x * top / (top + p[0])


def ref_brightness(x, c, rng):
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(x, 0, 1))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return hsv_to_rgb(hsv)


def ref_saturate(x, p, rng):
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv

    hsv = rgb_to_hsv(np.clip(x, 0, 1))
    hsv[..., 1] = np.clip(hsv[..., 1] * p[0] + p[1], 0, 1)
    return hsv_to_rgb(hsv)


def ref_contrast(x, c, rng):
    m = x.mean(axis=(0, 1), keepdims=True)
    return (x - m) * c + m


def ref_elastic_transform(x, p, rng):
    h, w = x.shape[:2]
    alpha, sigma, affine = (v * min(h, w) for v in p)
    cx, cy, s = w // 2, h // 2, min(h, w) // 3
    src = np.array([[cx + s, cy + s], [cx + s, cy - s], [cx - s, cy - s]], float)
    dst = src + rng.uniform(-affine, affine, size=src.shape)
    mt = np.linalg.solve(np.c_[src, np.ones(3)], dst)  # [x y 1] @ mt = [x' y']
    lin, shift = mt[:2].T, mt[2]
    inv = np.linalg.inv(lin)
    # affine_transform works in (row, col): src_rc = M @ dst_rc + o
    m_rc = inv[::-1, ::-1]
    o_rc = -(inv @ shift)[::-1]
    x = np.stack([ndimage.affine_transform(x[..., c], m_rc, o_rc, order=1, mode="mirror") for c in range(3)], -1)
    if alpha > 0:
        dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
        dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
        rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        x = np.stack([ndimage.map_coordinates(x[..., c], [rr + dy, cc + dx], order=1, mode="reflect")
                      for c in range(3)], -1)
    return x


def ref_pixelate(x, f, rng):
    h, w = x.shape[:2]
    im = Image.fromarray(np.uint8(np.round(np.clip(x, 0, 1) * 255)))
    im = im.resize((int(w * f), int(h * f)), Image.BOX).resize((w, h), Image.BOX)
    return np.asarray(im) / 255.0


def ref_jpeg_compression(x, q, rng):
    buf = io.BytesIO()
    Image.fromarray(np.uint8(np.round(np.clip(x, 0, 1) * 255))).save(buf, "JPEG", quality=q)
    return np.asarray(Image.open(buf)) / 255.0


def ref_spatter(x, p, rng):
    loc, scale, sigma, thr, intensity, mud = p
    liquid = ndimage.gaussian_filter(rng.normal(size=x.shape[:2], loc=loc, scale=scale), sigma, mode="nearest")
    liquid[liquid < thr] = 0
    if mud:
        m = ndimage.gaussian_filter((liquid > thr).astype(float), intensity, mode="nearest")
        m[m < 0.8] = 0
        return x * (1 - m[..., None]) + np.array([63, 42, 20]) / 255 * m[..., None]
    mask = liquid > 0
    edges = mask & ~ndimage.binary_erosion(mask, border_value=1)
    dist = np.minimum(ndimage.distance_transform_edt(~edges), 20) if edges.any() else np.full(mask.shape, 20.0)
    dist = np.floor(ndimage.uniform_filter(dist, 3, mode="mirror"))
    hist = np.bincount(dist.astype(int).ravel(), minlength=256)
    cdf, first = hist.cumsum(), hist[hist > 0][0]
    lut = np.round((cdf - first) * 255 / max(cdf[-1] - first, 1)) if cdf[-1] > first else np.arange(256)
    dist = lut[dist.astype(int)]
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    dist = np.clip(np.round(ndimage.correlate(dist, emboss, mode="mirror")), 0, 255)
    m = liquid * ndimage.uniform_filter(dist, 3, mode="mirror")
    m = m / max(m.max(), 1e-12) * intensity
    return x + m[..., None] * np.array([175, 238, 238]) / 255


REFERENCES = {name[4:]: fn for name, fn in globals().items() if name.startswith("ref_") and name[4:] in
              ("gaussian_noise shot_noise impulse_noise speckle_noise gaussian_blur defocus_blur glass_blur "
               "glass_blur_swap motion_blur zoom_blur snow frost frost_generated fog brightness saturate contrast "
               "elastic_transform pixelate jpeg_compression spatter").split()}


# ----------------------------------------------------------------------------- timing

def colour_digits(n: int, size: int) -> ImageSet:
    """Digits test images, upsampled to `size`, tinted and laid on a colour gradient: a fixed colour batch."""
    from shiftbench.data import load_dataset

    test = load_dataset("digits").test
    idx = torch.arange(n) % len(test)
    x = test.images[idx].float() / 255
    if size != x.shape[-1]:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(0)
    tint = 0.4 + 0.6 * torch.rand(n, 3, 1, 1, generator=g)
    ramp = torch.linspace(0, 1, size).view(1, 1, 1, size)
    back = 0.35 * torch.rand(n, 3, 1, 1, generator=g) * ramp
    images = (x * tint + back * (1 - x)).clamp(0, 1).mul(255).round().to(torch.uint8)
    return ImageSet(images, test.labels[idx], test.classes)


def time_ours(name: str, data: ImageSet, severity: int) -> float:
    fn = get_shift(name).fn
    fn(data.subset(torch.arange(2)), seed=0, severity=severity)  # warm-up: imports, kernels
    reps, start = 0, time.perf_counter()
    while True:
        fn(data, seed=reps, severity=severity)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed > 0.3 or reps >= 5:
            return reps * len(data) / elapsed


def time_reference(name: str, data: ImageSet, severity: int, budget: float = 0.6) -> float:
    ref = REFERENCES[name]
    param = CORRUPTIONS[name].param(severity, "auto", data.image_size)
    images = data.images.permute(0, 2, 3, 1).numpy()
    rng = np.random.default_rng(0)
    ref(images[0] / 255.0, param, rng)  # warm-up
    done, start = 0, time.perf_counter()
    for im in images:
        out = ref(im / 255.0, param, rng)
        np.uint8(np.clip(out, 0, 1) * 255)
        done += 1
        if time.perf_counter() - start > budget:
            break
    return done / (time.perf_counter() - start)


def frost_photos_on_disk() -> bool:
    from shiftbench.core.errors import UserError
    from shiftbench.shifts.frost_photos import photo_folder

    try:
        photo_folder()
    except UserError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 images of 32 px and 8 of 224 px")
    ap.add_argument("--all-severities", action="store_true", help="every severity instead of severity 3")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for ours (default 1; the references are single-threaded per-image loops). "
                         "With N > 1 ours corrupts N blocks of the batch at once")
    ap.add_argument("--only", nargs="*", default=None, help="corruption names to time")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's malloc as it is (by default the script keeps freed memory, as the CLI does)")
    args = ap.parse_args()
    kept = False if args.system_malloc else keep_freed_memory()
    torch.set_num_threads(args.threads)
    all_shifts()
    batches = [colour_digits(64 if args.quick else 512, 32), colour_digits(8 if args.quick else 64, 224)]
    severities = range(1, 6) if args.all_severities else [3]
    names = args.only or sorted(CORRUPTIONS)
    if "frost" in names and not frost_photos_on_disk():
        names.remove("frost")
        print("frost skipped: its photos are not on disk (shiftbench data fetch imagenet-c-frost, or set "
              "$SHIFTBENCH_DATA to a data folder holding imagenet-c-frost/)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, freed memory "
          f"{'kept' if kept else 'returned to the OS'}; references are per-image NumPy/SciPy/Pillow")
    print(f"{'corruption':18s} {'px':>4s} {'sev':>3s} {'ours img/s':>11s} {'ref img/s':>10s} {'ratio':>7s}")
    ratios = []
    for name in names:
        for data in batches:
            for s in severities:
                ours = ref = 0.0
                for _ in range(3):
                    ours = max(ours, time_ours(name, data, s))
                    ref = max(ref, time_reference(name, data, s))
                ratios.append(ours / ref)
                print(f"{name:18s} {data.image_size:4d} {s:3d} {ours:11.0f} {ref:10.1f} {ours / ref:7.1f}", flush=True)
    print(f"geometric mean ratio over {len(ratios)} rows: {math.exp(sum(map(math.log, ratios)) / len(ratios)):.1f}x")


if __name__ == "__main__":
    main()
