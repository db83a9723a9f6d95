"""The `wilds` package's on-disk layouts, read without the package: camelyon17 v1.0, iwildcam v2.0,
fmow v1.1 and waterbirds v1.0 (also group_DRO's waterbird_complete95_forest2water2 folder).

Each data folder `<name>_v<version>/` holds a metadata CSV; the official split of every row
is computed as the package computes it:
  camelyon17  metadata.csv (index column; patient read as text), y = tumor, image
              patches/patient_P_node_N/patch_patient_P_node_N_x_X_y_Y.png; split column
              0 train / 1 id_val, then center 1 -> val (OOD), center 2 -> test; groups: center
  iwildcam    metadata.csv, split column train / val / test / id_val / id_test (text), y,
              image train/<filename>; no groups; its metric is macro-F1
  fmow        rgb_metadata.csv (+ country_code_mapping.csv: alpha-3 -> region), image
              images/rgb_img_<row>.png (row of the full CSV; `seq` rows dropped); official split
              time_after_2016: timestamp >= 2016 is OOD test, 2013-2015 OOD val, earlier rows
              train / id_val / id_test by the split column; groups: region (first-seen order,
              unknown codes 'Other'); its metric is worst-region accuracy, 'Other' left out
  waterbirds  metadata.csv (img_filename, y, split 0 train / 1 val / 2 test, place),
              groups y * 2 + place (landbird/land, landbird/water, waterbird/land, waterbird/water)

source_train is the `train` split, source_val `id_val` (waterbirds: `val`), test the splits
named in `test_splits`, each row's split its domain (ImageSet.domains), so a `domain_subset`
scenario plays one of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..core.errors import UserError
from ..core.imageset import ImageSet
from .common import Channels, Side
from .image_folder import decode_images
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader

Layout = Literal["camelyon17", "iwildcam", "fmow", "waterbirds"]


def read_csv(path: Path, columns: list[str], **kwargs):
    import pandas as pd

    if not path.is_file():
        raise UserError("metadata file not found", source=str(path))
    try:
        df = pd.read_csv(path, **kwargs)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"not a readable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                        source=str(path)) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UserError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                        f"columns: {', '.join(map(str, df.columns))[:300]}", source=str(path))
    return df


def int_column(df, column: str, path: Path) -> np.ndarray:
    values = df[column].to_numpy()
    if not np.issubdtype(values.dtype, np.integer):
        raise UserError(f"column {column} must hold integers, got {values.dtype}", source=str(path))
    return values.astype(np.int64)


def camelyon17(root: Path, classes: list[str]):
    path = root / "metadata.csv"
    df = read_csv(path, ["patient", "node", "x_coord", "y_coord", "tumor", "slide", "center", "split"],
                  index_col=0, dtype={"patient": "str"})
    y, center, split = (int_column(df, c, path) for c in ("tumor", "center", "split"))
    names = np.array(["train", "id_val"], dtype=object)[np.clip(split, 0, 1)]
    names[center == 1], names[center == 2] = "val", "test"
    files = [f"patches/patient_{p}_node_{n}/patch_patient_{p}_node_{n}_x_{x}_y_{yy}.png"
             for p, n, x, yy in df[["patient", "node", "x_coord", "y_coord"]].itertuples(index=False, name=None)]
    groups = center
    return files, y, names, groups, tuple(f"hospital{i}" for i in range(int(center.max()) + 1)), ()


def iwildcam(root: Path, classes: list[str]):
    path = root / "metadata.csv"
    df = read_csv(path, ["split", "y", "filename"])
    return ([f"train/{f}" for f in df["filename"]], int_column(df, "y", path), df["split"].astype(str).to_numpy(),
            None, (), ("macro_f1",))


def fmow(root: Path, classes: list[str]):
    import pandas as pd

    path = root / "rgb_metadata.csv"
    df = read_csv(path, ["split", "category", "country_code", "timestamp"])
    mapping = read_csv(root / "country_code_mapping.csv", ["alpha-3", "region"])
    region_of = dict(zip(mapping["alpha-3"], mapping["region"]))
    try:
        ts = pd.to_datetime(df["timestamp"], utc=True)
    except (ValueError, TypeError) as e:
        raise UserError(f"column timestamp: {e}", source=str(path)) from None
    test_ood = np.asarray(ts >= pd.Timestamp("2016-01-01", tz="UTC"))
    val_ood = np.asarray(ts >= pd.Timestamp("2013-01-01", tz="UTC")) & ~test_ood
    csv_split = df["split"].astype(str).to_numpy()
    names = np.full(len(df), "", dtype=object)
    names[~(test_ood | val_ood) & (csv_split == "train")] = "train"
    names[~(test_ood | val_ood) & (csv_split == "val")] = "id_val"
    names[~(test_ood | val_ood) & (csv_split == "test")] = "id_test"
    names[val_ood & (csv_split == "val")] = "val"
    names[test_ood & (csv_split == "test")] = "test"
    unknown = sorted(set(df["category"]) - set(classes))
    if unknown:
        raise UserError(f"unknown categories {unknown[:5]}", source=str(path))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in df["category"]], dtype=np.int64)
    regions = [region_of.get(code, "Other") for code in df["country_code"]]
    region_names = tuple(dict.fromkeys(regions))  # first-seen order, as the package numbers them
    groups = np.array([region_names.index(r) for r in regions], dtype=np.int64)
    files = [f"images/rgb_img_{i}.png" for i in range(len(df))]
    keep = csv_split != "seq"
    return ([f for f, k in zip(files, keep) if k], y[keep], names[keep], groups[keep], region_names,
            ("worst_region_accuracy",))


def waterbirds(root: Path, classes: list[str]):
    path = root / "metadata.csv"
    df = read_csv(path, ["img_filename", "y", "split", "place"])
    y, split, place = (int_column(df, c, path) for c in ("y", "split", "place"))
    if not np.isin(place, (0, 1)).all():
        raise UserError("column place must be 0 (land) or 1 (water)", source=str(path))
    if not np.isin(split, (0, 1, 2)).all():
        raise UserError("column split must be 0 (train), 1 (val) or 2 (test)", source=str(path))
    names = np.array(["train", "val", "test"], dtype=object)[split]
    return (list(df["img_filename"].astype(str)), y, names, y * 2 + place,
            ("landbird_on_land", "landbird_on_water", "waterbird_on_land", "waterbird_on_water"), ())


LAYOUTS = {"camelyon17": camelyon17, "iwildcam": iwildcam, "fmow": fmow, "waterbirds": waterbirds}
SOURCE_VAL = {"camelyon17": "id_val", "iwildcam": "id_val", "fmow": "id_val", "waterbirds": "val"}


@register_loader("wilds_metadata")
def load_wilds_metadata(manifest: Manifest, data_dir: Path | None = None, *, layout: Layout,
                        classes: list[str], test_splits: list[str], channels: Channels = 3,
                        size: Side | None = None, resize: Side | None = None, crop: Side | None = None,
                        window: Side | None = None) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    files, y, split_names, groups, group_names, metrics = LAYOUTS[layout](root, list(classes))
    csv = root / ("rgb_metadata.csv" if layout == "fmow" else "metadata.csv")
    if len(y) and not (0 <= y.min() and y.max() < len(classes)):
        bad = int(y[(y < 0) | (y >= len(classes))][0])
        raise UserError(f"label {bad} is outside 0..{len(classes) - 1}", source=str(csv))
    missing = next((f for f in files if not (root / f).is_file()), None)
    if missing is not None:
        raise UserError(f"image {missing} named in the metadata is not on disk", source=str(csv))

    def imageset(which: list[str], domain_names: tuple[str, ...] = ()) -> ImageSet:
        rows = np.flatnonzero(np.isin(split_names, which))
        if not len(rows):
            raise UserError(f"no rows in split{'s' if len(which) > 1 else ''} {', '.join(which)}", source=str(csv))
        images = decode_images([root / files[i] for i in rows], int(channels), size, resize, crop, str(root))
        doms = (torch.tensor([which.index(split_names[i]) for i in rows], dtype=torch.int64)
                if domain_names else None)
        meta = {"metrics": list(metrics), "group_names": list(group_names)} if metrics or group_names else {}
        return ImageSet(images, torch.from_numpy(y[rows]).to(torch.int64), tuple(classes),
                        groups=None if groups is None else torch.from_numpy(np.asarray(groups)[rows]).to(torch.int64),
                        domains=doms, domain_names=domain_names, window=window, meta=meta)

    return DatasetSplits(manifest.name, imageset(["train"]), imageset([SOURCE_VAL[layout]]),
                         imageset(list(test_splits), tuple(test_splits)))

