"""What each CLI command does; cli.py only parses arguments."""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import UserError
from ..core.paths import project_root


def _site_dir(args) -> Path:
    return args.site or project_root() / "leaderboard" / "site"


def _results_dir(args) -> Path:
    from ..run.results import results_dir

    return args.results or results_dir()


def _executor(args):
    """None for the in-process executor (the runner makes it, sharing its workspace); else the one asked for."""
    from ..run.executors import make_executor

    if args.address is not None and args.executor != "ray":
        raise UserError("is for the ray executor; add --executor ray", field="--address")
    if args.executor == "inline":
        return None
    options = dict(workers=args.workers, cell_timeout=args.cell_timeout, memory_gb=args.cell_memory,
                   progress=not args.quiet)
    if args.executor == "ray":
        options.update(address=args.address, gpus_per_cell=args.gpus_per_cell)
    return make_executor(args.executor, **options)


def _evaluate(checked, args) -> int:
    from ..core.files import check_writable_folder
    from ..leaderboard import build_site, load_annotated, summary_table
    from ..run.runner import run_submissions
    from ..run.store import Store

    store, results, site = Store(args.store), _results_dir(args), _site_dir(args)
    for folder, flag in ((store.root, "--store"), (results, "--results"), (site, "--site")):  # before any work
        check_writable_folder(folder, field=flag)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    if log:
        for bench in {c.benchmark.name: c.benchmark for c in checked}.values():
            for line in missing_data_lines(bench):
                log(f"{bench.name}: {line}")
    report = run_submissions(checked, device=args.device, store=store, results_root=results, force=args.force,
                             retry_failed=args.retry_failed, executor=_executor(args), progress=not args.quiet,
                             log=log)
    page = build_site(results, site)
    summary = summary_table(load_annotated(results))
    print(f"{len(report.cells)} cells: {report.computed} computed, {report.reused} reused, {report.failed} failed")
    if not summary.empty and not args.quiet:
        print(format_summary(summary))
    print(f"done: {len(report.cells)} cells, {report.failed} failed, {len(report.result_files)} result files; "
          f"leaderboard: {page}")
    if report.failed:
        print(f"shiftbench: {report.failed} cells failed; the entry pages show why; --retry-failed runs them again",
              file=sys.stderr)
        return 1
    return 0


def format_summary(summary) -> str:
    """The entries table for the terminal, rounded by the same function as the page (leaderboard.format)."""
    import pandas as pd

    from ..leaderboard.format import with_spread
    from ..shifts import FAMILIES

    table = pd.DataFrame({"entry": summary.entry, "benchmark": summary.benchmark, "protocol": summary.protocol,
                          "n": summary.seeds})
    for col in (*FAMILIES, "clean"):
        head = "covariate err" if col == "covariate" else col
        table[head] = [with_spread("accuracy", v, s, n) for v, s, n in zip(summary[col], summary[f"{col}_std"],
                                                                          summary.seeds)]
    table["failed"] = summary.failed
    table["status"] = summary.status
    return table.to_string(index=False)


