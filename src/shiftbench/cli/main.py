"""The `shiftbench` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import UserError, one_line
from ..core.version import __version__


def _common_paths(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, default=None, help="results folder (default: leaderboard/results)")
    p.add_argument("--site", type=Path, default=None, help="site folder (default: leaderboard/site)")


def _run_options(p: argparse.ArgumentParser) -> None:
    from ..run.executors import EXECUTORS
    from ..run.executors.limits import DEFAULT_CELL_TIMEOUT_S

    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto takes CUDA when present")
    p.add_argument("--force", action="store_true", help="recompute cells even when a record exists")
    p.add_argument("--retry-failed", action="store_true", help="recompute only the cells recorded as failed")
    p.add_argument("--executor", default="local", choices=EXECUTORS.names(),
                   help="where cells run: local (worker processes, default), inline (this process, no isolation: "
                        "for debugging), ray (pip install 'shiftbench[ray]')")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: one per CPU; with CUDA one per GPU); ray: CPUs of a local Ray")
    p.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT_S, metavar="SECONDS",
                   help=f"a cell still running after this long fails and its worker is stopped "
                        f"(default {DEFAULT_CELL_TIMEOUT_S:g}; 0: no limit)")
    p.add_argument("--cell-memory", type=float, default=None, metavar="GIB",
                   help="memory cap per worker process (default: the machine's memory / workers; 0: no cap; "
                        "not applied with CUDA)")
    p.add_argument("--address", default=None, help="Ray cluster address ('auto' or host:port); none starts a local Ray")
    p.add_argument("--gpus-per-cell", type=float, default=0.0, help="Ray: GPUs reserved per cell")
    p.add_argument("--store", type=Path, default=None, help="cell store (default: $SHIFTBENCH_CACHE/cells)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress output, no estimate of the work, no table: the counts and a final summary line")
    p.add_argument("--data-dir", type=Path, default=None, help="data root (default: $SHIFTBENCH_DATA, else $SHIFTBENCH_CACHE/data)")
    _common_paths(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiftbench",
        description="Benchmark test-time adaptation methods under covariate, label, concept and translation shift.",
    )
    parser.add_argument("--version", action="version", version=f"shiftbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="evaluate every submission, write results, build the leaderboard page")
    p.add_argument("--submissions", type=Path, default=None,
                   help="folder of submission YAML files (default: leaderboard/submissions, and with --benchmark "
                        "NAME its NAME/ subfolder too)")
    p.add_argument("--benchmark", default=None, help="only submissions for this benchmark")
    _run_options(p)

    p = sub.add_parser("submit", help="validate and evaluate one submission file, then rebuild the site")
    p.add_argument("file", type=Path)
    _run_options(p)

    p = sub.add_parser("validate", help="check a submission file without running it")
    p.add_argument("files", type=Path, nargs="+")

    p = sub.add_parser("leaderboard", help="build the leaderboard site from the result files")
    _common_paths(p)
    p.add_argument("--format", default="html", choices=["html", "md", "tex", "csv"],
                   help="html: build the site (default); md / tex: print every board as Markdown / LaTeX (the paper "
                        "layout); csv: print the entries table")
    p.add_argument("--serve", action="store_true", help="after building, serve the site on 127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="port for --serve, 0-65535 (default 8000; 0: any free)")

    sub.add_parser("methods", help="list the adaptation methods and their parameters")
    sub.add_parser("models", help="list the architectures (and their parameters) and the model manifests")
    p = sub.add_parser("shifts", help="list the registered shifts by family; 'preview' draws the corruptions")
    ssub = p.add_subparsers(dest="shifts_command", metavar="ACTION")
    v = ssub.add_parser("preview", help="grid of test images under every corruption (rows) and severity (columns)")
    v.add_argument("--benchmark", required=True, help="benchmark name or YAML path whose test images to use")
    v.add_argument("--out", type=Path, required=True, help="image file to write (.png, .pdf, .svg, .jpg)")
    v.add_argument("--n", type=int, default=4, help="images per cell (default 4)")
    v.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("data", help="datasets: list, info, fetch, verify")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")
    data_dir = dict(type=Path, default=None, help="data root (default: $SHIFTBENCH_DATA, else $SHIFTBENCH_CACHE/data)")
    ls = dsub.add_parser("list", help="list data manifests: on disk, not fetched, or on disk with a checksum mismatch "
                                      "(exit 1 if any)")
    ls.add_argument("--data-dir", **data_dir)
    ls.add_argument("--verify", action="store_true", help="hash every file, also those over 256 MiB (slow)")
    i = dsub.add_parser("info", help="load a dataset from disk and print one JSON object: images per split, "
                                     "per domain and per class, classes in order")
    i.add_argument("name")
    i.add_argument("--data-dir", **data_dir)
    f = dsub.add_parser("fetch", help="download a dataset's files, resuming, verify their hashes, unpack archives")
    f.add_argument("name")
    f.add_argument("--data-dir", **data_dir)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    v = dsub.add_parser("verify", help="re-check a dataset's files (or built data) against its manifest's hashes")
    v.add_argument("name")
    v.add_argument("--data-dir", **data_dir)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "data_dir", None):  # one data root for everything this process (and its Ray workers) loads
        import os

        os.environ["SHIFTBENCH_DATA"] = str(args.data_dir)
    try:
        from ..core.allocator import keep_freed_memory
        from . import commands

        keep_freed_memory()
        return getattr(commands, f"cmd_{args.command}")(args)
    except UserError as e:
        print(f"shiftbench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head and closed early
        sys.stderr.close()
        return 0
    except OSError as e:  # the machine said no (a full disk, a folder that went away): one line, not a traceback
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"shiftbench: error: {one_line(where + (e.strerror or str(e)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("shiftbench: interrupted; finished cells are kept, run again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
