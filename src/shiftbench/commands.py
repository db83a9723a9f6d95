"""What each CLI command does; cli.py only parses arguments."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import UserError
from .paths import project_root


def _site_dir(args) -> Path:
    return args.site or project_root() / "leaderboard" / "site"


def _results_dir(args) -> Path:
    from .runner import results_dir

    return args.results or results_dir()


def _executor(args):
    from .executors import make_executor

    if args.executor == "local":
        return None
    return make_executor("ray", address=args.address, num_cpus=args.workers, gpus_per_cell=args.gpus_per_cell,
                         progress=not args.quiet)


def _evaluate(checked, args) -> int:
    from .leaderboard import build_site, summary_table, load_results
    from .runner import run_submissions
    from .store import Store

    report = run_submissions(checked, device=args.device, store=Store(args.store), results_root=_results_dir(args),
                             force=args.force, retry_failed=args.retry_failed, executor=_executor(args),
                             progress=not args.quiet)
    page = build_site(_results_dir(args), _site_dir(args))
    summary = summary_table(load_results(_results_dir(args)))
    print(f"{len(report.cells)} cells: {report.computed} computed, {report.reused} reused, {report.failed} failed")
    if not summary.empty:
        print(format_summary(summary))
    print(f"leaderboard: {page}")
    return 0


def format_summary(summary) -> str:
    from .shifts import FAMILIES

    table = summary[["rank", "entry", "benchmark", "score", *FAMILIES, "clean", "failed"]].copy()
    for col in ("score", *FAMILIES, "clean"):
        table[col] = (100 * table[col]).round(1)
    return table.to_string(index=False)


def cmd_run(args) -> int:
    from .submission import check_all, submissions_dir

    folder = args.submissions or submissions_dir()
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    if not files:
        raise UserError("no submission files (*.yaml) found", source=str(folder))
    checked = check_all(files)
    if args.benchmark:
        checked = [c for c in checked if c.submission.benchmark == args.benchmark]
        if not checked:
            raise UserError(f"no submission targets benchmark '{args.benchmark}'", field="--benchmark")
    return _evaluate(checked, args)


def cmd_submit(args) -> int:
    from .submission import check_all, submissions_dir

    checked = check_all([args.file])
    others = [p for p in sorted(submissions_dir().glob("*.yaml")) if p.resolve() != args.file.resolve()]
    _check_name_free(checked[0], others)
    return _evaluate(checked, args)


def _check_name_free(checked, others) -> None:
    import yaml

    for p in others:
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(raw, dict) and raw.get("name") == checked.submission.name and raw.get("benchmark", "digits") == checked.submission.benchmark:
            raise UserError(f"submission name '{checked.submission.name}' is already used by {p}",
                            source=checked.path, field="name")


def cmd_validate(args) -> int:
    from .submission import check_submission

    for f in args.files:
        c = check_submission(f)
        print(f"{f}: ok ({c.submission.method} on {c.submission.benchmark}, {len(c.benchmark.scenarios)} scenarios "
              f"x {len(c.submission.seeds)} seeds)")
    return 0


def cmd_leaderboard(args) -> int:
    from .leaderboard import build_site, load_results, summary_table

    page = build_site(_results_dir(args), _site_dir(args))
    summary = summary_table(load_results(_results_dir(args)))
    if not summary.empty:
        print(format_summary(summary))
    print(f"leaderboard: {page}")
    return 0


def cmd_methods(args) -> int:
    import inspect

    from .methods import all_methods
    from .params import describe_params

    for name, cls in all_methods().items():
        if not inspect.isclass(cls):
            print(f"{name}  (plugin, not loaded: {cls.value})")
            continue
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        kind = " [logit-only]" if cls.logit_only else ""
        print(f"{name}{kind}: {doc}")
        for p, d in describe_params(cls).items():
            print(f"    {p}: {d}")
    return 0


def cmd_shifts(args) -> int:
    from .params import describe_params
    from .shifts import FAMILIES, all_shifts

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
    from .data import all_manifests, load_dataset, load_manifest

    if args.data_command == "list" or args.data_command is None:
        for m in all_manifests():
            print(f"{m.name}  [{m.loader}]  {m.license}")
        return 0
    if args.data_command == "verify":
        m = load_manifest(args.name)
        if m.sha256 is None and not m.files:
            raise UserError("the manifest records no sha256 to verify against", source=f"data_manifests/{args.name}.yaml")
        if m.sha256:
            got = load_dataset(args.name).sha256()
            if got != m.sha256:
                print(f"{args.name}: MISMATCH: built data sha256 {got}, manifest says {m.sha256}", file=sys.stderr)
                return 1
            print(f"{args.name}: ok (sha256 {got})")
        return 0
    return 2
