"""The 19 corruptions and two named variants (glass_blur_swap, frost_generated): parameter tables,
severity ordering, determinism, and exactness against the libraries the original CIFAR-10-C /
ImageNet-C generators used."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shiftbench.cli.main import main
from shiftbench.core.imageset import ImageSet
from shiftbench.data import load_dataset
from shiftbench.shifts import all_shifts, get_shift
from shiftbench.shifts.corruption import CORRUPTIONS, to_uint8

all_shifts()

# the published frost photographs, where this checkout has the shared test data beside it
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FROST_PHOTOS = (SHARED_DATA / "imagenet-c-frost" / "frost1.png").is_file()


@pytest.fixture(autouse=True)
def data_root_with_frost_photos(monkeypatch):
    if FROST_PHOTOS:
        monkeypatch.setenv("SHIFTBENCH_DATA", str(SHARED_DATA))


def needs_frost_photos(name: str) -> None:
    if name == "frost" and not FROST_PHOTOS:
        pytest.skip(f"the published frost photographs are not in {SHARED_DATA / 'imagenet-c-frost'}")

# The published generators' tables, severities 1 -> 5: (CIFAR-10-C table, ImageNet-C table).
EXPECTED = {
    "gaussian_noise": ((.04, .06, .08, .09, .10), (.08, .12, .18, .26, .38)),
    "shot_noise": ((500, 250, 100, 75, 50), (60, 25, 12, 5, 3)),
    "impulse_noise": ((.01, .02, .03, .05, .07), (.03, .06, .09, .17, .27)),
    "defocus_blur": (((.3, .4), (.4, .5), (.5, .6), (1, .2), (1.5, .1)),
                     ((3, .1), (4, .5), (6, .5), (8, .5), (10, .5))),
    "glass_blur": (((.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2)),
                   ((.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))),
    # the true swap the published code meant, under its own name, with the same tables
    "glass_blur_swap": (((.05, 1, 1), (.25, 1, 1), (.4, 1, 1), (.25, 1, 2), (.4, 1, 2)),
                        ((.7, 1, 2), (.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))),
    "motion_blur": (((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
                    ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))),
    "zoom_blur": (((1.06, .01), (1.11, .01), (1.16, .01), (1.21, .01), (1.26, .01)),
                  ((1.11, .01), (1.16, .01), (1.21, .02), (1.26, .02), (1.31, .03))),
    "snow": (((.1, .2, 1, .6, 8, 3, .95), (.1, .2, 1, .5, 10, 4, .9), (.15, .3, 1.75, .55, 10, 4, .9),
              (.25, .3, 2.25, .6, 12, 6, .85), (.3, .3, 1.25, .65, 14, 12, .8)),
             ((.1, .3, 3, .5, 10, 4, .8), (.2, .3, 2, .5, 12, 4, .7), (.55, .3, 4, .9, 12, 8, .7),
              (.55, .3, 4.5, .85, 12, 8, .65), (.55, .3, 2.5, .85, 12, 12, .55))),
    # (image weight, frost weight, shrink of the photos before cropping: 0.2 in the CIFAR-10-C recipe)
    "frost": (((1, .2, .2), (1, .3, .2), (.9, .4, .2), (.85, .4, .2), (.75, .45, .2)),
              ((1, .4, 1), (.8, .6, 1), (.7, .7, 1), (.65, .7, 1), (.6, .75, 1))),
    # the procedural texture that stood in for the photographs, under its own name
    "frost_generated": (((1, .2), (1, .3), (.9, .4), (.85, .4), (.75, .45)),
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
    # the originals' (loc, scale, sigma, threshold, intensity, mud)
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
    "glass_blur_swap": "blur sigma .05, .25, .4, .25, .4 goes down at severity 4 (while sweeps go 1 -> 2)",
    "elastic_transform": "the affine amplitude falls .08 -> .03 of the side while the elastic field grows; "
                         "on 32 px the affine dominates, so the change falls with severity",
    "spatter": "severities 1-3 are water drops, 4-5 mud: two different effects, not one scale",
    # tables monotone per parameter, but the change from the clean image is not on dark digits
    "frost": "from severity 3 to 4 only the image weight drops (.9 -> .85) at frost weight .4; where the "
             "frost layer brightens a pixel more than the weight darkens it, the output moves back to clean",
    "frost_generated": "as frost",
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


def test_the_nineteen_and_the_variants_are_registered_as_covariate_shifts():
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
    needs_frost_photos(name)
    fn = get_shift(name).fn
    outs = [fn(digits, seed=3, severity=s) for s in range(1, 6)]
    change = [mad(o, digits) for o in outs]
    for o in outs:
        assert o.images.dtype == torch.uint8 and o.images.shape == digits.images.shape
        assert torch.equal(o.labels, digits.labels)
    if name == "saturate":  # grey pixels have S = 0: scaling S alone leaves them grey
        assert change[:3] == [0.0, 0.0, 0.0] and 0 < change[3] < change[4]
    elif name in ("frost", "frost_generated"):  # grows wherever the frost weight grows
        assert change[0] < change[1] < change[2] and change[3] < change[4]
    elif name in NOT_MONOTONE:
        assert min(change) > 0
    else:
        assert all(b >= a for a, b in zip(change, change[1:])), change
        assert change[4] > change[0] > 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_same_seed_same_output_other_seed_differs_for_random_ones(name, digits):
    needs_frost_photos(name)
    fn = get_shift(name).fn
    a = fn(digits, seed=11, severity=4).images
    assert torch.equal(a, fn(digits, seed=11, severity=4).images)
    other = fn(digits, seed=12, severity=4).images
    assert torch.equal(a, other) == (name in DETERMINISTIC)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_large_and_single_channel_images(name):
    needs_frost_photos(name)
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
    c = CORRUPTIONS["gaussian_noise"]
    assert c.threaded
    per_block = max(1, c.block_values // (3 * 224 * 224))
    same = big_images(1).images.expand(2 * per_block + 1, -1, -1, -1).contiguous()
    data = ImageSet(same, torch.zeros(len(same), dtype=torch.int64), ("a",))
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


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_8_bit_versions_truncate_the_float_definition(name):
    c = CORRUPTIONS[name]
    if c.uint8_fn is None:
        pytest.skip(f"{name} has no 8-bit version")
    for data in (big_images(2), big_images(3, size=32)):
        for severity in (1, 3, 5):
            param = c.param(severity, "auto", data.image_size)
            fast = c.apply_uint8(data.images, severity, seed=0).double()
            exact = c.fn(data.images.double() / 255, param, None).clamp(0, 1) * 255
            # the published np.uint8 truncation of the exact value, up to float32 error (values
            # within it of a whole level may land on either side)
            assert bool(((exact - 2e-3).floor() <= fast).all() and (fast <= (exact + 2e-3).floor()).all()), \
                (name, severity)


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


def test_generated_frost_fast_paths_match_the_plain_ops():
    import torch.nn.functional as F

    from shiftbench.shifts.corruption import to_uint8
    from shiftbench.shifts.corruptions_weather import frost_generated, frost_generated_uint8
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
    for p in CORRUPTIONS["frost_generated"].imagenet:
        ours = frost_generated_uint8(images, p, torch.Generator().manual_seed(3)).int()
        ref = to_uint8(frost_generated(images.float() / 255, p, torch.Generator().manual_seed(3))).int()
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


def test_glass_copy_sweeps_equal_the_published_numpy_loop():
    from shiftbench.shifts.image_ops import local_copy_sweeps

    def published_sweeps(x, d, iterations, offsets):
        """The published loop, on a NumPy array: its "swap" copies x[h', w'] into x[h, w]."""
        for i in range(iterations):
            k = 0
            for h in range(x.shape[0] - d, d, -1):
                for w in range(x.shape[1] - d, d, -1):
                    dx, dy = offsets[i][k]
                    k += 1
                    h_prime, w_prime = h + dy, w + dx
                    x[h, w], x[h_prime, w_prime] = x[h_prime, w_prime], x[h, w]
        return x

    g = torch.Generator().manual_seed(0)
    for h, w, d, iters in [(12, 12, 1, 2), (9, 14, 2, 1), (16, 11, 3, 3), (20, 20, 4, 2), (7, 7, 4, 1)]:
        steps = len(range(h - d, d, -1)) * len(range(w - d, d, -1))
        offsets = torch.randint(-d, d, (iters, 4, steps, 2), generator=g)
        src = local_copy_sweeps(4, h, w, d, iters, None, "cpu", offsets=offsets)
        for i in range(4):
            ids = np.arange(h * w).reshape(h, w, 1).repeat(2, -1)  # every pixel tells where it came from
            expected = published_sweeps(ids, d, iters, offsets[:, i].numpy())[..., 0]
            assert src[i].tolist() == expected.flatten().tolist(), (h, w, d, iters)
    # the chains matter: with delta >= 2 some values move through several copies in one sweep
    offsets = torch.randint(-2, 2, (1, 1, 12 * 12, 2), generator=g)
    src = local_copy_sweeps(1, 16, 16, 2, 1, None, "cpu", offsets=offsets).view(16, 16)
    rows, cols = src // 16, src % 16
    grid = torch.arange(16)
    assert ((rows - grid[:, None]).abs().max() > 2) or ((cols - grid).abs().max() > 2)


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


def test_clipped_zoom_equals_zooming_the_whole_crop():
    import math

    from shiftbench.shifts.image_ops import clipped_zoom

    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    for size in (32, 37, 224):
        img = x[..., :size, : size - 3]
        h, w = img.shape[-2:]
        for z in (1.01, 1.06, 1.16, 1.26, 1.75, 4.0):
            ch, cw = math.ceil(h / z), math.ceil(w / z)
            crop = img[..., (h - ch) // 2 :, (w - cw) // 2 :][..., :ch, :cw]
            zh, zw = max(h, round(ch * z)), max(w, round(cw * z))
            up = torch.nn.functional.interpolate(crop, size=(zh, zw), mode="bilinear", align_corners=True)
            ref = up[..., (zh - h) // 2 :, (zw - w) // 2 :][..., :h, :w]
            assert torch.allclose(clipped_zoom(img, z), ref, atol=5e-5), (size, z)  # torch: float32 coordinates


def test_defocus_kernel_and_fft_correlation_match_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    from shiftbench.shifts.corruptions_blur import disk_kernel
    from shiftbench.shifts.image_ops import correlate2d

    x = torch.rand(2, 1, 30, 26, generator=torch.Generator().manual_seed(2))
    # on a 17 x 17 grid (21 x 21 for radius 10), zero rings dropped: 5 x 5 is a direct
    # correlation, 15 x 15 and 21 x 21 go through the FFT
    for radius, alias, side in [(1, 0.2, 5), (6, 0.5, 15), (10, 0.5, 21)]:
        k = disk_kernel(radius, alias)
        assert k.shape == (side, side)
        if radius <= 8:  # the disk and its blur stay inside the grid: nothing dropped but zeros
            assert abs(k.sum().item() - 1) < 1e-6
        ref = ndimage.correlate(x[:, 0].numpy(), k.numpy()[None], mode="mirror")
        np.testing.assert_allclose(correlate2d(x, k)[:, 0].numpy(), ref, atol=1e-5)


def test_defocus_kernels_hold_no_subnormal_taps_and_drop_only_rings_no_level_feels():
    from shiftbench.shifts.corruptions_blur import disk_kernel
    from shiftbench.shifts.corruption import levels_to_uint8
    from shiftbench.shifts.image_ops import correlate1d, correlate2d

    def untrimmed(radius, alias):  # the blurred disk on its whole grid, every tap kept
        half, size = (8, 3) if radius <= 8 else (int(radius), 5)
        t = torch.arange(-half, half + 1, dtype=torch.float32)
        disk = (t[:, None] ** 2 + t**2 <= radius**2).float()
        taps = torch.exp(-(torch.arange(size, dtype=torch.float64) - size // 2) ** 2 / (2 * alias**2))
        taps = (taps / taps.sum()).float()
        return correlate1d(correlate1d(disk / disk.sum(), taps, -1, "mirror"), taps, -2, "mirror")

    # products with a subnormal tap are subnormal and can slow the CPU convolution ~8x
    tiny = torch.finfo(torch.float32).tiny
    x = big_images(24, size=32).images.float() / 255
    for table in ("cifar", "imagenet"):
        for radius, alias in getattr(CORRUPTIONS["defocus_blur"], table):
            k = disk_kernel(radius, alias)
            assert not ((k != 0) & (k.abs() < tiny)).any(), (radius, alias)
            full = untrimmed(radius, alias)
            reach, half = k.shape[0] // 2, full.shape[0] // 2
            kept = full[half - reach : half + reach + 1, half - reach : half + reach + 1]
            assert torch.equal(k, kept.masked_fill(kept.abs() < tiny, 0.0))  # only outer rings dropped
            assert full.double().sum() - kept.double().sum() < 2**-50
            if table == "cifar":  # against the grid cut to its last nonzero ring (both correlations direct)
                nonzero = int((full != 0).nonzero().sub(half).abs().max())
                cut = full[half - nonzero : half + nonzero + 1, half - nonzero : half + nonzero + 1]
                assert torch.equal(levels_to_uint8(correlate2d(x, k) * 255), levels_to_uint8(correlate2d(x, cut) * 255))
    # severity 5's blurred disk has a second ring of 1e-23 taps: dropped, it is as small as severity 3's
    assert disk_kernel(*CORRUPTIONS["defocus_blur"].cifar[4]).shape == disk_kernel(*CORRUPTIONS["defocus_blur"].cifar[2]).shape


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
    assert height > width  # 21 corruption rows, 6 columns
    assert main(["shifts", "preview", "--benchmark", "tiny", "--out", "grid.txt"]) == 2
    assert "--out" in capsys.readouterr().err and not (project / "grid.txt").exists()


def test_banded_gaussian_equals_dense_matrix_and_scipy_on_large_images():
    ndimage = pytest.importorskip("scipy.ndimage")
    from shiftbench.shifts.image_ops import gaussian_band, gaussian_filter, gaussian_matrix

    x = torch.rand(2, 2, 224, 230, generator=torch.Generator().manual_seed(3))
    for sigma, mode, truncate in [(1.0, "mirror", 4.0), (3.0, "nearest", 4.0), (6.0, "nearest", 4.0),
                                  (2.24, "reflect", 3.0)]:
        assert 224 >= 2 * gaussian_band(sigma, truncate).shape[0]  # the banded path runs on both axes
        dense = gaussian_matrix(224, sigma, mode, truncate).float() @ (x @ gaussian_matrix(230, sigma, mode, truncate).float().T)
        ours = gaussian_filter(x, sigma, mode, truncate)
        assert (ours - dense).abs().max() < 1e-6
        ref = ndimage.gaussian_filter(x.numpy(), (0, 0, sigma, sigma), mode=mode, truncate=truncate)
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5)


def _distance_to_reference(edges: torch.Tensor, cap: float) -> torch.Tensor:
    """The plain form of spatter's _distance_to: ceil(cap) + 1 full rounds of 8 shifted minimums."""
    big = 1e6
    d = torch.where(edges, 0.0, big).float()
    for _ in range(int(math.ceil(cap)) + 1):
        p = F.pad(d, (1, 1, 1, 1), value=big)
        axial = torch.minimum(torch.minimum(p[..., :-2, 1:-1], p[..., 2:, 1:-1]),
                              torch.minimum(p[..., 1:-1, :-2], p[..., 1:-1, 2:]))
        diagonal = torch.minimum(torch.minimum(p[..., :-2, :-2], p[..., :-2, 2:]),
                                 torch.minimum(p[..., 2:, :-2], p[..., 2:, 2:]))
        d = torch.minimum(d, torch.minimum(axial + 1, diagonal + math.sqrt(2)))
    return d.clamp(max=cap)


