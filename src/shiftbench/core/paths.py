"""Where shiftbench keeps its cache and finds the project's folders; paths that must stay under a root;
tracebacks and messages with this machine's paths taken out."""

from __future__ import annotations

import os
import re
import sys
import sysconfig
from pathlib import Path

from .errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """SHIFTBENCH_CACHE, else $XDG_CACHE_HOME/shiftbench, else ~/.cache/shiftbench."""
    if env := os.environ.get("SHIFTBENCH_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "shiftbench"


def find_project_root(start: Path | None = None) -> Path | None:
    """The nearest folder above start (default: cwd) holding benchmarks/ and leaderboard/, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "benchmarks").is_dir() and (folder / "leaderboard").is_dir():
            return folder
    return None


def project_root(start: Path | None = None) -> Path:
    """The project this process works in: find_project_root, or a UserError saying how to get one.

    There is no fallback to wherever the package is installed: results, submissions and
    benchmarks belong to a project folder, never to a checkout or site-packages.
    """
    found = find_project_root(start)
    if found is None:
        raise UserError(f"not inside a shiftbench project: neither {(start or Path.cwd()).resolve()} nor a folder "
                        "above it holds benchmarks/ and leaderboard/; run shiftbench inside a project (a folder "
                        "with benchmarks/, data_manifests/ and leaderboard/submissions/, e.g. a checkout of the "
                        "shiftbench repository)")
    return found


def inside(root: Path, path: Path) -> bool:
    """Whether path, with symlinks and '..' resolved, is root or lies under it."""
    root, path = Path(root).resolve(), Path(path).resolve()
    return path == root or root in path.parents


def under(root: Path, *parts: str, what: str = "path", source: str | None = None, field: str | None = None) -> Path:
    """root/parts, or a UserError when the parts lead out of root (an absolute part or '..').

    The check is on the names, not on the disk: a symlink that the machine's owner put under
    the root (a data folder on another volume) is followed as they meant it to be.
    """
    base = Path(os.path.normpath(root))
    path = Path(os.path.normpath(base.joinpath(*parts)))
    if any(Path(p).is_absolute() for p in parts) or not (path == base or base in path.parents):
        shown = "/".join(str(p) for p in parts)
        raise UserError(f"{what} '{shown[:200]}' would lie outside {root}", source=source, field=field)
    return path


# ---- paths in published text ------------------------------------------------------------------

_ABSOLUTE = re.compile(r"(?<![\w.:/~$<-])/(?:[^\s\"'<>:,()\[\]]+/)*[^\s\"'<>:,()\[\]]+")


# paths from another machine: where they are recognisable, what they are relative to
_MARKERS = (("/site-packages/", "site-packages/"), ("/src/shiftbench/", "shiftbench/"),
            ("/.cache/shiftbench/", "$SHIFTBENCH_CACHE/"))


def _known_roots() -> list[tuple[str, str]]:
    """(absolute prefix, what replaces it), longest first."""
    roots = [(str(PACKAGE_DIR), "shiftbench"), (str(cache_dir().resolve()), "$SHIFTBENCH_CACHE")]
    project = find_project_root()
    if project is not None:
        roots.append((str(project), "."))
    for key in ("purelib", "platlib"):
        roots.append((sysconfig.get_paths()[key], "site-packages"))
    roots.append((sysconfig.get_paths()["stdlib"], f"python{sys.version_info.major}.{sys.version_info.minor}"))
    roots.append((str(Path.home()), "~"))
    return sorted({r for r in roots if r[0] not in ("", "/")}, key=lambda r: -len(r[0]))


def public_paths(text: str) -> str:
    """text with every absolute path made relative: to the project ('./...'), the package
    ('shiftbench/...'), site-packages, the standard library, the cache or the home folder, where
    it lies under one of them; else cut to its last component ('.../name'). For tracebacks and
    messages that a page publishes or a record keeps."""
    roots = _known_roots()

    def relative(match: re.Match) -> str:
        path = match.group(0)
        for prefix, name in roots:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return name + path[len(prefix.rstrip("/")):]
        for marker, name in _MARKERS:
            if marker in path:
                return name + path.split(marker, 1)[1]
        return ".../" + path.rstrip("/").rsplit("/", 1)[-1]

    return _ABSOLUTE.sub(relative, text)
