"""Speed of the batched corruptions against straightforward per-image NumPy / SciPy / Pillow versions,
or (--published) against the packaged published generator, imagecorruptions 1.1.2.

    PYTHONPATH=src python scripts/bench_corruptions.py [--quick] [--all-severities] [--threads N]
    PYTHONPATH=src python scripts/bench_corruptions.py --published [--quick] [--markdown] \
        [--data-dir ROOT] [--weights-dir ROOT] [--only NAME ...]

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

--published: in the same process, `imagecorruptions.corrupt` one image at a time (as its users
call it) against our registered shift on the whole batch, on the same images: 32 px CIFAR-10
test images and the same images upsampled to 224 px (bilinear), when the data root (--data-dir
or $SHIFTBENCH_DATA) holds cifar10-jpeg/, else the colour digits. imagecorruptions has the
ImageNet-C parameters at every size, so ours runs with table="imagenet" at both sizes: like for
like. Every corruption of both, five severities (--quick: severity 3 and fewer images). Speed as
above (alternating, best of three, the per-image side time-boxed). Agreement, from the two
outputs on the same images (all those at 32 px, the first AGREE224 at 224 px): the mean absolute difference in 8-bit levels (meaningful for the
deterministic corruptions; for the random ones each side's mean change from the clean image
says whether they are equally strong), and, with the CIFAR-10 ResNet-20 weights under
--weights-dir (a data root holding cifar10-resnet20/), its top-1 error on each side's 32 px
output. Needs `pip install imagecorruptions==1.1.2` (in the dev extra).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import io
import math
import os
import sys
import time
import types
import warnings

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


def time_ours(name: str, data: ImageSet, severity: int, table: str = "auto", budget: float = 0.3) -> float:
    fn = get_shift(name).fn
    fn(data.subset(torch.arange(2)), seed=0, severity=severity, table=table)  # warm-up: imports, kernels
    reps, start = 0, time.perf_counter()
    while True:
        fn(data, seed=reps, severity=severity, table=table)
        reps += 1
        elapsed = time.perf_counter() - start
        if elapsed > budget or reps >= 5:
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

# ----------------------------------------------------------------------------- the published generator

# imagecorruptions' 19 corruptions: the 15 of the benchmarks, then its 4 validation ones
PUBLISHED = ("gaussian_noise shot_noise impulse_noise defocus_blur glass_blur motion_blur zoom_blur snow frost fog "
             "brightness contrast elastic_transform pixelate jpeg_compression speckle_noise gaussian_blur spatter "
             "saturate").split()
# no random draw in either version: their outputs can be compared pixel by pixel
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
                 "gaussian_blur", "saturate"}


def import_imagecorruptions():
    """The imagecorruptions module, as published. Version 1.1.2 imports pkg_resources only for
    resource_filename (to find its own frost photos), which setuptools 81+ no longer ships; where
    it is missing a stand-in module with that one function goes in front of the import, and is taken
    away again after it (imagecorruptions keeps the function; nothing else may find the stand-in)."""
    if importlib.util.find_spec("imagecorruptions") is None:
        raise SystemExit("--published needs imagecorruptions: pip install imagecorruptions==1.1.2 (in the dev extra)")
    stand_in = None
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        stand_in = types.ModuleType("pkg_resources")
        stand_in.resource_filename = lambda package, name: os.path.join(os.path.dirname(sys.modules[package].__file__),
                                                                        name)
        sys.modules["pkg_resources"] = stand_in
    try:
        import imagecorruptions
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
    return imagecorruptions


def published_corrupt(ic, image: np.ndarray, name: str, severity: int) -> np.ndarray:
    """One (H, W, 3) uint8 image through imagecorruptions.corrupt, as its users call it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ic.corrupt(image, corruption_name=name, severity=severity)


def published_failure(ic, image: np.ndarray, name: str) -> str | None:
    """None when the published corruption runs on this stack, else its one-line error."""
    try:
        published_corrupt(ic, image, name, 1)
    except Exception as e:  # noqa: BLE001 (any failure of the package is what we report)
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def time_published(ic, name: str, arrays: np.ndarray, severity: int, budget: float) -> float:
    published_corrupt(ic, arrays[0], name, severity)  # warm-up
    done, start = 0, time.perf_counter()
    for im in arrays:
        published_corrupt(ic, im, name, severity)
        done += 1
        if time.perf_counter() - start > budget:
            break
    return done / (time.perf_counter() - start)


def published_images(n: int) -> tuple[ImageSet, str]:
    """n CIFAR-10 test images (shuffled, seed 0) when the data root holds cifar10-jpeg/, else colour digits."""
    from shiftbench.core.errors import UserError
    from shiftbench.data import load_dataset
    from shiftbench.data.test_stream import shuffled

    try:
        test = shuffled(load_dataset("cifar10-jpeg").test, 0)
    except UserError as e:
        print(f"(CIFAR-10 not found: {e}; using colour digits)")
        return colour_digits(n, 32), "colour digits upsampled to 32 px"
    return test.subset(torch.arange(n) % len(test)), "CIFAR-10 test images (cifar10-jpeg)"