def test_spatter_distance_and_3x3_filters_equal_their_plain_forms():
    ndimage = pytest.importorskip("scipy.ndimage")
    from shiftbench.shifts.corruptions_weather import EMBOSS, _distance_to
    from shiftbench.shifts.image_ops import box3, correlate2d, correlate3x3

    g = torch.Generator().manual_seed(5)
    for size, density in [(32, 0.05), (61, 0.002), (40, 0.0), (9, 1.0)]:
        edges = torch.rand(3, 1, size, size + 3, generator=g) < density
        assert torch.equal(_distance_to(edges, 20.0), _distance_to_reference(edges, 20.0))
    x = torch.randint(0, 256, (2, 1, 30, 27), generator=g).float()
    assert torch.equal(correlate3x3(x, EMBOSS), correlate2d(x, torch.tensor(EMBOSS)))  # exact on integers
    ref = ndimage.uniform_filter(x.numpy() / 7, (1, 1, 3, 3), mode="mirror")
    np.testing.assert_allclose(box3(x / 7).numpy(), ref, atol=1e-5)


def test_motion_blur_paths_equal_clamped_gathers():
    from shiftbench.shifts import image_ops

    def clamped(x, radius, sigma, angle):  # the plain form: one clamped-coordinate gather per tap
        n, c, h, w = x.shape
        i = torch.arange(2 * math.ceil(radius) + 1, dtype=torch.float64)
        k = torch.exp(-(i**2) / (2 * sigma**2))
        k = (k / k.sum()).float()
        theta = torch.deg2rad(angle.double())[:, None]
        ox, oy = torch.ceil(i * torch.cos(theta) - 0.5).long(), torch.ceil(i * torch.sin(theta) - 0.5).long()
        out = torch.zeros(n, c, h * w)
        for j in range(len(i)):
            r = (torch.arange(h)[None, :, None] + oy[:, j, None, None]).clamp(0, h - 1)
            q = (torch.arange(w)[None, None, :] + ox[:, j, None, None]).clamp(0, w - 1)
            idx = (r * w + q).reshape(n, 1, h * w).expand(n, c, h * w)
            out.add_(x.reshape(n, c, h * w).gather(2, idx), alpha=float(k[j]))
        return out.view_as(x)

    g = torch.Generator().manual_seed(6)
    for shape, radius, sigma in [((6, 3, 32, 29), 6, 2.0), ((2, 1, 70, 66), 15, 8.0), ((3, 3, 12, 12), 20, 15.0)]:
        x = torch.rand(shape, generator=g)
        angle = torch.rand(shape[0], generator=g) * 360 - 180
        ours = image_ops.motion_blur(x, radius, sigma, angle)
        assert torch.equal(ours, clamped(x, radius, sigma, angle))
        # both the gathered (small images) and the per-image sliced (large images) sums
        assert torch.equal(image_ops._shifted_sum_per_image(*_motion_args(x, radius, sigma, angle)), ours)
        assert torch.equal(image_ops._shifted_sum_gathered(*_motion_args(x, radius, sigma, angle)), ours)