def cmd_run(args) -> int:
    from ..run.submission import check_all, submissions_dir

    folder = args.submissions or submissions_dir()
    if folder.exists() and not folder.is_dir():
        raise UserError("is a file; --submissions takes a folder of submission files", source=str(folder))
    folders = [folder]
    if args.benchmark and not args.submissions and (folder / args.benchmark).is_dir():
        folders.append(folder / args.benchmark)  # a benchmark's own submissions live in a subfolder of its name
    files = [f for d in folders for f in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml"))]
    if not files:
        raise UserError("no submission files (*.yaml) found", source=str(folder))
    checked = check_all(files)
    if args.benchmark:
        checked = [c for c in checked if c.submission.benchmark == args.benchmark]
        if not checked:
            raise UserError(f"no submission targets benchmark '{args.benchmark}'", field="--benchmark")
    return _evaluate(checked, args)


def cmd_submit(args) -> int:
    from ..run.submission import check_all, submissions_dir

    checked = check_all([args.file])
    others = [p for p in sorted(submissions_dir().glob("*.yaml")) if p.resolve() != args.file.resolve()]
    _check_name_free(checked[0], others)
    return _evaluate(checked, args)


def _check_name_free(checked, others) -> None:
    from ..core.config import read_yaml

    for p in others:
        try:
            raw = read_yaml(p) or {}
        except UserError:  # a broken file elsewhere is its own problem, not this submission's
            continue
        if isinstance(raw, dict) and raw.get("name") == checked.submission.name and raw.get("benchmark", "digits") == checked.submission.benchmark:
            raise UserError(f"submission name '{checked.submission.name}' is already used by {p}",
                            source=checked.path, field="name")


def cmd_validate(args) -> int:
    """Check each file without running it; every problem is printed as one line; exit 2 if any."""
    from ..core.config import all_problems, read_yaml
    from ..run.submission import Submission, check_submission, submissions_dir

    bad = 0
    for f in args.files:
        try:
            problems = all_problems(Submission, read_yaml(f), str(f))
            if not problems:
                c = check_submission(f)
                others = [p for p in sorted(submissions_dir().glob("*.yaml")) if p.resolve() != Path(f).resolve()]
                _check_name_free(c, others)
        except UserError as e:
            problems = [e]
        for e in problems:
            print(f"shiftbench: error: {e}", file=sys.stderr)
        if problems:
            bad += 1
            continue
        print(f"{f}: ok ({c.submission.method} on {c.submission.benchmark}, "
              f"{len(c.benchmark.scenarios) - len(c.unsupported)} scenarios x {len(c.submission.seeds)} seeds)")
        for scenario, why in c.unsupported.items():
            print(f"{f}: skips scenario '{scenario}': {why}")
        for line in missing_data_lines(c.benchmark):
            print(f"{f}: {line}")
    return 2 if bad else 0


def missing_data_lines(benchmark) -> list[str]:
    """One line per set of datasets whose absence drops scenarios: which scenarios, and how to get the data."""
    by_missing: dict[tuple[str, ...], list[str]] = {}
    for scenario, missing in benchmark.missing_data().items():
        by_missing.setdefault(tuple(missing), []).append(scenario)
    lines = []
    for missing, scenarios in by_missing.items():
        shown = ", ".join(f"'{s}'" for s in scenarios[:3]) + (f" and {len(scenarios) - 3} more" if len(scenarios) > 3 else "")
        lines.append(f"skips scenario{'s' if len(scenarios) > 1 else ''} {shown}: {', '.join(missing)} not on disk "
                     f"({how_to_get(missing[0])})")
    return lines


def how_to_get(name: str) -> str:
    """The fetch command, or for a set with no plain download (ImageNet, a view of another set's
    files) where its manifest says to put it."""
    from ..data.manifest import load_manifest

    try:
        downloadable = load_manifest(name).downloadable
    except UserError:  # validate has reported a bad manifest already
        downloadable = True
    if downloadable:
        return f"`shiftbench data fetch {name}`, or see data_manifests/{name}.yaml"
    return f"no plain download: data_manifests/{name}.yaml says where to put it"


def cmd_leaderboard(args) -> int:
    from ..leaderboard import build_site, load_annotated, summary_table

    if args.format in ("md", "tex", "csv"):
        from ..leaderboard.export import to_csv, to_latex, to_markdown
        from ..leaderboard.render import load_boards

        summary, boards = load_boards(_results_dir(args))
        text = {"md": lambda: to_markdown(summary, boards), "tex": lambda: to_latex(boards),
                "csv": lambda: to_csv(summary)}[args.format]()
        print(text, end="")
        return 0
    if args.serve and not 0 <= args.port <= 65535:
        raise UserError(f"must be between 0 and 65535, got {args.port}", field="--port")
    page = build_site(_results_dir(args), _site_dir(args))
    summary = summary_table(load_annotated(_results_dir(args)))
    if not summary.empty:
        print(format_summary(summary))
    print(f"leaderboard: {page}")
    if args.serve:
        from ..leaderboard.serve import serve

        serve(page.parent, args.port)
    return 0


def cmd_methods(args) -> int:
    from ..core.params import describe_params
    from ..methods import METHODS

    for name in METHODS.names():
        try:
            cls = METHODS.get(name)
        except UserError as e:  # an installed plugin that fails to load is listed, not fatal
            print(f"{name}  (plugin, cannot be loaded: {e})")
            continue
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        kind = " [logit-only]" if cls.logit_only else ""
        kind += " [whole-segment]" if cls.whole_segment else ""
        print(f"{name}{kind}: {doc}")
        for p, d in describe_params(cls).items():
            print(f"    {p}: {d}")
    return 0


def cmd_models(args) -> int:
    from ..core.params import describe_params
    from ..data import all_manifests, data_root, dataset_dir
    from ..models import ARCHITECTURES
    from ..models.architectures.registry import BUILD_ARGS
    from ..models.manifest import load_model_manifest, weights_entry
    from ..models.preprocessing import FIELDS

    print("architectures (model: {arch: NAME, ...}):")
    for name, fn in ARCHITECTURES.entries().items():
        print(f"  {name}: {(fn.__doc__ or '').strip().splitlines()[0] if fn.__doc__ else ''}")
        for p, d in describe_params(fn, BUILD_ARGS).items():
            print(f"      {p}: {d}")
    for family in ARCHITECTURES.families().values():
        print(f"  {family.pattern}: {family.doc}")
    print(f"  every architecture also takes: weights (a model manifest), checkpoint (a file), key_map, head, "
          f"{', '.join(FIELDS)}")
    print("model manifests (model: {weights: NAME}; fetch with `shiftbench data fetch NAME`):")
    for m in all_manifests():
        if m.kind != "model":
            continue
        try:
            _, card = load_model_manifest(m.name)
        except UserError as e:  # a broken manifest is listed with its problem, not fatal
            print(f"  {m.name}  (cannot be used: {e})")
            continue
        entry = weights_entry(m, card)
        state = "on disk" if any((d / entry.path).is_file() for d in (dataset_dir(m), data_root())) else "not fetched"
        published = (f", published accuracy {100 * card.published.accuracy:.2f}% on {card.published.split}"
                     if card.published else "")
        params = "".join(f", {k}={v}" for k, v in card.params.items())
        print(f"  {m.name}  [{card.arch}{params}]  {state}  {m.license.strip().splitlines()[0]}{published}")
    return 0


def cmd_shifts(args) -> int:
    from ..core.params import describe_params
    from ..shifts import FAMILIES, all_shifts

    if getattr(args, "shifts_command", None) == "preview":
        from .preview import draw_preview

        print(f"preview: {draw_preview(args.benchmark, args.out, args.n, args.seed)}")
        return 0
    shifts = all_shifts()
    for fam in FAMILIES:
        print(f"{fam}:")
        for name, info in shifts.items():
            if info.family == fam:
                params = ", ".join(f"{k}: {v}" for k, v in describe_params(info.fn).items())
                print(f"  {name}({params})  {info.doc}")
    return 0


def cmd_data(args) -> int:
    from ..data import all_manifests, data_root, load_dataset, load_manifest
    from ..data.fetch import fetch, verify

    data_dir = getattr(args, "data_dir", None)
    if args.data_command == "list" or args.data_command is None:
        from ..data.inventory import data_state

        print(f"data root: {data_root(data_dir)}")
        bad = 0
        for m in all_manifests():
            state = data_state(m, data_dir, full=getattr(args, "verify", False))
            bad += state.status == "mismatch"
            print(f"{m.name}  [{m.loader or m.kind}]  {state.detail}  "
                  f"{m.license.strip().splitlines()[0] if m.license else ''}")
        return 1 if bad else 0
    if args.data_command == "info":
        import json

        from ..data.info import dataset_info

        print(json.dumps(dataset_info(args.name, data_dir)))
        return 0
    m = load_manifest(args.name)
    if args.data_command == "fetch":
        folder = fetch(m, data_dir, progress=not args.quiet)
        print(f"{args.name}: ready in {folder}")
        return 0
    if args.data_command == "verify":
        if m.sha256 is None and not m.files:
            raise UserError("the manifest records no sha256 to verify against", source=m.source)
        bad = 0
        for check in verify(m, data_dir):
            bad += check.status in ("missing", "mismatch")
            print(f"{args.name}: {check.path}: {check.status.upper() if check.status != 'ok' else 'ok'}"
                  f"{': ' + check.detail if check.detail else ''}", file=sys.stderr if check.status != "ok" else sys.stdout)
        if m.sha256:
            got = load_dataset(args.name, data_dir).sha256()
            if got != m.sha256:
                print(f"{args.name}: MISMATCH: built data sha256 {got}, manifest says {m.sha256}", file=sys.stderr)
                return 1
            print(f"{args.name}: ok (sha256 {got})")
        return 1 if bad else 0
    return 2
