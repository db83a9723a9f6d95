"""The frost corruption reads the published frost photographs through the imagenet-c-frost data
manifest: fetched like any dataset, found under the data root, never replaced by anything else
when missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO
from shiftbench.cli import main
from shiftbench.data import load_manifest
from shiftbench.core.errors import UserError
from shiftbench.core.imageset import ImageSet
from shiftbench.shifts import all_shifts, frost_photos, get_shift

all_shifts()
SHARED_FROST = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-c-frost"
needs_photos = pytest.mark.skipif(not (SHARED_FROST / "frost1.png").is_file(),
                                  reason=f"the published frost photographs are not in {SHARED_FROST}")



def images(n: int, size: int, channels: int = 3) -> ImageSet:
    x = torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(size), dtype=torch.uint8)
    return ImageSet(x, torch.zeros(n, dtype=torch.int64), ("a",))


def test_the_manifest_is_an_asset_with_the_six_photos_and_their_license():
    m = load_manifest(REPO / "data_manifests" / "imagenet-c-frost.yaml")
    assert m.kind == "asset" and not m.loader and "Apache-2.0" in m.license
    names = [f.path for f in m.files]
    assert names[:6] == list(frost_photos.PHOTOS) and "LICENSE" in names
    assert all(f.sha256 and f.url.startswith("https://github.com/hendrycks/robustness/raw/master/") for f in m.files)


def test_a_dataset_manifest_still_needs_a_loader_and_an_asset_has_none(proj):
    (proj / "data_manifests" / "noloader.yaml").write_text("name: noloader\nfiles: []\n")
    (proj / "data_manifests" / "assetloader.yaml").write_text("name: assetloader\nkind: asset\nloader: mnist\n")
    with pytest.raises(UserError, match="needs 'loader'"):
        load_manifest("noloader")
    with pytest.raises(UserError, match="has no loader"):
        load_manifest("assetloader")


@needs_photos
def test_data_fetch_verify_and_list_serve_the_photos(proj, capsys):
    path = proj / "data_manifests" / "imagenet-c-frost.yaml"
    raw = yaml.safe_load(path.read_text())
    for f in raw["files"]:  # the same files and hashes, served from the local copy
        f["url"] = (SHARED_FROST / f["path"]).as_uri()
    path.write_text(yaml.safe_dump(raw))
    assert main(["data", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("imagenet-c-frost"))
    assert "not fetched" in line and "Apache-2.0" in line
    assert main(["data", "fetch", "imagenet-c-frost", "--quiet"]) == 0
    folder = proj.parent / "data" / "imagenet-c-frost"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*frost_photos.PHOTOS, "LICENSE"])
    assert main(["data", "verify", "imagenet-c-frost"]) == 0
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("imagenet-c-frost"))
    assert "on disk" in line
    out = get_shift("frost").fn(images(4, 32), seed=0, severity=5)
    assert out.images.shape == (4, 3, 32, 32)


def test_frost_without_the_photos_stops_with_one_line_saying_how_to_fetch_them(proj):
    with pytest.raises(UserError) as e:
        get_shift("frost").fn(images(2, 32), seed=0, severity=3)
    message = str(e.value)
    assert "\n" not in message and "shiftbench data fetch imagenet-c-frost" in message
    assert "SHIFTBENCH_DATA" in message and "frost_generated" in message
    # the texture is a shift of its own, which needs no files
    assert get_shift("frost_generated").fn(images(2, 32), seed=0, severity=3).images.shape == (2, 3, 32, 32)
    # a folder that lacks a photo is not enough either
    folder = proj.parent / "data" / "imagenet-c-frost"
    folder.mkdir(parents=True)
    (folder / "frost1.png").write_bytes(b"")
    with pytest.raises(UserError, match="frost2.png, frost3.png, frost4.jpg, frost5.jpg are missing"):
        get_shift("frost").fn(images(2, 32), seed=0, severity=3)


def test_the_preview_draws_frost_as_a_labelled_placeholder_and_names_it_on_one_line(proj, capsys):
    # the preview draws every corruption, frost among them, and still works offline
    assert main(["shifts", "preview", "--benchmark", "tiny", "--out", "grid.png", "--n", "1"]) == 0
    out, err = capsys.readouterr()
    assert (proj / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "grid.png" in out
    assert err.count("\n") == 1 and "frost (`shiftbench data fetch imagenet-c-frost`)" in err
    assert "frost_generated" not in err  # the texture needs no files and is drawn


def test_a_placeholder_row_keeps_the_clean_images_and_replaces_only_the_missing_shift():
    from shiftbench.cli.preview import corruption_grid, figure, strip

    data = images(2, 32)
    rows, missing = corruption_grid(data, ["frost", "frost_generated"], seed=0)
    assert list(missing) == ["frost"] and missing["frost"].manifest == "imagenet-c-frost"
    (_, frost_cells), (_, drawn_cells) = rows
    clean = strip(data.images)
    assert torch.equal(frost_cells[0], clean) and torch.equal(drawn_cells[0], clean)
    for placeholder, drawn in zip(frost_cells[1:], drawn_cells[1:]):
        assert placeholder.shape == drawn.shape and placeholder.dtype == torch.uint8
        assert not torch.equal(placeholder, drawn) and not torch.equal(placeholder, clean)
        # grey stripes, nothing of the images: every channel equal, two levels only
        assert torch.equal(placeholder[..., 0:1].expand_as(placeholder), placeholder)
        assert len(placeholder.unique()) == 2
    # the drawn row is frost_generated itself, severity by severity
    for s in range(1, 6):
        assert torch.equal(drawn_cells[s], strip(get_shift("frost_generated").fn(data, seed=0, severity=s).images))
    labels = [t.get_text() for t in figure(rows, missing, "t").axes[0].texts]
    assert labels == ["frost: files not on disk, run `shiftbench data fetch imagenet-c-frost`"]


@needs_photos
def test_crops_come_from_the_first_five_photos_uniformly_and_never_start_at_the_last_corner(monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_DATA", str(SHARED_FROST.parent))
    sources = frost_photos.photos(frost_photos.photo_folder(), 0.2)
    # cv2.resize(fx=0.2) output sizes: round(side * 0.2)
    assert [tuple(p.shape[1:]) for p in sources] == [(120, 180), (63, 112), (63, 112), (70, 105), (99, 132)]
    rows = torch.tensor([p.shape[1] for p in sources]) - 32
    cols = torch.tensor([p.shape[2] for p in sources]) - 32
    pick, top, left = frost_photos.crop_choices(200_000, rows, cols, torch.Generator().manual_seed(0), "cpu")
    counts = torch.bincount(pick, minlength=5)
    assert len(counts) == 5 and (counts - 40_000).abs().max() < 1_000
    for k in range(5):
        mine = pick == k
        assert int(top[mine].min()) == 0 and int(top[mine].max()) == int(rows[k]) - 1
        assert int(left[mine].min()) == 0 and int(left[mine].max()) == int(cols[k]) - 1


@needs_photos
def test_single_channel_large_and_too_large_images(monkeypatch):
    monkeypatch.setenv("SHIFTBENCH_DATA", str(SHARED_FROST.parent))
    frost = get_shift("frost").fn
    grey = frost(images(2, 40, channels=1), seed=0, severity=5).images
    assert grey.shape == (2, 1, 40, 40) and grey.dtype == torch.uint8
    assert frost(images(2, 300), seed=0, severity=5).images.shape == (2, 3, 300, 300)
    with pytest.raises(UserError, match="do not fit .* use table: imagenet or frost_generated"):
        frost(images(2, 64), seed=0, severity=5)  # the CIFAR-10-C table shrinks the photos to 63 rows
    assert frost(images(2, 64), seed=0, severity=5, table="imagenet").images.shape == (2, 3, 64, 64)
    with pytest.raises(UserError, match="do not fit .* use frost_generated"):
        frost(images(1, 320), seed=0, severity=5)
