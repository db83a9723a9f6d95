"""DomainBed's layout (PACS, OfficeHome, VLCS, TerraIncognita): `<root>/<domain>/<class>/<image>`.

params: `domains`, the domain folder names in the published order (DomainBed sorts them);
`classes`, the class folder names in the published order (DomainBed: sorted, ImageFolder
style): every domain must hold exactly these folders, so a missing or extra class folder is
one error naming it. `holdout_fraction` (DomainBed: 0.2) and `split_seed` make the
per-domain source_train / source_val hold-out (data/domain_splits.py; test holds every
image). Geometry as image_folder: `size`, or `resize` + `crop`; `window`, `channels`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.errors import UserError
from .common import Channels, Fraction, Seed, Side
from .domain_splits import domain_splits
from .image_folder import list_image_folder
from .location import require_data
from .manifest import Manifest
from .registry import DatasetSplits, register_loader


def list_domain_folders(root: Path, domains: list[str], classes: list[str]
                        ) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
    """Image paths, labels and domain indices of `<root>/<domain>/<class>/*`, domain by domain."""
    paths: list[Path] = []
    labels, doms = [], []
    for d, domain in enumerate(domains):
        folder = root / domain
        if not folder.is_dir():
            raise UserError(f"domain folder '{domain}' not found (expected domains: {', '.join(domains)})",
                            source=str(folder))
        missing = [c for c in classes if not (folder / c).is_dir()]
        if missing:
            raise UserError(f"class folder{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing",
                            source=str(folder))
        found, y, _ = list_image_folder(folder, tuple(classes))
        paths += found
        labels.append(y)
        doms.append(torch.full((len(found),), d, dtype=torch.int64))
    return paths, torch.cat(labels), torch.cat(doms)


@register_loader("domain_folders")
def load_domain_folders(manifest: Manifest, data_dir: Path | None = None, *, domains: list[str],
                        classes: list[str], holdout_fraction: Fraction = 0.2, split_seed: Seed = 0,
                        channels: Channels = 3, size: Side | None = None, resize: Side | None = None,
                        crop: Side | None = None, window: Side | None = None) -> DatasetSplits:
    root = require_data(manifest, data_dir)
    paths, labels, doms = list_domain_folders(root, list(domains), list(classes))
    p = dict(channels=channels, size=size, resize=resize, crop=crop, window=window,
             holdout_fraction=holdout_fraction, split_seed=split_seed)
    return domain_splits(manifest.name, paths, labels, doms, tuple(classes), tuple(domains), p, str(root))
