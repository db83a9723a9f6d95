"""Batched image operations shared by the corruptions, in torch on whatever device the images are.

They follow the conventions of the libraries the original CIFAR-10-C / ImageNet-C generators
called (SciPy boundary modes and kernel radii, OpenCV's BORDER_REFLECT_101, Pillow's BOX
resampling, skimage's HSV), because those details decide what a corruption looks like at 32 px.
All functions take float images (N, C, H, W) unless they say otherwise.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, what cv2.COLOR_RGB2GRAY uses


# ----------------------------------------------------------------------------- boundaries and filters

def boundary_index(n: int, before: int, after: int, mode: str, device=None) -> torch.Tensor:
    """Source index of each position of a length-n axis padded by `before` / `after` (any amount).

    nearest: a a | a b c | c c (skimage's default).  reflect: b a | a b c | c b (SciPy 'reflect').
    mirror: c b | a b c | b a (SciPy 'mirror' = OpenCV BORDER_REFLECT_101).
    """
    i = torch.arange(-before, n + after, device=device)
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect":
        j = i.remainder(2 * n)
        return torch.where(j < n, j, 2 * n - 1 - j)
    if mode == "mirror":
        j = i.remainder(2 * n - 2)
        return torch.where(j < n, j, 2 * n - 2 - j)
    raise ValueError(f"unknown boundary mode {mode!r}")


def pad_axis(x: torch.Tensor, dim: int, before: int, after: int, mode: str) -> torch.Tensor:
    """x padded along dim (-1 or -2) under the boundary mode. Copies the interior and selects only
    the edges: index_select along the last axis is slow (~1.6 ns a value)."""
    n = x.shape[dim]
    idx = boundary_index(n, before, after, mode, x.device)
    return torch.cat([x.index_select(dim, idx[:before]), x, x.index_select(dim, idx[before + n :])], dim)


def filter_matrix(n: int, taps: torch.Tensor, mode: str) -> torch.Tensor:
    """(n, n) matrix A with (A @ v)[i] = sum_k taps[k] * v[i + k - r] under the boundary mode."""
    r = (len(taps) - 1) // 2
    idx = boundary_index(n, r, r, mode)
    cols = idx[torch.arange(n)[:, None] + torch.arange(2 * r + 1)]
    a = torch.zeros(n, n, dtype=taps.dtype)
    # built on the CPU: a CUDA scatter_add would sum folded taps in a varying order
    return a.scatter_add_(1, cols, taps.cpu().expand(n, -1).contiguous()).to(taps.device)


def correlate1d(x: torch.Tensor, taps: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """Correlate along dim (-1 or -2) with odd-length taps, as one matrix product with the
    boundary folded into the matrix: any kernel length, and BLAS beats a 1-channel conv on CPU."""
    a = filter_matrix(x.shape[dim], taps.to(x), mode)
    return x @ a.T if dim == -1 else a @ x


def gaussian_taps(sigma: float, truncate: float = 4.0, device=None) -> torch.Tensor:
    """SciPy's kernel, computed as SciPy does (float64): radius int(truncate * sigma + 0.5), normalised."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 / (sigma * sigma) * t**2)
    return k / k.sum()


@functools.lru_cache(maxsize=128)
def gaussian_matrix(n: int, sigma: float, mode: str, truncate: float) -> torch.Tensor:
    return filter_matrix(n, gaussian_taps(sigma, truncate), mode)


BAND_TILE = 32  # outputs per row of the banded product: small enough to skip most zeros, big enough for BLAS


@functools.lru_cache(maxsize=64)
def gaussian_band(sigma: float, truncate: float, tile: int = BAND_TILE) -> torch.Tensor:
    """(tile + 2r, tile) band B of the filter matrix: (window @ B)[i] = sum_k taps[k] * window[i + k]."""
    taps = gaussian_taps(sigma, truncate)
    b = torch.zeros(tile + len(taps) - 1, tile, dtype=taps.dtype)
    for i in range(tile):
        b[i : i + len(taps), i] = taps
    return b


def correlate_banded(x: torch.Tensor, band: torch.Tensor, dim: int, mode: str) -> torch.Tensor:
    """correlate1d along dim (-1 or -2) tile by tile: the axis is padded (boundary mode) to whole
    tiles plus r each side, and every tile's window of tile + 2r inputs is multiplied by the
    band in one GEMM, so the work per output is tile + 2r multiply-adds instead of n."""
    window, tile = band.shape
    r = (window - tile) // 2
    n = x.shape[dim]
    tiles = -(-n // tile)
    band = band.to(x)
    y = pad_axis(x, dim, r, tiles * tile - n + r, mode)
    if dim == -1:
        windows = y.unfold(-1, window, tile).contiguous()
        out = (windows.view(-1, window) @ band).view(*x.shape[:-1], tiles * tile)
        return out[..., :n]
    s = y.stride()
    windows = y.as_strided((*y.shape[:-2], tiles, window, y.shape[-1]), (*s[:-2], tile * s[-2], s[-2], s[-1]))
    out = torch.matmul(band.T, windows.contiguous())
    return out.view(*x.shape[:-2], tiles * tile, x.shape[-1])[..., :n, :]


def gaussian_along(x: torch.Tensor, dim: int, sigma: float, mode: str, truncate: float) -> torch.Tensor:
    n = x.shape[dim]
    band = gaussian_band(sigma, truncate)
    if n >= 2 * band.shape[0]:  # long axis: the band skips most of the dense matrix's zeros
        return correlate_banded(x, band, dim, mode)
    a = gaussian_matrix(n, sigma, mode, truncate).to(x)
    return x @ a.T if dim == -1 else a @ x


def gaussian_filter(x: torch.Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter over the last two axes (skimage.filters.gaussian uses mode 'nearest')."""
    if sigma <= 0:
        return x
    sigma, truncate = float(sigma), float(truncate)
    return gaussian_along(gaussian_along(x, -1, sigma, mode, truncate), -2, sigma, mode, truncate)


def correlate2d(x: torch.Tensor, kernel: torch.Tensor, mode: str = "mirror") -> torch.Tensor:
    """2-D correlation of every channel with one odd-sized kernel (cv2.filter2D with its default border)."""
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    y = x.reshape(-1, 1, h, w)
    y = y.index_select(-2, boundary_index(h, kh // 2, kh // 2, mode, x.device))
    y = y.index_select(-1, boundary_index(w, kw // 2, kw // 2, mode, x.device))
    if kh * kw <= 25:  # a 1-channel 7 x 7 convolution was already slower than the FFT, at 32 and 224 px
        return F.conv2d(y, kernel.to(x).view(1, 1, kh, kw)).view_as(x)
    # large kernels: circular cross-correlation by FFT on the padded image; the first h x w
    # outputs never wrap around, so they equal the direct correlation
    # (zero-padding further, to a length FFTs like, keeps that true)
    size = (fft_friendly(y.shape[-2]), fft_friendly(y.shape[-1]))
    spec = torch.fft.rfft2(y, s=size) * torch.fft.rfft2(kernel.to(x), s=size).conj()
    return torch.fft.irfft2(spec, s=size)[..., :h, :w].reshape(x.shape)


def fft_friendly(n: int) -> int:
    """The smallest length >= n with no prime factor above 5."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def box3(x: torch.Tensor) -> torch.Tensor:
    """cv2.blur(x, (3, 3)): 3x3 mean with BORDER_REFLECT_101, as sums of shifted views."""
    p = pad_axis(pad_axis(x, -2, 1, 1, "mirror"), -1, 1, 1, "mirror")
    rows = torch.add(p[..., :, :-2], p[..., :, 1:-1]).add_(p[..., :, 2:])
    return torch.add(rows[..., :-2, :], rows[..., 1:-1, :]).add_(rows[..., 2:, :]).div_(9)


def correlate3x3(x: torch.Tensor, kernel: tuple[tuple[float, ...], ...], mode: str = "mirror") -> torch.Tensor:
    """correlate2d with a 3x3 kernel given as numbers: a weighted sum of the shifted views of the
    padded image, zero taps skipped (a 1-channel 3x3 convolution is slow on the CPU)."""
    h, w = x.shape[-2:]
    p = pad_axis(pad_axis(x, -2, 1, 1, mode), -1, 1, 1, mode)
    out = None
    for i, row in enumerate(kernel):
        for j, k in enumerate(row):
            if k == 0:
                continue
            view = p[..., i : i + h, j : j + w]
            out = view * k if out is None else out.add_(view, alpha=k)
    return out if out is not None else torch.zeros_like(x)


# ----------------------------------------------------------------------------- geometry

def clipped_zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the centre by `factor` and crop back to size (scipy.ndimage.zoom, order 1, as the originals)."""
    h, w = x.shape[-2:]
    top, left = (h - zoom_crop_size(h, factor)) // 2, (w - zoom_crop_size(w, factor)) // 2
    return zoom_centre_crop(x, (h, w), factor, top, left)


def zoom_crop_size(n: int, factor: float) -> int:
    """The centre pixels clipped_zoom reads along an axis of length n: the rest never shows."""
    return math.ceil(n / factor)


def zoom_centre_crop(x: torch.Tensor, size: tuple[int, int], factor: float, top: int = 0, left: int = 0) -> torch.Tensor:
    """clipped_zoom of an image of `size` whose centre crop (zoom_crop_size per axis) starts at
    (top, left) of x: the whole image, or just its crop."""
    rows, cols = zoom_taps(size[0], float(factor)), zoom_taps(size[1], float(factor))
    # taps index x itself (index_select on a cropped view is slower than offset indices)
    y = lerp_axis(x, rows, -2, top) if rows is not None else x[..., top : top + size[0], :]
    if cols is None:
        return y[..., left : left + size[1]]
    # along rows index_select copies whole rows; along columns it gathers value by value,
    # 5x slower than transposing there and back
    return lerp_axis(y.mT.contiguous(), cols, -2, left).mT


@functools.lru_cache(maxsize=256)
def zoom_taps(n: int, factor: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Linear interpolation taps (left crop index, right crop index, weight of the right) for
    the n outputs of clipped_zoom along an axis of length n, or None when the zoomed size
    rounds back to the crop (no resampling).

    The originals crop ceil(n / factor) centre pixels, zoom them to round(crop * factor) with
    the corner pixels mapped onto each other (align_corners), and keep the centre n: only
    those n outputs are computed here.
    """
    crop = zoom_crop_size(n, factor)
    zoomed = max(n, round(crop * factor))
    if zoomed == crop:
        return None
    trim = (zoomed - n) // 2
    at = (torch.arange(n, dtype=torch.float64) + trim) * ((crop - 1) / (zoomed - 1))
    left = at.floor().clamp(max=crop - 1)
    right = (left + 1).clamp(max=crop - 1)
    return left.long(), right.long(), (at - left).float()


def lerp_axis(x: torch.Tensor, taps: tuple, dim: int, offset: int = 0) -> torch.Tensor:
    """Linear interpolation along dim (-1 or -2) with zoom_taps' taps, shifted by offset."""
    left, right, weight = (t.to(x.device) for t in taps)
    weight = weight.view(-1) if dim == -1 else weight.view(-1, 1)
    return x.index_select(dim, left + offset).lerp_(x.index_select(dim, right + offset), weight)


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle_deg: torch.Tensor) -> torch.Tensor:
    """ImageMagick's MotionBlurImage, one angle per image: a one-sided Gaussian line kernel.

    Width 2*ceil(radius)+1 taps, weight exp(-i^2 / 2 sigma^2) at tap i, tap i samples the
    pixel round(i * (cos a, sin a)) away (x right, y down), edge pixels repeated.
    """
    n, c, h, w = x.shape
    width = 2 * math.ceil(radius) + 1
    i = torch.arange(width, dtype=torch.float64, device=x.device)
    k = torch.exp(-(i**2) / (2 * sigma**2))
    k = (k / k.sum()).float()
    theta = torch.deg2rad(angle_deg.double())[:, None]
    ox = torch.ceil(i * torch.cos(theta) - 0.5).long()  # (n, width)
    oy = torch.ceil(i * torch.sin(theta) - 0.5).long()
    # |offset| <= width - 1: reading a replicate-padded copy equals clamping the coordinates
    pad = width - 1
    padded = pad_axis(pad_axis(x, -2, pad, pad, "nearest"), -1, pad, pad, "nearest")
    taps = k.tolist()
    if h * w >= PER_IMAGE_SLICES_PIXELS:
        return _shifted_sum_per_image(padded, taps, oy + pad, ox + pad, h, w)
    return _shifted_sum_gathered(padded, taps, oy + pad, ox + pad, h, w)


PER_IMAGE_SLICES_PIXELS = 64 * 64  # large images come few to a CPU block: a Python loop over them is cheap


def _shifted_sum_per_image(padded, taps, top, left, h, w):
    """sum_j taps[j] * padded[i, :, top[i, j] :+ h, left[i, j] :+ w] for every image i, one view each."""
    out = torch.zeros(padded.shape[0], padded.shape[1], h, w, dtype=padded.dtype, device=padded.device)
    top, left = top.tolist(), left.tolist()
    for i in range(len(out)):
        for j, k in enumerate(taps):
            out[i].add_(padded[i, :, top[i][j] : top[i][j] + h, left[i][j] : left[i][j] + w], alpha=k)
    return out


def _shifted_sum_gathered(padded, taps, top, left, h, w):
    """The same sum as _shifted_sum_per_image, one gather per tap over the flattened padded images."""
    n, c, ph, pw = padded.shape
    flat = padded.reshape(n, c, ph * pw)
    corner = (torch.arange(h, device=padded.device)[:, None] * pw + torch.arange(w, device=padded.device)).view(1, -1)
    start = top * pw + left  # (n, taps)
    out = torch.zeros(n, c, h * w, dtype=padded.dtype, device=padded.device)
    for j, k in enumerate(taps):
        idx = (corner + start[:, j, None]).view(n, 1, h * w).expand(n, c, h * w)
        out.add_(flat.gather(2, idx), alpha=k)
    return out.view(n, c, h, w)


def local_shuffle(n: int, h: int, w: int, delta: int, iterations: int, g: torch.Generator | None, device,
                  offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The glass-blur pixel shuffle as a permutation (n, h*w): out.flat[j] = in.flat[perm[j]].

    The original visits (row, col) from the bottom-right corner to the top-left and swaps each
    pixel with the one at a random (dy, dx) in [-delta, delta)^2. Swaps only interact when they
    lie within 2*delta of each other, so steps on the same wavefront 2*delta*row + col touch
    disjoint pixels and run together: the result is exactly the sequential one, with about
    2*delta*h + w batched steps instead of h*w Python steps. `offsets` (iterations, n, steps, 2)
    as (dy, dx) in the sequential visiting order replaces the random draw (for tests).
    """
    hs = torch.tensor(range(h - delta, delta, -1), dtype=torch.int64)
    ws = torch.tensor(range(w - delta, delta, -1), dtype=torch.int64)
    perm = torch.arange(h * w, device=device).expand(n, -1).contiguous()
    if len(hs) == 0 or len(ws) == 0:
        return perm
    hh, ww = torch.meshgrid(hs, ws, indexing="ij")  # row-major = the sequential visiting order
    front = (2 * delta * (h - delta - hh) + (w - delta - ww)).flatten()
    order = torch.argsort(front, stable=True).to(device)
    counts = torch.bincount(front).tolist()
    pos = (hh * w + ww).flatten().to(device)
    for it in range(iterations):
        if offsets is None:
            d = torch.randint(-delta, delta, (n, len(pos), 2), generator=g, device=device)
        else:
            d = offsets[it].to(device)
        target = (pos + d[..., 0] * w + d[..., 1])[:, order]  # (n, steps) in wavefront order
        p_all = pos[order]
        start = 0
        for k in counts:
            p, q = p_all[start : start + k], target[:, start : start + k]
            here = perm[:, p]
            there = perm.gather(1, q)
            perm[:, p] = there
            perm.scatter_(1, q, here)
            start += k
    return perm


def sweep_offsets(n: int, steps: int, delta: int, g: torch.Generator | None, device) -> torch.Tensor:
    """One glass-blur sweep's random offsets (n, steps, 2) as (dx, dy) in [-delta, delta), in
    the order the published loop draws them (np.random.randint(-delta, delta, size=(2,)))."""
    return torch.randint(-delta, delta, (n, steps, 2), generator=g, device=device)


def local_copy_sweeps(n: int, h: int, w: int, delta: int, iterations: int, g: torch.Generator | None, device,
                      offsets: torch.Tensor | None = None) -> torch.Tensor:
    """The published glass-blur pixel moves as an index map (n, h*w): out.flat[j] = in.flat[src[j]].

    The published loop visits (row, col) for row in range(h - delta, delta, -1), col likewise,
    and runs `x[r, c], x[r', c'] = x[r', c'], x[r, c]` with (r', c') = (r + dy, c + dx). On a
    NumPy array the right-hand items are views, so this copies x[r', c'] into x[r, c] and leaves
    x[r', c'] as it was: no swap. Each pixel is written at most once per sweep, so pixel p ends
    with the value (r', c') holds when p is visited: the sweep's input value, unless (r', c') was
    written earlier in the sweep, and then whatever that earlier step copied. Those references
    form chains towards earlier steps; they are followed by pointer doubling (a few batched
    gathers) instead of one Python step per pixel. `offsets` (iterations, n, steps, 2) as
    (dx, dy) in visiting order replaces the random draw (for tests).
    """
    src = torch.arange(h * w, device=device).expand(n, -1).contiguous()
    rows = torch.tensor(range(h - delta, delta, -1), dtype=torch.int64, device=device)
    cols = torch.tensor(range(w - delta, delta, -1), dtype=torch.int64, device=device)
    pos = (rows[:, None] * w + cols).flatten()  # row-major = the visiting order
    steps = len(pos)
    if steps == 0:
        return src
    step = torch.arange(steps, device=device)
    rank = torch.full((h * w,), steps, device=device)  # when each pixel is written; never: `steps`
    rank[pos] = step
    for it in range(iterations):
        d = sweep_offsets(n, steps, delta, g, device) if offsets is None else offsets[it].to(device)
        target = pos + d[..., 1] * w + d[..., 0]
        reads = src.new_empty(n, h * w).copy_(torch.arange(h * w, device=device))
        follow = reads.clone()
        reads[:, pos] = target  # the pixel each step reads
        # a target written earlier in the sweep holds what that step copied: follow it
        follow[:, pos] = torch.where(rank[target] < step, target, pos)
        while True:
            further = follow.gather(1, follow)
            if torch.equal(further, follow):
                break
            follow = further
        src = src.gather(1, reads.gather(1, follow))
    return src


# ----------------------------------------------------------------------------- colour

def grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of RGB images; 1-channel images are their own grey."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def colour(rgb: tuple[float, float, float], channels: int, device) -> torch.Tensor:
    """An RGB colour as (1, C, 1, 1); for 1-channel images its luma."""
    t = torch.tensor(rgb, dtype=torch.float32, device=device)
    if channels == 1:
        t = (t * torch.tensor(LUMA, device=device)).sum().view(1)
    return t.view(1, channels, 1, 1)


def small_gaussian_filter(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """gaussian_filter with mode 'nearest' for kernels of a few taps, as shifted-slice sums on
    an edge-padded copy: a handful of passes instead of two dense (side x side) products."""
    taps = gaussian_taps(sigma, truncate).float().tolist()
    r = len(taps) // 2
    h, w = x.shape[-2:]
    padded = F.pad(x.reshape(-1, 1, h, w), (r, r, r, r), mode="replicate")
    rows = padded[..., : w].mul(taps[0])
    for k in range(1, len(taps)):
        rows.add_(padded[..., k : k + w], alpha=taps[k])
    out = rows[..., :h, :].mul(taps[0])
    for k in range(1, len(taps)):
        out.add_(rows[..., k : k + h, :], alpha=taps[k])
    return out.view(x.shape)


# ----------------------------------------------------------------------------- resampling

@functools.lru_cache(maxsize=64)
def pil_box_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(out, in) weights of Pillow's BOX resampling along one axis (Resample.c precompute_coeffs)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    rows = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        row = [0.0] * in_size
        for j in range(lo, hi):
            u = (j - center + 0.5) / filterscale
            row[j] = 1.0 if -0.5 < u <= 0.5 else 0.0
        total = sum(row)
        rows.append([v / total for v in row] if total > 0 else row)
    return torch.tensor(rows, dtype=torch.float64)


@functools.lru_cache(maxsize=64)
def box_runs(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pillow's BOX weights as [lo, hi) runs of equally weighted source pixels per output pixel."""
    nz = pil_box_matrix(in_size, out_size) != 0
    lo = nz.float().argmax(1)
    return lo, lo + nz.sum(1)


def resample_axis(x: torch.Tensor, runs: tuple[torch.Tensor, torch.Tensor], dim: int) -> torch.Tensor:
    """Average each output's run of source pixels along dim (-1 or -2) as a difference of
    prefix sums (exact on 8-bit integer values)."""
    lo, hi = runs
    zero = torch.zeros_like(x.narrow(dim, 0, 1))
    prefix = torch.cat([zero, x.cumsum(dim)], dim)
    total = prefix.index_select(dim, hi.to(x.device)) - prefix.index_select(dim, lo.to(x.device))
    count = (hi - lo).clamp_min(1).to(x)
    return total / (count.view(-1) if dim == -1 else count.view(-1, 1))


def pil_box_resize(x255: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's Image.resize(size, BOX) on 8-bit values: horizontal pass, round, vertical pass, round."""
    h, w = x255.shape[-2:]
    out_h, out_w = size
    y = x255
    if out_w != w:
        y = torch.floor(resample_axis(y, box_runs(w, out_w), -1) + 0.5)
    if out_h != h:
        y = torch.floor(resample_axis(y, box_runs(h, out_h), -2) + 0.5)
    return y


def _round_divide(sums: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """floor(sums / count + 1/2) as uint8 (count broadcast along the axis), exact on integers:
    floor((s + count // 2) / count) as a multiply and a 16-bit shift (exact while count < 16)."""
    half = (count // 2).to(torch.int32)
    magic = (-(-(1 << 16) // count)).to(torch.int32)  # ceil(2^16 / count)
    return sums.to(torch.int32).add_(half).mul_(magic).bitwise_right_shift_(16).to(torch.uint8)


@functools.lru_cache(maxsize=64)
def _box_window_index(h: int, w: int, size: int, dim: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Where each output of a BOX pass finds its window sum in _box_axis_uint8's table, the
    window lengths, and how many lengths the table holds."""
    lo, hi = box_runs(w if dim == -1 else h, size)
    count = hi - lo
    longest = int(count.max())
    if dim == -1:  # flat position (window length - 1, row, first column)
        index = ((count - 1) * (h * w) + lo + torch.arange(h)[:, None] * w).flatten()
    else:  # row of the table viewed as (lengths * h, w)
        index = (count - 1) * h + lo
    return index, count, longest


def _box_axis_uint8(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """One Pillow BOX pass along dim (-1 or -2) on uint8 images, rounded as Pillow does.

    Pillow's runs partition the axis, so each output is the mean of a window of `count`
    consecutive pixels. Per plane, the table holds the sums of all windows of each length
    starting at every pixel, computed on the flattened plane (windows that run past the end
    of a row are never picked), and one select picks each output's window sum.
    """
    *lead, h, w = x.shape
    index, count, longest = _box_window_index(h, w, size, dim)
    index, count = index.to(x.device), count.to(x.device)
    planes = x.reshape(-1, h * w)
    if longest == 1:  # upscaling picks one source pixel per output
        table = planes
    else:
        table = planes.new_empty((planes.shape[0], longest, h * w), dtype=torch.int16)  # tails never picked
        table[:, 0].copy_(planes)
        step = 1 if dim == -1 else w
        for k in range(1, longest):
            end = h * w - k * step
            torch.add(table[:, k - 1, :end], table[:, 0, k * step :], out=table[:, k, :end])
    if dim == -1:
        flat = table.reshape(planes.shape[0], -1)
        picked = flat.gather(1, index.expand(planes.shape[0], -1)).view(*lead, h, size)
    else:
        picked = table.reshape(planes.shape[0], -1, w).index_select(1, index).view(*lead, size, w)
    if longest == 1:
        return picked
    return _round_divide(picked, count.view(-1) if dim == -1 else count.view(-1, 1))


def pil_box_resize_uint8(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """pil_box_resize on uint8 images (N, C, H, W), straight on 8-bit values."""
    h, w = x.shape[-2:]
    out_h, out_w = size
    if max(h / out_h, w / out_w) >= 15:  # _round_divide's shift is exact for windows below 16
        return pil_box_resize(x.float(), size).to(torch.uint8)
    y = x
    if out_w != w:
        y = _box_axis_uint8(y, out_w, -1)
    if out_h != h:
        y = _box_axis_uint8(y, out_h, -2)
    return y


# ----------------------------------------------------------------------------- procedural textures

def plasma_fractal(n: int, mapsize: int, decay: float, g: torch.Generator, device) -> torch.Tensor:
    """Diamond-square height maps (n, mapsize, mapsize) in [0, 1], as in the originals' fog.

    The random term is wibble * U(-wibble, wibble), wibble starting at 100 and divided by
    `decay` per level: the originals' quirk (the amplitude enters squared) is kept.

    Built level by level on dense grids (the originals assign strided slices of the full map):
    the grid of one level's points, its square centres and its two kinds of edge midpoints are
    interleaved into the next level's grid. Wrap-around neighbours as the originals' np.roll.
    All levels' uniforms are drawn at once: on small blocks the time goes into per-call overhead.
    """
    sides = [1 << i for i in range(max(0, mapsize.bit_length() - 1))]  # grid side before each level
    # U(-1, 1) as 24-bit integers centred on 0, in units of 2^-23
    noise = uniform_24bit((3 * n * sum(k * k for k in sides),), g, device).sub_(1 << 23)
    grid = torch.zeros(n, 1, 1, device=device)
    wibble, start = 100.0, 0
    for k in sides:
        level_noise = noise[start : start + 3 * n * k * k].view(3, n, k, k)
        grid = _plasma_level(grid, level_noise, wibble * wibble / (1 << 23))
        start += 3 * n * k * k
        wibble /= decay
    grid.sub_(grid.amin(dim=(1, 2), keepdim=True))  # (aminmax is several times slower here)
    return grid.div_(grid.amax(dim=(1, 2), keepdim=True))


def random_words(shape: tuple[int, ...], g: torch.Generator, device) -> torch.Tensor:
    """int32 values whose low 31 bits are uniform random bits.

    Cut from torch's 64-bit draws (63 random bits), one per 32-bit half: on the CPU about
    twice as fast as drawing 32-bit integers or torch.rand's floats.
    """
    count = math.prod(shape)
    words = torch.empty((count + 1) // 2, dtype=torch.int64, device=device).random_(generator=g)
    return words.view(torch.int32)[:count].view(shape)


def uniform_24bit(shape: tuple[int, ...], g: torch.Generator, device) -> torch.Tensor:
    """Integers uniform on [0, 2^24) (int32): torch.rand's float32 values times 2^24."""
    return random_words(shape, g, device).bitwise_and_((1 << 24) - 1)


def uniform(shape: tuple[int, ...], g: torch.Generator, device) -> torch.Tensor:
    """torch.rand(shape) in distribution (float32 multiples of 2^-24), from uniform_24bit."""
    return uniform_24bit(shape, g, device).float().mul_(1 / (1 << 24))


def _plasma_level(corner: torch.Tensor, noise: torch.Tensor, scale: float) -> torch.Tensor:
    """One diamond-square level: (n, k, k) grid points -> (n, 2k, 2k) grid.

    corner[i, j] is the point at (i, j) steps; the square centre at (i + 1/2, j + 1/2) averages
    its four corners, the edge midpoints at (i, j + 1/2) and (i + 1/2, j) average the two grid
    points and two centres around them; each average gets noise * scale (3 x (n, k, k)).
    """
    k = corner.shape[-1]
    ext = F.pad(corner, (0, 1, 0, 1), mode="circular")  # ext[i + 1, j + 1] = corner[i + 1, j + 1] wrapped
    columns = ext[:, :k] + ext[:, 1:]
    centre = (columns[:, :, :k] + columns[:, :, 1:]).mul_(0.25).add_(noise[0], alpha=scale)
    cext = F.pad(centre, (1, 0, 1, 0), mode="circular")  # cext[i, j] = centre[i - 1, j - 1] wrapped
    shared = centre + corner
    top_edge = (shared + cext[:, :k, 1:]).add_(ext[:, :k, 1:]).mul_(0.25).add_(noise[1], alpha=scale)
    left_edge = (shared + cext[:, 1:, :k]).add_(ext[:, 1:, :k]).mul_(0.25).add_(noise[2], alpha=scale)
    return _interleave(corner, top_edge, left_edge, centre)


def _interleave(even_even: torch.Tensor, even_odd: torch.Tensor, odd_even: torch.Tensor,
                odd_odd: torch.Tensor) -> torch.Tensor:
    """(n, k, k) x 4 -> (n, 2k, 2k) with out[2i + a, 2j + b] taken from the (a, b) input (float32)."""
    n, k, _ = even_even.shape
    # a complex number's parts lie side by side: torch.complex interleaves columns about 3x
    # faster than torch.stack or strided writes on the CPU
    rows = even_even.new_empty((n, k, 2, k), dtype=torch.complex64)
    torch.complex(even_even, even_odd, out=rows[:, :, 0])
    torch.complex(odd_even, odd_odd, out=rows[:, :, 1])
    return torch.view_as_real(rows).view(n, 2 * k, 2 * k)


@functools.lru_cache(maxsize=32)
def bicubic_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(in, out) weights of F.interpolate(mode='bicubic', align_corners=True) along one axis,
    read off by interpolating the identity (so border handling is torch's own)."""
    eye = torch.eye(in_size, dtype=torch.float64)[None, None]
    return F.interpolate(eye, size=(in_size, out_size), mode="bicubic", align_corners=True)[0, 0].float()


def bicubic_upsample(v: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """F.interpolate(v, size, mode='bicubic', align_corners=True) for small grids (..., k, l), as
    two matrix products: far cheaper than torch's CPU kernel when upsampling many times."""
    k, l = v.shape[-2:]
    rows = bicubic_matrix(k, size[0]).to(v.device)
    cols = bicubic_matrix(l, size[1]).to(v.device)
    return rows.T @ (v @ cols)


def next_power_of_two(v: int) -> int:
    return 1 << max(0, (v - 1).bit_length())
