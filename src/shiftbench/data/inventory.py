"""Which datasets are on disk, and whether their files still match their manifests (`shiftbench data list`).

A manifest's data is present when its loader's folder is found (location.find_data). Its files
on disk are then checked against the manifest's hashes (data/fetch.check_file); files above
HASH_LIMIT bytes have only their size compared, unless `full` asks for every sha256 (a 7 GB
archive takes a minute to hash). A present set whose archive was deleted after unpacking, or
that a user put there unpacked, has nothing to check: it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .fetch import check_file
from .location import dataset_dir, find_data
from .manifest import Manifest

HASH_LIMIT = 256 << 20


@dataclass(frozen=True)
class DataState:
    status: str  # built-in | present | mismatch | missing
    detail: str


def data_state(manifest: Manifest, data_dir: str | Path | None = None, full: bool = False) -> DataState:
    if manifest.sha256 and not manifest.files:
        return DataState("built-in", "built from a package")
    if find_data(manifest, data_dir) is None:
        if manifest.downloadable:
            return DataState("missing", f"not fetched (`shiftbench data fetch {manifest.name}`)")
        return DataState("missing", f"not on disk (no plain download: see data_manifests/{manifest.name}.yaml)")
    folder = dataset_dir(manifest, data_dir)
    checked, unchecked = [], []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            unchecked.append(entry.path)
            continue
        if not full and path.stat().st_size > HASH_LIMIT:
            if entry.size is not None and path.stat().st_size != entry.size:
                return DataState("mismatch", f"on disk, CHECKSUM MISMATCH: {entry.path} has "
                                             f"{path.stat().st_size} bytes, the manifest says {entry.size}")
            unchecked.append(f"{entry.path} (size only)")
            continue
        check = check_file(path, entry)
        if check.status == "mismatch":
            return DataState("mismatch", f"on disk, CHECKSUM MISMATCH: {entry.path}: {check.detail}")
        (checked if check.status == "ok" else unchecked).append(entry.path)
    if not manifest.files:
        return DataState("present", "on disk (the manifest lists no files to check)")
    if not unchecked:
        return DataState("present", "on disk (verified)")
    return DataState("present", f"on disk ({len(checked)} of {len(manifest.files)} files verified; "
                                f"not checked: {', '.join(unchecked[:3])}{' ...' if len(unchecked) > 3 else ''})")