def upsampled(data: ImageSet, n: int, size: int) -> ImageSet:
    """The first n images resized to size x size (bilinear), rounded to 8 bits."""
    x = data.images[:n].float()
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return ImageSet(x.round().clamp(0, 255).to(torch.uint8), data.labels[:n], data.classes)


def cifar_resnet20(weights_dir: str | None, data: ImageSet):
    """The published CIFAR-10 ResNet-20 through its model manifest, from the data root weights_dir
    (default: the data root), or None when the weights are not there."""
    from shiftbench.core.errors import UserError
    from shiftbench.data.location import DATA_ENV
    from shiftbench.models.train import load_pretrained

    before = os.environ.get(DATA_ENV)
    if weights_dir:
        os.environ[DATA_ENV] = weights_dir
    try:
        return load_pretrained({"weights": "cifar10-resnet20"}, data, torch.device("cpu")).model
    except UserError as e:
        print(f"(no ResNet-20, so no error columns: {e})")
        return None
    finally:
        if before is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = before


def top1_error(model, images: torch.Tensor, like: ImageSet) -> float:
    """The model's top-1 error in % on uint8 images with the labels of `like`."""
    from shiftbench.models.forward import forward

    data = ImageSet(images, like.labels[: len(images)], like.classes)
    logits = forward(model, data.model_view(), 500, torch.device("cpu"))
    return 100 * (logits.argmax(1) != data.labels).float().mean().item()


