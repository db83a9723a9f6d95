"""`shiftbench data fetch` / `verify`: download a manifest's files, resume, check hashes, unpack.

A file is downloaded into `<file>.part`; an interrupted download resumes from
the .part's size (HTTP Range; file:// URLs seek). Only when the whole file's
sha256 (or md5, where that is all the manifest has) matches is it renamed into
place; a mismatch moves it aside to `<file>.corrupt` (replacing an older one:
one copy to inspect, not a pile) and stops with one line. Where only the start of
a sha256 is published (torch.hub file names: `resnet50-0676ba61.pth`), the file's
sha256 must start with it, a weaker check that says so. Archives marked
`extract` are unpacked after they verify, into a temporary folder first, then
moved into the data folder; a `.<file>.extracted` marker records the archive's
sha256 so a later fetch skips the work. No archive member may replace a file
the manifest lists (the verified archive itself included) or the marker.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..core.errors import UserError
from ..core.files import atomic_write_text
from ..core.progress import progress_bar
from .location import dataset_dir
from .manifest import Manifest, ManifestFile

CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass
class FileCheck:
    path: Path
    status: str  # ok | missing | mismatch | unverified
    detail: str = ""


def file_digests(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    hashes = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def check_file(path: Path, entry: ManifestFile) -> FileCheck:
    """Compare a file on disk with the manifest's sha256 and md5 (every one recorded must match)."""
    if not path.is_file():
        return FileCheck(path, "missing", "run `shiftbench data fetch` for it")
    expected = {a: h for a, h in (("sha256", entry.sha256), ("md5", entry.md5)) if h}
    if not expected and entry.sha256_prefix:
        got = file_digests(path, ("sha256",))["sha256"]
        if not got.startswith(entry.sha256_prefix):
            return FileCheck(path, "mismatch", f"sha256 {got}, manifest says it starts with {entry.sha256_prefix}")
        return FileCheck(path, "ok", f"sha256 starts with {entry.sha256_prefix} (only a {len(entry.sha256_prefix)}-digit "
                                     "prefix is published: a weaker check than a full sha256)")
    if not expected:
        return FileCheck(path, "unverified", "the manifest records no hash for this file")
    got = file_digests(path, tuple(expected))
    for algo, want in expected.items():
        if got[algo] != want:
            return FileCheck(path, "mismatch", f"{algo} {got[algo]}, manifest says {want}")
    return FileCheck(path, "ok", ", ".join(f"{a} {h[:16]}..." for a, h in got.items()))


def verify(manifest: Manifest, data_dir: Path | None = None) -> list[FileCheck]:
    folder = dataset_dir(manifest, data_dir)
    return [check_file(folder / f.path, f) for f in manifest.files]


def fetch(manifest: Manifest, data_dir: Path | None = None, progress: bool = True,
          log=print) -> Path:
    """Download, verify and unpack every file of the manifest; returns the dataset folder."""
    folder = dataset_dir(manifest, data_dir)
    where = manifest.source
    if not manifest.files:
        how = "the data ships with a package" if manifest.sha256 else "its description says how to get the data"
        raise UserError(f"the manifest lists no files to download ({how})", source=where)
    folder.mkdir(parents=True, exist_ok=True)
    for entry in manifest.files:
        target = folder / entry.path
        if not _inside(folder, target):
            raise UserError(f"file path '{entry.path}' leaves the data folder", source=where, field="files.path")
        if target.exists():
            check = check_file(target, entry)
            if check.status == "mismatch":
                aside = _move_aside(target)
                log(f"{entry.path}: on disk but {check.detail}; moved to {aside.name}, downloading again")
            else:
                log(f"{entry.path}: already here ({check.status})")
        if not target.exists():
            if not entry.url:
                raise UserError(f"'{entry.path}' has no url; put the file at {target}", source=where)
            _download_verified(entry, target, progress, log)
        if entry.extract:
            _extract_once(target, folder, entry, log, keep={Path(f.path).parts[0] for f in manifest.files})
    return folder


