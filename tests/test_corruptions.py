"""The 19 corruptions: parameter tables, severity ordering, determinism, and exactness against the
libraries the original CIFAR-10-C / ImageNet-C generators used."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from shiftbench.cli import main
from shiftbench.data import load_dataset
from shiftbench.imageset import ImageSet
from shiftbench.shifts import all_shifts, get_shift
from shiftbench.shifts.corruption import CORRUPTIONS

all_shifts()

# REFERENCE.md section 4, severities 1 -> 5: (CIFAR-10-C table, ImageNet-C table).
EXPECTED = {
    "gaussian_noise": ((.04, .06, .08, .09, .10), (.08, .12, .18, .26, .38)),
    "shot_noise": ((500, 250, 100, 75, 50), (60, 25, 12, 5, 3)),
    "impulse_noise": ((.01, .02, .03, .05, .07), (.03, .06, .09, .17, .27)),
    "defocus_blur": (((.3, .4), (.4, .5), (.5, .6), (1, .2), (1.5, .1)),
                     ((3, .1), (4, .5), (6, .5), (8, .5), (10, .5))),
    "glass_blur": (((.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2)),
                   ((.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))),
    "motion_blur": (((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
                    ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))),
    "zoom_blur": (((1.06, .01), (1.11, .01), (1.16, .01), (1.21, .01), (1.26, .01)),
                  ((1.11, .01), (1.16, .01), (1.21, .02), (1.26, .02), (1.31, .03))),
    "snow": (((.1, .2, 1, .6, 8, 3, .95), (.1, .2, 1, .5, 10, 4, .9), (.15, .3, 1.75, .55, 10, 4, .9),
              (.25, .3, 2.25, .6, 12, 6, .85), (.3, .3, 1.25, .65, 14, 12, .8)),
             ((.1, .3, 3, .5, 10, 4, .8), (.2, .3, 2, .5, 12, 4, .7), (.55, .3, 4, .9, 12, 8, .7),
              (.55, .3, 4.5, .85, 12, 8, .65), (.55, .3, 2.5, .85, 12, 12, .55))),
    "frost": (((1, .2), (1, .3), (.9, .4), (.85, .4), (.75, .45)),
              ((1, .4), (.8, .6), (.7, .7), (.65, .7), (.6, .75))),
    "fog": (((.2, 3), (.5, 3), (.75, 2.5), (1, 2), (1.5, 1.75)),
            ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))),
    "brightness": ((.05, .1, .15, .2, .3), (.1, .2, .3, .4, .5)),
    "contrast": ((.75, .5, .4, .3, .15), (.4, .3, .2, .1, .05)),
    "elastic_transform": (((0, 0, .08), (.05, .2, .07), (.08, .06, .06), (.1, .04, .05), (.1, .03, .03)),
                          ((2, .7, .1), (2, .08, .2), (.05, .01, .02), (.07, .01, .02), (.12, .01, .02))),
    "pixelate": ((.95, .9, .85, .75, .65), (.6, .5, .4, .3, .25)),
    "jpeg_compression": ((80, 65, 58, 50, 40), (25, 18, 15, 10, 7)),
    "speckle_noise": ((.06, .1, .12, .16, .2), (.15, .2, .35, .45, .6)),
    "gaussian_blur": ((.4, .6, .7, .8, 1), (1, 2, 3, 4, 6)),
    "saturate": (((.3, 0), (.1, 0), (1.5, 0), (2, .1), (2.5, .2)),
                 ((.3, 0), (.1, 0), (2, 0), (5, .1), (20, .2))),
    # REFERENCE.md has no spatter row: the originals' (loc, scale, sigma, threshold, intensity, mud)
    "spatter": (((.62, .1, .7, .7, .5, 0), (.65, .1, .8, .7, .5, 0), (.65, .3, 1, .69, .5, 0),
                 (.65, .1, .7, .69, .6, 1), (.65, .1, .5, .68, .6, 1)),
                ((.65, .3, 4, .69, .6, 0), (.65, .3, 3, .68, .6, 0), (.65, .3, 2, .68, .5, 0),
                 (.65, .3, 1, .65, 1.5, 1), (.67, .4, 1, .65, 1.5, 1))),
}

# Corruptions whose degradation need not grow with severity, and why.
NOT_MONOTONE = {
    # reference tables that are not monotone
    "saturate": "saturation x0.3, x0.1, x1.5, x2 +.1, x2.5 +.2: severity 2 desaturates more than 3 saturates",
    "glass_blur": "blur sigma .05, .25, .4, .25, .4 goes down at severity 4 (while sweeps go 1 -> 2)",
    "elastic_transform": "the affine amplitude falls .08 -> .03 of the side while the elastic field grows; "
                         "on 32 px the affine dominates, so the change falls with severity",
    "spatter": "severities 1-3 are water drops, 4-5 mud: two different effects, not one scale",
    # tables monotone per parameter, but the change from the clean image is not on dark digits
    "frost": "from severity 3 to 4 only the image weight drops (.9 -> .85) at frost weight .4; where the "
             "frost layer brightens a pixel more than the weight darkens it, the output moves back to clean",
    "pixelate": "at 32 px the sizes are 30, 28, 27, 24, 20 px and Pillow's BOX 32->28->32 moves thin strokes "
                "more than 32->27->32 (our pixelate equals Pillow's exactly, see below)",
}
DETERMINISTIC = {"brightness", "contrast", "defocus_blur", "gaussian_blur", "jpeg_compression", "pixelate",
                 "saturate", "zoom_blur"}


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    test = load_dataset("digits").test
    return test.subset(torch.arange(16))


def big_images(n: int = 2, size: int = 224, channels: int = 3) -> ImageSet:
    """Smooth random colour images with edges, large enough for the ImageNet-C table."""
    g = torch.Generator().manual_seed(7)
    low = torch.rand(n, channels, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    x[:, :, size // 3 : size // 2, size // 4 : 3 * size // 4] = 1.0
    images = x.clamp(0, 1).mul(255).round().to(torch.uint8)
    return ImageSet(images, torch.zeros(n, dtype=torch.int64), ("a",))


def mad(a: ImageSet, b: ImageSet) -> float:
    return (a.images.float() - b.images.float()).abs().mean().item() / 255


def test_the_nineteen_are_registered_as_covariate_shifts():
    assert set(CORRUPTIONS) == set(EXPECTED)
    shifts = all_shifts()
    assert all(shifts[name].family == "covariate" for name in EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_tables_equal_reference(name):
    cifar, imagenet = EXPECTED[name]
    assert CORRUPTIONS[name].cifar == cifar
    assert CORRUPTIONS[name].imagenet == imagenet


def test_table_chosen_by_image_size_and_overridable():
    c = CORRUPTIONS["gaussian_noise"]
    assert c.param(5, "auto", 32) == .10 and c.param(5, "auto", 64) == .10
    assert c.param(5, "auto", 65) == .38 and c.param(5, "auto", 224) == .38
    assert c.param(5, "imagenet", 32) == .38 and c.param(5, "cifar", 224) == .10
    contrast = get_shift("contrast").fn
    big = big_images(2)
    auto = contrast(big, seed=0, severity=5)
    assert torch.equal(auto.images, contrast(big, seed=0, severity=5, table="imagenet").images)
    assert not torch.equal(auto.images, contrast(big, seed=0, severity=5, table="cifar").images)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_degradation_grows_with_severity(name, digits):
    fn = get_shift(name).fn
    outs = [fn(digits, seed=3, severity=s) for s in range(1, 6)]
    change = [mad(o, digits) for o in outs]
    for o in outs:
        assert o.images.dtype == torch.uint8 and o.images.shape == digits.images.shape
        assert torch.equal(o.labels, digits.labels)
    if name == "saturate":  # grey pixels have S = 0: scaling S alone leaves them grey
        assert change[:3] == [0.0, 0.0, 0.0] and 0 < change[3] < change[4]
    elif name == "frost":  # grows wherever the frost weight grows
        assert change[0] < change[1] < change[2] and change[3] < change[4]
    elif name in NOT_MONOTONE:
        assert min(change) > 0
    else:
        assert all(b >= a for a, b in zip(change, change[1:])), change
        assert change[4] > change[0] > 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_seed_same_output_other_seed_differs_for_random_ones(name, digits):
    fn = get_shift(name).fn
    a = fn(digits, seed=11, severity=4).images
    assert torch.equal(a, fn(digits, seed=11, severity=4).images)
    other = fn(digits, seed=12, severity=4).images
    assert torch.equal(a, other) == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_large_and_single_channel_images(name):
    fn = get_shift(name).fn
    big = big_images(2)
    out = fn(big, seed=0, severity=3)
    assert out.images.shape == big.images.shape and out.images.dtype == torch.uint8
    assert not torch.equal(out.images, big.images)
    grey = big_images(2, size=40, channels=1)
    out = fn(grey, seed=0, severity=5)
    assert out.images.shape == grey.images.shape and out.images.dtype == torch.uint8


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_single_channel_is_the_luma_of_the_grey_rgb_result(name):
    fn = get_shift(name).fn
    grey = big_images(2, size=40, channels=1)
    rgb = grey.with_(images=grey.images.expand(-1, 3, -1, -1).contiguous())
    luma = (fn(rgb, seed=0, severity=5).images.float() * torch.tensor([.299, .587, .114]).view(1, 3, 1, 1)).sum(1)
    assert (fn(grey, seed=0, severity=5).images[:, 0].float() - luma).abs().max() <= 1


def test_cpu_blocks_draw_their_own_noise_and_thread_count_changes_nothing():
    from shiftbench.shifts.corruption import CPU_BLOCK_VALUES

    per_block = CPU_BLOCK_VALUES // (3 * 224 * 224)
    same = big_images(1).images.expand(2 * per_block + 1, -1, -1, -1).contiguous()
    data = ImageSet(same, torch.zeros(len(same), dtype=torch.int64), ("a",))
    c = CORRUPTIONS["gaussian_noise"]
    assert len(c.blocks(data.images)) == 3
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = c.apply_uint8(data.images, 5, seed=4)
        torch.set_num_threads(3)
        parallel = c.apply_uint8(data.images, 5, seed=4)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(serial, parallel)
    assert torch.get_num_threads() == threads
    assert not torch.equal(serial[0], serial[per_block])  # the second block draws fresh noise
    assert torch.equal(get_shift("gaussian_noise").fn(data, seed=4, severity=5).images, serial)


def test_pixelate_equals_pillow_box_and_grows_at_224px(digits):
    from PIL import Image

    big = big_images(3)
    for data in (digits, big):
        size = data.image_size
        changes = []
        for s in range(1, 6):
            factor = CORRUPTIONS["pixelate"].param(s, "auto", size)
            ours = get_shift("pixelate").fn(data, seed=0, severity=s).images
            ref = torch.stack([
                torch.from_numpy(np.asarray(
                    Image.fromarray(im.permute(1, 2, 0).numpy())
                    .resize((int(size * factor),) * 2, Image.BOX).resize((size, size), Image.BOX)
                ).copy()).permute(2, 0, 1)
                for im in data.images
            ])
            assert torch.equal(ours, ref)
            changes.append((ours.float() - data.images.float()).abs().mean().item())
        if data is big:
            assert changes == sorted(changes)


def test_pixelate_uint8_equals_float_version():
    from shiftbench.shifts.corruption import to_uint8
    from shiftbench.shifts.corruptions_digital import pixelate, pixelate_uint8
    from shiftbench.shifts.image_ops import pil_box_resize, pil_box_resize_uint8

    g = torch.Generator().manual_seed(3)
    for h, w in [(32, 32), (224, 224), (17, 40), (5, 3)]:
        images = torch.randint(0, 256, (3, 3, h, w), dtype=torch.uint8, generator=g)
        images[0] = 255  # all-white sums reach the largest window totals
        for factor in (0.95, 0.85, 0.65, 0.4, 0.25, 0.1):
            expected = to_uint8(pixelate(images.float() / 255, factor, None))
            assert torch.equal(pixelate_uint8(images, factor, None), expected), (h, w, factor)
        for size in [(h, max(1, w // 17)), (max(1, h // 3), w * 2)]:  # long windows (fallback), mixed passes
            assert torch.equal(pil_box_resize_uint8(images, size), pil_box_resize(images.float(), size).to(torch.uint8))


def test_jpeg_uint8_matches_pillow_and_float_version():
    from PIL import Image

    from shiftbench.shifts.corruption import to_uint8
    from shiftbench.shifts.corruptions_digital import jpeg_compression, jpeg_compression_uint8

    images = big_images(3).images
    got = jpeg_compression_uint8(images, 15, None)
    assert got.dtype == torch.uint8 and torch.equal(got, to_uint8(jpeg_compression(images.float() / 255, 15, None)))
    for im, out in zip(images, got):
        buf = io.BytesIO()
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=15)
        ref = torch.from_numpy(np.asarray(Image.open(buf)).copy()).permute(2, 0, 1)
        assert (ref.int() - out.int()).abs().max() <= 1


def test_plasma_equals_slice_assignment_diamond_square(monkeypatch):
    from shiftbench.shifts import image_ops

    draws = []

    def recorded(shape, g, device):
        bits = uniform_24bit(shape, g, device)
        draws.append(bits.clone())
        return bits

    uniform_24bit = image_ops.uniform_24bit
    monkeypatch.setattr(image_ops, "uniform_24bit", recorded)
    n, size, decay = 3, 16, 1.7
    ours = image_ops.plasma_fractal(n, size, decay, torch.Generator().manual_seed(5), "cpu")
    assert ours.shape == (n, size, size) and len(draws) == 1
    m = torch.zeros(n, size, size, dtype=torch.float64)  # the originals' algorithm, with our uniforms
    step, wibble, start = size, 100.0, 0
    while step >= 2:
        k = size // step
        u = draws[0][start : start + 3 * n * k * k].view(3, n, k, k).double() / 2**24 * 2 - 1
        start += 3 * n * k * k
        half = step // 2
        corner = m[:, 0::step, 0::step]
        sq = corner + corner.roll(-1, 1)
        sq = sq + sq.roll(-1, 2)
        m[:, half::step, half::step] = sq / 4 + wibble * wibble * u[0]
        dr, ul = m[:, half::step, half::step].clone(), m[:, 0::step, 0::step].clone()
        m[:, 0::step, half::step] = (dr + dr.roll(1, 1) + ul + ul.roll(-1, 2)) / 4 + wibble * wibble * u[1]
        m[:, half::step, 0::step] = (dr + dr.roll(1, 2) + ul + ul.roll(-1, 1)) / 4 + wibble * wibble * u[2]
        step //= 2
        wibble /= decay
    m -= m.amin(dim=(1, 2), keepdim=True)
    m /= m.amax(dim=(1, 2), keepdim=True)
    assert torch.allclose(ours.double(), m, atol=1e-5)


def test_plasma_range_determinism_and_uniform_bits():
    from shiftbench.shifts.image_ops import plasma_fractal, uniform_24bit

    a = plasma_fractal(4, 64, 2.0, torch.Generator().manual_seed(1), "cpu")
    assert torch.equal(a, plasma_fractal(4, 64, 2.0, torch.Generator().manual_seed(1), "cpu"))
    assert not torch.equal(a, plasma_fractal(4, 64, 2.0, torch.Generator().manual_seed(2), "cpu"))
    assert torch.equal(a.amin(dim=(1, 2)), torch.zeros(4)) and torch.equal(a.amax(dim=(1, 2)), torch.ones(4))
    assert not torch.equal(a[0], a[1])
    bits = uniform_24bit((3, 1001), torch.Generator().manual_seed(0), "cpu")
    assert bits.shape == (3, 1001) and bits.dtype == torch.int32
    assert 0 <= bits.min() and bits.max() < 2**24
    u = bits.double() / 2**24
    assert abs(u.mean() - 0.5) < 0.02 and abs(u.var() - 1 / 12) < 0.005
    pairs = u.view(-1)[:3002].view(-1, 2)  # the two halves of one 64-bit draw are independent
    assert abs((pairs[:, 0] - pairs[:, 1]).abs().mean() - 1 / 3) < 0.02


def test_frost_fast_paths_match_the_plain_ops():
    import torch.nn.functional as F

    from shiftbench.shifts.corruption import to_uint8
    from shiftbench.shifts.corruptions_weather import frost, frost_uint8
    from shiftbench.shifts.image_ops import bicubic_upsample, gaussian_filter, small_gaussian_filter, uniform

    g = torch.Generator().manual_seed(0)
    v = torch.rand(2, 1, 7, 5, generator=g)
    expected = F.interpolate(v, size=(40, 33), mode="bicubic", align_corners=True)
    assert torch.allclose(bicubic_upsample(v, (40, 33)), expected, atol=1e-5)
    x = torch.rand(2, 3, 21, 17, generator=g)
    assert torch.allclose(small_gaussian_filter(x, 0.5), gaussian_filter(x, 0.5), atol=1e-6)
    u = uniform((4, 1000), g, "cpu")
    assert u.dtype == torch.float32 and 0 <= u.min() and u.max() < 1 and torch.equal(u * 2**24, (u * 2**24).round())
    images = big_images(2).images
    for p in CORRUPTIONS["frost"].imagenet:
        ours = frost_uint8(images, p, torch.Generator().manual_seed(3)).int()
        ref = to_uint8(frost(images.float() / 255, p, torch.Generator().manual_seed(3))).int()
        assert (ours - ref).abs().max() <= 1 and (ours != ref).float().mean() < 1e-3


def test_fog_uint8_matches_float_version():
    from shiftbench.shifts.corruption import to_uint8
    from shiftbench.shifts.corruptions_weather import fog, fog_uint8

    for images, table in ((big_images(2).images, "imagenet"), (big_images(3, size=32).images, "cifar")):
        for p in getattr(CORRUPTIONS["fog"], table):
            ours = fog_uint8(images, p, torch.Generator().manual_seed(3)).int()
            ref = to_uint8(fog(images.float() / 255, p, torch.Generator().manual_seed(3))).int()
            assert (ours - ref).abs().max() <= 1 and (ours != ref).float().mean() < 1e-3


def test_jpeg_equals_pillow(digits):
    from PIL import Image

    ours = get_shift("jpeg_compression").fn(digits, seed=0, severity=5).images
    for im, got in zip(digits.images[:8], ours):
        buf = io.BytesIO()
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=40)
        ref = torch.from_numpy(np.asarray(Image.open(buf)).copy()).permute(2, 0, 1)
        assert (ref.int() - got.int()).abs().max() <= 1


def test_glass_shuffle_equals_sequential_swaps():
    from shiftbench.shifts.image_ops import local_shuffle

    for h, w, d, iters in [(12, 12, 2, 2), (9, 14, 1, 1), (16, 11, 3, 2)]:
        rows, cols = range(h - d, d, -1), range(w - d, d, -1)
        offsets = torch.randint(-d, d, (iters, 3, len(rows) * len(cols), 2), generator=torch.Generator().manual_seed(h))
        perm = local_shuffle(3, h, w, d, iters, None, "cpu", offsets=offsets)
        for i in range(3):
            p = list(range(h * w))
            for it in range(iters):
                k = 0
                for r in rows:
                    for c in cols:
                        dy, dx = offsets[it, i, k].tolist()
                        k += 1
                        u, v = r * w + c, (r + dy) * w + (c + dx)
                        p[u], p[v] = p[v], p[u]
            assert perm[i].tolist() == p


def test_filters_match_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    from shiftbench.shifts.image_ops import clipped_zoom, gaussian_filter

    x = torch.rand(2, 3, 20, 23, generator=torch.Generator().manual_seed(0))
    for sigma, mode, truncate in [(0.7, "nearest", 4.0), (3.0, "reflect", 3.0), (9.0, "reflect", 3.0)]:
        ours = gaussian_filter(x, sigma, mode, truncate).numpy()
        ref = ndimage.gaussian_filter(x.numpy(), (0, 0, sigma, sigma), mode=mode, truncate=truncate)
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    img = x[0, 0, :20, :20]
    for z in (1.04, 1.17, 1.31):
        ch = int(np.ceil(20 / z))
        top = (20 - ch) // 2
        zoomed = ndimage.zoom(img[top : top + ch, top : top + ch].numpy(), z, order=1)
        trim = (zoomed.shape[0] - 20) // 2
        np.testing.assert_allclose(clipped_zoom(img[None, None], z)[0, 0].numpy(),
                                   zoomed[trim : trim + 20, trim : trim + 20], atol=1e-5)


def test_defocus_kernel_and_fft_correlation_match_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    from shiftbench.shifts.corruptions_blur import disk_kernel
    from shiftbench.shifts.image_ops import correlate2d

    x = torch.rand(2, 1, 30, 26, generator=torch.Generator().manual_seed(2))
    for radius, alias in [(1, 0.2), (10, 0.5)]:  # 17 x 17 and 21 x 21 kernels (FFT path)
        k = disk_kernel(radius, alias)
        assert k.shape == ((17, 17) if radius <= 8 else (21, 21))  # not renormalised after blur, as cv2
        ref = ndimage.correlate(x[:, 0].numpy(), k.numpy()[None], mode="mirror")
        np.testing.assert_allclose(correlate2d(x, k)[:, 0].numpy(), ref, atol=1e-5)


def test_motion_blur_kernel_is_a_one_sided_gaussian_line():
    from shiftbench.shifts.image_ops import motion_blur

    x = torch.zeros(2, 1, 5, 40)
    x[:, :, 2, 30] = 1.0
    out = motion_blur(x, 6, 2.0, torch.tensor([0.0, 180.0]))
    i = torch.arange(13.0)
    k = torch.exp(-(i**2) / 8)
    k /= k.sum()
    # tap i reads the pixel i steps along the angle: a point spreads i steps against it
    assert torch.allclose(out[0, 0, 2, 18:31].flip(0), k, atol=1e-6)
    assert torch.allclose(out[1, 0, 2, 30:43 - 3], k[:10], atol=1e-6)
    assert out[:, :, [0, 1, 3, 4]].abs().max() == 0


def test_brightness_and_saturate_equal_hsv_round_trip():
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv  # same HSV convention as skimage

    x = torch.rand(4, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    x[0] = 0.5  # grey
    x[1, :, :3] = 0.0  # black
    hsv = rgb_to_hsv(x.permute(0, 2, 3, 1).numpy().astype(np.float64))
    for severity in (2, 5):
        c = CORRUPTIONS["brightness"].cifar[severity - 1]
        brighter = hsv.copy()
        brighter[..., 2] = np.clip(brighter[..., 2] + c, 0, 1)
        expected = torch.from_numpy(hsv_to_rgb(brighter)).permute(0, 3, 1, 2).float()
        assert torch.allclose(CORRUPTIONS["brightness"].apply_float(x, severity, 0), expected, atol=1e-5)
        for table in ("cifar", "imagenet"):
            scale, shift = getattr(CORRUPTIONS["saturate"], table)[severity - 1]
            sat = hsv.copy()
            sat[..., 1] = np.clip(sat[..., 1] * scale + shift, 0, 1)
            expected = torch.from_numpy(hsv_to_rgb(sat)).permute(0, 3, 1, 2).float()
            assert torch.allclose(CORRUPTIONS["saturate"].apply_float(x, severity, 0, table), expected, atol=1e-5)


def test_cli_lists_and_previews(project, capsys):
    assert main(["shifts"]) == 0
    listing = capsys.readouterr().out
    assert "covariate:" in listing and all(f"  {name}(" in listing for name in EXPECTED)
    assert main(["shifts", "preview", "--benchmark", "tiny", "--out", "grid.png", "--n", "1"]) == 0
    png = (project / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    width, height = Image.open(io.BytesIO(png)).size
    assert height > width  # 19 corruption rows, 6 columns
    assert main(["shifts", "preview", "--benchmark", "tiny", "--out", "grid.txt"]) == 2
    assert "--out" in capsys.readouterr().err and not (project / "grid.txt").exists()
