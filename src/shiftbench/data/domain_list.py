"""Image-list files, as the test-time-adaptation literature ships DomainNet-126: one `<domain>_list.txt`
per domain, each line `<relative image path> <label>` (e.g. `real/bird/real_032_000265.jpg 11`),
paths relative to the data folder that holds the domain folders.

params: `domains` (published order), `classes` (the names of labels 0..K-1, in label order),
`list_file` ("{domain}_list.txt", relative to the data folder; `lists` names a sub-folder
holding them), `holdout_fraction` and `split_seed` (the per-domain source_train /
source_val hold-out, data/domain_splits.py; test holds every listed image), geometry as
image_folder. A line that does not parse, a label outside 0..K-1 or a listed image that is
not there is one error naming the list file and its line.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side
from .domain_splits import domain_splits
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def read_image_list(list_path: Path, image_root: Path, num_classes: int) -> tuple[list[Path], list[int]]:
    """The (path, label) lines of one list file, checked: parsable, label in range, image present."""
    if not list_path.is_file():
        raise UserError("list file not found", source=str(list_path))
    paths, labels = [], []
    for number, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        where = f"{list_path}: line {number}"
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise UserError(f"expected '<image path> <label>', got {line[:120]!r}", source=where)
        label = int(parts[1])
        if not 0 <= label < num_classes:
            raise UserError(f"label {label} is outside 0..{num_classes - 1}", source=where)
        path = image_root / parts[0]
        if not path.is_file():
            raise UserError(f"listed image {parts[0]} not found under {image_root}", source=where)
        paths.append(path)
        labels.append(label)
    if not paths:
        raise UserError("the list file names no images", source=str(list_path))
    return paths, labels


@register_loader("domain_list")
def load_domain_list(manifest: Manifest, data_dir: Path | None = None, *, domains: list[str], classes: list[str],
                     list_file: str = "{domain}_list.txt", lists: str = "", holdout_fraction: Fraction = 0.1,
                     split_seed: Seed = 0, channels: Channels = 3, size: Side | None = None,
                     resize: Side | None = None, crop: Side | None = None,
                     window: Side | None = None) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    if "{domain}" not in list_file:
        raise UserError("must contain '{domain}'", source=manifest.source, field="params.list_file")
    paths: list[Path] = []
    labels: list[int] = []
    doms: list[int] = []
    for d, domain in enumerate(domains):
        found, y = read_image_list(root / lists / list_file.format(domain=domain), root, len(classes))
        paths += found
        labels += y
        doms += [d] * len(found)
    p = dict(channels=channels, size=size, resize=resize, crop=crop, window=window,
             holdout_fraction=holdout_fraction, split_seed=split_seed)
    return domain_splits(manifest.name, paths, torch.tensor(labels, dtype=torch.int64),
                         torch.tensor(doms, dtype=torch.int64), tuple(classes), tuple(domains), p, str(root))