def _download_verified(entry: ManifestFile, target: Path, progress: bool, log) -> None:
    part = target.with_name(target.name + ".part")
    errors = []
    for url in [entry.url, *entry.mirrors]:
        try:
            _download(url, part, entry.size, progress, desc=entry.path)
            break
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
            log(f"{entry.path}: {errors[-1]}")
    else:
        kept = (f"; the partial file is kept at {part} and the next fetch resumes it" if part.exists()
                else "; nothing was kept")
        raise UserError(f"could not download '{entry.path}' ({'; '.join(errors)}){kept}")
    check = check_file(part, entry)
    if check.status == "mismatch":
        aside = _move_aside(part, target)
        raise UserError(f"'{entry.path}' does not match the manifest ({check.detail}); "
                        f"moved aside to {aside}, nothing was used")
    if check.status == "unverified":  # say what arrived, so it can be compared with a hash found elsewhere
        seen = file_digests(part, ("sha256",))["sha256"]
        log(f"{entry.path}: WARNING: no hash in the manifest, the download is not verified (sha256 {seen})")
    os.replace(part, target)
    log(f"{entry.path}: {('verified: ' + check.detail) if check.status == 'ok' else 'downloaded'}")


def _download(url: str, part: Path, size: int | None, progress: bool, desc: str) -> None:
    """Fetch url into part, resuming from part's current size when the server allows it."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if urlparse(url).scheme == "file":
        source = Path(url2pathname(urlparse(url).path))
        total = source.stat().st_size
        if offset > total:
            part.unlink()
            offset = 0
        with open(source, "rb") as src, open(part, "ab" if offset else "wb") as out:
            src.seek(offset)
            _copy(src, out, offset, total, progress, desc)
        return
    request = urllib.request.Request(url, headers={"User-Agent": "shiftbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing past our end: the .part is already complete
            return
        raise
    with response:
        resumed = offset and response.status == 206 and _range_start(response) == offset
        if offset and not resumed:
            offset = 0  # the server sent the whole file again
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else size
        with open(part, "ab" if resumed else "wb") as out:
            _copy(response, out, offset, total, progress, desc)
    if total is not None and part.stat().st_size != total:
        raise OSError(f"connection closed after {part.stat().st_size} of {total} bytes")


def _range_start(response) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _copy(src, out, offset: int, total: int | None, progress: bool, desc: str) -> None:
    with progress_bar(total, desc, progress, unit="B", initial=offset, unit_scale=True, unit_divisor=1024) as bar:
        while block := src.read(CHUNK):
            out.write(block)
            bar.update(len(block))


def _move_aside(path: Path, name_like: Path | None = None) -> Path:
    """path -> <name>.corrupt, replacing an earlier .corrupt copy (the newest bad download is the one to look at)."""
    aside = (name_like or path).with_name((name_like or path).name + ".corrupt")
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)
    os.replace(path, aside)
    return aside


def _inside(folder: Path, path: Path) -> bool:
    return os.path.commonpath([folder.resolve(), path.resolve()]) == str(folder.resolve())


def _extract_once(archive: Path, folder: Path, entry: ManifestFile, log, keep: set[str] = frozenset()) -> None:
    """Unpack archive into folder; `keep`: top-level names no member may replace (the manifest's files)."""
    marker = folder / f".{archive.name}.extracted"
    protected = set(keep) | {archive.name, marker.name, archive.name + ".part", archive.name + ".corrupt"}
    stamp = entry.sha256 or entry.md5 or "unverified"
    if marker.exists() and marker.read_text().strip() == stamp:
        return
    tmp = folder / f".{archive.name}.extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        log(f"{entry.path}: extracting")
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for name in z.namelist():
                    if not _inside(tmp, tmp / name):
                        raise UserError(f"archive member '{name}' leaves the data folder", source=str(archive))
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as t:
                for member in t.getmembers():
                    if not _inside(tmp, tmp / member.name) or member.issym() or member.islnk():
                        raise UserError(f"archive member '{member.name}' is a link or leaves the data folder",
                                        source=str(archive))
                t.extractall(tmp, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        else:
            raise UserError("marked extract but is neither a tar nor a zip archive", source=str(archive))
        clashes = sorted(item.name for item in tmp.iterdir() if item.name in protected)
        if clashes:
            raise UserError(f"archive member '{clashes[0]}' would replace a file of the manifest (or the archive "
                            "itself); nothing was extracted", source=str(archive))
        for item in tmp.iterdir():
            dest = folder / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            elif dest.exists():
                dest.unlink()
            os.replace(item, dest)
    except tarfile.TarError as e:
        raise UserError(f"cannot extract ({e})", source=str(archive)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(marker, stamp + "\n")
