"""Hugging Face `datasets`: a local `save_to_disk` folder, local parquet files, or a hub id (online only).

params, exactly one source:
  `disk`: a save_to_disk folder (relative to the data folder, or absolute)
  `parquet`: {split name: file or glob} (relative to the data folder, or absolute)
  `hub`: a hub id such as "uoft-cs/cifar10" (downloads through `datasets`; needs the network)
and `image_column` ("image"), `label_column` ("label"), `train_split` ("train"),
`test_split` ("test"; when missing, `test_fraction` of train is held out, seeded),
`channels` (3), `size` (resize to size x size), `val_fraction`, `split_seed`, `window`.
Class names come from the label column's ClassLabel feature, else params.classes,
else "0".."K-1".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core.errors import UserError
from ..core.paths import cache_dir
from .common import Channels, Fraction, Seed, Side, hold_out_test, pil_to_chw, source_and_test, stack_images
from .location import data_root, dataset_dir
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def _resolve(manifest: Manifest, data_dir: Path | None, rel: str) -> Path:
    path = Path(rel).expanduser()
    if path.is_absolute():
        return path
    here = dataset_dir(manifest, data_dir) / path
    return here if here.exists() or any(here.parent.glob(here.name)) else data_root(data_dir) / path


def open_splits(manifest: Manifest, data_dir: Path | None, p: dict[str, Any]):
    """A DatasetDict-like mapping split name -> datasets.Dataset."""
    import datasets

    sources = [k for k in ("disk", "parquet", "hub") if p.get(k)]
    where = f"data_manifests/{manifest.name}.yaml"
    if len(sources) != 1:
        raise UserError("give exactly one of params.disk, params.parquet, params.hub", source=where, field="params")
    hf_cache = str(cache_dir() / "huggingface")
    if sources[0] == "disk":
        folder = _resolve(manifest, data_dir, p["disk"])
        if not folder.is_dir():
            raise UserError(f"no save_to_disk folder at {folder}; put it there or point --data-dir / "
                            "$SHIFTBENCH_DATA at its parent", source=where, field="params.disk")
        loaded = datasets.load_from_disk(str(folder))
        return loaded if isinstance(loaded, datasets.DatasetDict) else {p["train_split"]: loaded}
    if sources[0] == "parquet":
        files = {}
        for split, pattern in dict(p["parquet"]).items():
            path = _resolve(manifest, data_dir, pattern)
            matches = sorted(path.parent.glob(path.name))
            if not matches:
                raise UserError(f"no parquet files match {path}", source=where, field=f"params.parquet.{split}")
            files[split] = [str(m) for m in matches]
        return datasets.load_dataset("parquet", data_files=files, cache_dir=hf_cache)
    try:
        return datasets.load_dataset(p["hub"], cache_dir=hf_cache)
    except Exception as e:  # network, auth or name problems all end here
        raise UserError(f"cannot load '{p['hub']}' from the Hugging Face hub ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})", source=where, field="params.hub") from None


def to_tensors(ds, p: dict[str, Any], where: str) -> tuple[torch.Tensor, torch.Tensor]:
    img_col, lab_col = p["image_column"], p["label_column"]
    for col in (img_col, lab_col):
        if col not in ds.column_names:
            raise UserError(f"no column '{col}'; columns: {', '.join(ds.column_names)}", source=where)
    arrays = []
    for item in ds[img_col]:
        if hasattr(item, "convert"):  # a PIL image (the datasets Image feature)
            arrays.append(pil_to_chw(item, int(p["channels"]), p["size"]))
        else:  # nested lists / arrays, H x W or H x W x C
            from PIL import Image

            arrays.append(pil_to_chw(Image.fromarray(np.asarray(item, dtype=np.uint8)), int(p["channels"]), p["size"]))
    return stack_images(arrays, where), torch.as_tensor(np.asarray(ds[lab_col]), dtype=torch.int64)


@register_loader("huggingface")
def load_huggingface(manifest: Manifest, data_dir: Path | None = None, *, disk: str | None = None,
                     parquet: dict[str, str] | None = None, hub: str | None = None, image_column: str = "image",
                     label_column: str = "label", train_split: str = "train", test_split: str = "test",
                     channels: Channels = 3, size: Side | None = None, test_fraction: Fraction = 0.2,
                     val_fraction: Fraction = 0.1, split_seed: Seed = 0, window: Side | None = None,
                     classes: list[str] | None = None) -> DatasetSplits:
    p = dict(disk=disk, parquet=parquet, hub=hub, image_column=image_column, label_column=label_column,
             train_split=train_split, test_split=test_split, channels=channels, size=size,
             test_fraction=test_fraction, val_fraction=val_fraction, split_seed=split_seed, window=window,
             classes=classes)
    splits = open_splits(manifest, data_dir, p)
    where = f"dataset '{manifest.name}'"
    if p["train_split"] not in splits:
        raise UserError(f"no split '{p['train_split']}'; splits: {', '.join(splits)}", source=where,
                        field="params.train_split")
    train = splits[p["train_split"]]
    train_x, train_y = to_tensors(train, p, where)
    if p["test_split"] in splits:
        test_x, test_y = to_tensors(splits[p["test_split"]], p, where)
    else:
        train_x, train_y, test_x, test_y = hold_out_test(train_x, train_y, float(p["test_fraction"]), int(p["split_seed"]))
    feature = train.features.get(p["label_column"])
    names = getattr(feature, "names", None) or p.get("classes")
    classes = tuple(map(str, names)) if names else tuple(str(i) for i in range(int(max(train_y.max(), test_y.max())) + 1))
    return source_and_test(manifest.name, train_x, train_y, test_x, test_y, classes, p)