def _motion_args(x, radius, sigma, angle):
    from shiftbench.shifts.image_ops import pad_axis

    width = 2 * math.ceil(radius) + 1
    i = torch.arange(width, dtype=torch.float64)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    theta = torch.deg2rad(angle.double())[:, None]
    ox, oy = torch.ceil(i * torch.cos(theta) - 0.5).long(), torch.ceil(i * torch.sin(theta) - 0.5).long()
    pad = width - 1
    padded = pad_axis(pad_axis(x, -2, pad, pad, "nearest"), -1, pad, pad, "nearest")
    return padded, (k / k.sum()).float().tolist(), oy + pad, ox + pad, x.shape[-2], x.shape[-1]


def test_gaussian_blur_on_8_bit_values_is_within_a_level_of_the_float_version():
    from shiftbench.shifts.corruption import to_uint8

    c = CORRUPTIONS["gaussian_blur"]
    for size in (32, 224):
        images = big_images(2, size=size).images
        for sigma in (0.4, 1.0, 3.0, 6.0):
            ours = c.uint8_fn(images, sigma, None).int()
            ref = to_uint8(c.fn(images.float() / 255, sigma, None)).int()
            assert (ours - ref).abs().max() <= 1


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_block_thread_pool_works_in_a_forked_child():
    import faulthandler
    import os

    from shiftbench.shifts.corruption import map_blocks

    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert map_blocks(lambda i: i * i, 4, cpu, True) == [0, 1, 4, 9]  # the parent's pool has threads now
        pid = os.fork()
        if pid == 0:  # the parent's pool threads did not fork: waiting on them would hang
            faulthandler.dump_traceback_later(20, exit=True)
            os._exit(0 if map_blocks(lambda i: i * i, 4, cpu, True) == [0, 1, 4, 9] else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        torch.set_num_threads(threads)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