def mean_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two uint8 batches, in 8-bit levels."""
    return (a.to(torch.int16) - b.to(torch.int16)).abs().float().mean().item()


def compare_published(ic, name: str, timing: ImageSet, agree: ImageSet, severity: int, model, budget: float) -> dict:
    """One row: both speeds (alternating, best of three) and the agreement of both outputs on `agree`."""
    arrays = timing.images.permute(0, 2, 3, 1).contiguous().numpy()
    ours = theirs = 0.0
    for _ in range(3):
        ours = max(ours, time_ours(name, timing, severity, "imagenet", budget / 2))
        theirs = max(theirs, time_published(ic, name, arrays, severity, budget))
    clean = agree.images
    mine = get_shift(name).fn(agree, seed=severity, severity=severity, table="imagenet").images
    pub = torch.from_numpy(np.stack([published_corrupt(ic, im, name, severity)
                                     for im in clean.permute(0, 2, 3, 1).contiguous().numpy()])).permute(0, 3, 1, 2)
    row = dict(name=name, px=timing.image_size, sev=severity, ours=ours, theirs=theirs, ratio=ours / theirs,
               diff=mean_abs(mine, pub), change_ours=mean_abs(mine, clean), change_theirs=mean_abs(pub, clean))
    if model is not None:
        row.update(err_ours=top1_error(model, mine, agree), err_theirs=top1_error(model, pub, agree))
    return row


def run_published(args) -> list[dict]:
    """Print (and return) one row per corruption, size and severity."""
    from importlib.metadata import version

    ic = import_imagecorruptions()

    np.random.seed(0)  # imagecorruptions draws from numpy's global generator
    n32, n224, agree224 = args.images or ((128, 8, 4) if args.quick else (1000, 64, 16))
    small, what = published_images(n32)
    big = upsampled(small, n224, 224)
    model = cifar_resnet20(args.weights_dir, small) if what.startswith("CIFAR") else None
    severities = args.severities or ([3] if args.quick else [1, 2, 3, 4, 5])
    names = [n for n in (args.only or PUBLISHED) if n in PUBLISHED]
    if "frost" in names and not frost_photos_on_disk():
        names.remove("frost")
        print("frost skipped: its photos are not under the data root (--data-dir or $SHIFTBENCH_DATA)")
    print(f"imagecorruptions {version('imagecorruptions')} (numpy {np.__version__}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {what}: {n32} at 32 px, the first {n224} upsampled to 224 px "
          f"(bilinear); ours with the ImageNet-C table at both sizes, as imagecorruptions")
    if model is not None:
        print(f"ResNet-20 error on the clean 32 px images: {top1_error(model, small.images, small):.1f}%")
    failed = {n: why for n in names if (why := published_failure(ic, small.images[0].permute(1, 2, 0).numpy(), n))}
    rows = []
    print(f"{'corruption':18s} {'px':>4s} {'sev':>3s} {'ours img/s':>11s} {'pub img/s':>10s} {'ratio':>7s} "
          f"{'|ours-pub|':>10s} {'chg ours':>8s} {'chg pub':>8s} {'err ours':>8s} {'err pub':>8s}")
    for name in names:
        if name in failed:
            print(f"{name:18s} published generator fails on this stack: {failed[name]}")
            continue
        for timing, agree in ((small, small), (big, big.subset(torch.arange(agree224)))):
            for s in severities:
                r = compare_published(ic, name, timing, agree, s, model if timing.image_size == 32 else None,
                                      args.budget)
                rows.append(r)
                errs = (f" {r['err_ours']:8.1f} {r['err_theirs']:8.1f}" if "err_ours" in r else "")
                print(f"{name:18s} {r['px']:4d} {s:3d} {r['ours']:11.0f} {r['theirs']:10.1f} {r['ratio']:7.1f} "
                      f"{r['diff']:10.2f} {r['change_ours']:8.2f} {r['change_theirs']:8.2f}{errs}", flush=True)
    if rows:
        geo = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
        slowest = min(rows, key=lambda r: r["ratio"])
        print(f"geometric mean ratio over {len(rows)} rows: {geo:.1f}x; slowest: {slowest['name']} "
              f"{slowest['px']} px s{slowest['sev']} at {slowest['ratio']:.1f}x")
    if args.markdown:
        print(published_markdown(rows, failed, severities))
    return rows


def published_markdown(rows: list[dict], failed: dict[str, str], severities) -> str:
    """The speed table and the agreement table, one row per corruption and severity."""
    by = {(r["name"], r["px"], r["sev"]): r for r in rows}
    names = list(dict.fromkeys(r["name"] for r in rows))
    with_err = any("err_ours" in r for r in rows)
    speed = ["| corruption | sev | 32 px: ours img/s | published img/s | ratio | 224 px: ours img/s | published img/s "
             "| ratio |", "|---|---|---|---|---|---|---|---|"]
    agree = ["| corruption | sev | kind | 32 px: mean abs diff | change from clean, ours / published |"
             + (" ResNet-20 error %, ours / published |" if with_err else "")
             + " 224 px: mean abs diff | change from clean, ours / published |",
             "|---|---|---|---|---|" + ("---|" if with_err else "") + "---|---|"]
    for name in names:
        kind = "deterministic" if name in DETERMINISTIC else "random"
        for s in severities:
            a, b = by.get((name, 32, s)), by.get((name, 224, s))
            cells = [name, str(s)]
            for r in (a, b):
                cells += ([f"{r['ours']:.0f}", f"{r['theirs']:.0f}", f"{r['ratio']:.1f}x"] if r else ["", "", ""])
            speed.append("| " + " | ".join(cells) + " |")
            cells = [name, str(s), kind]
            for r, px in ((a, 32), (b, 224)):
                cells += [f"{r['diff']:.2f}", f"{r['change_ours']:.1f} / {r['change_theirs']:.1f}"] if r else ["", ""]
                if px == 32 and with_err:
                    cells.append(f"{r['err_ours']:.1f} / {r['err_theirs']:.1f}" if r and "err_ours" in r else "")
            agree.append("| " + " | ".join(cells) + " |")
    for name, why in failed.items():
        note = "published generator fails on this stack: `" + why.replace("`", "'") + "`"
        speed.append(f"| {name} | all | {note} | | | | | |")
        agree.append(f"| {name} | all | {'deterministic' if name in DETERMINISTIC else 'random'} | {note} |"
                     + " |" * (3 + with_err))
    return "\n".join(["", *speed, "", *agree])


def main(argv: list[str] | None = None) -> list[dict] | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 images of 32 px and 8 of 224 px")
    ap.add_argument("--all-severities", action="store_true", help="every severity instead of severity 3")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for ours (default 1; the references are single-threaded per-image loops). "
                         "With N > 1 ours corrupts N blocks of the batch at once")
    ap.add_argument("--only", nargs="*", default=None, help="corruption names to time")
    ap.add_argument("--system-malloc", action="store_true",
                    help="leave glibc's malloc as it is (by default the script keeps freed memory, as the CLI does)")
    ap.add_argument("--published", action="store_true", help="against imagecorruptions.corrupt (see above)")
    ap.add_argument("--data-dir", default=None, help="--published: data root holding cifar10-jpeg/ and "
                                                     "imagenet-c-frost/ (default: $SHIFTBENCH_DATA)")
    ap.add_argument("--weights-dir", default=None,
                    help="--published: data root holding cifar10-resnet20/ (default: the data root)")
    ap.add_argument("--severities", type=int, nargs="*", default=None, help="--published: severities to run")
    ap.add_argument("--budget", type=float, default=0.6,
                    help="--published: seconds per timing of the per-image side (ours gets half)")
    ap.add_argument("--images", type=int, nargs=3, default=None, metavar=("N32", "N224", "AGREE224"),
                    help="--published: images at 32 px, at 224 px, and how many of the latter the agreement uses "
                         "(default 1000 64 16; --quick 128 8 4)")
    ap.add_argument("--markdown", action="store_true", help="--published: also print the tables as markdown")
    args = ap.parse_args(argv)
    kept = False if args.system_malloc else keep_freed_memory()
    torch.set_num_threads(args.threads)
    all_shifts()
    if args.published:
        if args.data_dir:
            os.environ["SHIFTBENCH_DATA"] = args.data_dir
        return run_published(args)
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
