"""The published frost photographs (data manifest imagenet-c-frost) and the random crops of them
that the frost corruption overlays, drawn as the published generators draw them."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from ..core.errors import MissingData, UserError

MANIFEST = "imagenet-c-frost"
PHOTOS = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
PICKED = 5  # both published recipes pick with np.random.randint(5): frost6.jpg is never used


def photo_folder() -> Path:
    """The folder holding the photos under the data root, or a one-line UserError saying how to get them."""
    from ..data import data_root

    return _photo_folder(data_root())


@functools.lru_cache(maxsize=8)
def _photo_folder(root: Path) -> Path:
    from ..data import data_root, find_data, load_manifest

    folder = find_data(load_manifest(MANIFEST), root)
    missing = [name for name in PHOTOS[:PICKED] if folder is None or not (folder / name).is_file()]
    if missing:
        where = (f"which are not on disk (looked for {data_root(root) / MANIFEST})" if folder is None else
                 f"but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from {folder}")
        raise MissingData(f"frost overlays the published frost photographs, {where}: run `shiftbench data fetch "
                          f"{MANIFEST}`, or point --data-dir / $SHIFTBENCH_DATA at a data folder holding "
                          f"{MANIFEST}/ (frost_generated needs no files)", manifest=MANIFEST)
    return folder


@functools.lru_cache(maxsize=4)
def photos(folder: Path, scale: float) -> tuple[torch.Tensor, ...]:
    """The photos shrunk by `scale` as the recipes do before cropping, as uint8 RGB (3, H, W).

    cv2.imread drops the PNGs' alpha channel, as Pillow's convert('RGB') does. The CIFAR-10-C
    recipe shrinks the photos with cv2.resize(fx=0.2, fy=0.2) (bilinear, pixel centres aligned):
    at a scale of exactly 1/5 every output pixel centre falls on source pixel 5 i + 2, so the
    resize picks those pixels unchanged. The ImageNet-C recipe crops the photos as they are.
    """
    import numpy as np
    from PIL import Image

    step = round(1 / scale)
    if abs(step * scale - 1) > 1e-9 or step % 2 == 0:
        raise NotImplementedError(f"frost photos shrunk by {scale}: only 1 / odd numbers pick pixels unchanged")
    out = []
    for name in PHOTOS[:PICKED]:
        with Image.open(folder / name) as im:
            rgb = torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)
        if step > 1:
            h, w = (round(side * scale) for side in rgb.shape[1:])  # cv2's output size
            first = (step - 1) // 2
            rgb = rgb[:, first : first + step * h : step, first : first + step * w : step].contiguous()
        out.append(rgb)
    return tuple(out)


def frost_crops(n: int, h: int, w: int, scale: float, g: torch.Generator, device) -> torch.Tensor:
    """uint8 (n, 3, h, w): for each image one of the first five photos, uniformly, and a crop
    whose top-left corner is uniform on [0, H - h) x [0, W - w), as the published
    np.random.randint(5) and np.random.randint(0, H - h) (which never reaches the last row
    or column a crop could start at)."""
    sources = photos(photo_folder(), scale)
    heights = torch.tensor([p.shape[1] for p in sources])
    widths = torch.tensor([p.shape[2] for p in sources])
    if bool((heights <= h).any() or (widths <= w).any()):
        raise UserError(f"frost: {h} x {w} px images do not fit in the published frost photos shrunk by {scale} "
                        f"(at least {int(heights.min())} px high, {int(widths.min())} px wide); "
                        f"use {'table: imagenet or ' if scale < 1 else ''}frost_generated")
    pick, top, left = crop_choices(n, heights - h, widths - w, g, device)
    flat = _flat_photos(sources, device)
    starts = torch.tensor([0] + [p.shape[1] * p.shape[2] for p in sources]).cumsum(0)[:-1]
    window = torch.arange(h)[:, None] * widths[pick][:, None, None] + torch.arange(w)  # (n, h, w)
    index = (starts[pick] + top * widths[pick] + left)[:, None, None] + window
    return flat[:, index.to(device).view(-1)].view(3, n, h, w).transpose(0, 1)


def crop_choices(n: int, rows: torch.Tensor, cols: torch.Tensor, g: torch.Generator, device):
    """(pick, top, left) on the CPU, (n,) each: a photo uniform among the first five, then a corner
    uniform on [0, rows[pick]) x [0, cols[pick])."""
    pick = torch.randint(0, PICKED, (n,), generator=g, device=device).cpu()
    corner = torch.rand((n, 2), generator=g, device=device, dtype=torch.float64).cpu()
    return pick, (corner[:, 0] * rows[pick]).long(), (corner[:, 1] * cols[pick]).long()


@functools.lru_cache(maxsize=8)
def _flat_photos(sources: tuple[torch.Tensor, ...], device) -> torch.Tensor:
    """The photos' pixels side by side (3, total), on the images' device."""
    return torch.cat([p.reshape(3, -1) for p in sources], 1).to(device)
