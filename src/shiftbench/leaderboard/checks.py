"""Trust checks on result files, so that nothing doubtful is silently ranked beside the rest.

Each result gets `flags` (a list of {kind, message}) and `ranked` (bool):
  edited     records_sha256 does not match the records, or the file's header
             (name, method, params, benchmark) disagrees with its records or its file name
  stale      the benchmark definition changed (or vanished) since the result was computed
  duplicate  another result file on the same benchmark claims the same name
and `oracle` (bool): the method uses privileged information (true labels or priors).
A method says so with the class attribute `oracle = True`; the runner then writes
`oracle: true` into the result file and the method's describe() puts it into every
record's method_info. Any such mark (or `oracle: true` in a hand-made result's
submission or cell parameters) makes the entry a reference: shown, never ranked.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.hashing import canonical_json

PROBLEM_KINDS = ("edited", "stale", "duplicate")


def current_benchmark_hashes(names: set[str]) -> dict[str, str | None]:
    """Hash of each benchmark's current definition in this project; None where it cannot be loaded."""
    from ..run.benchmark import load_benchmark

    out: dict[str, str | None] = {}
    for name in sorted(names):
        try:
            out[name] = load_benchmark(name).content_hash()
        except UserError:
            out[name] = None
    return out


def is_oracle(result: dict[str, Any]) -> bool:
    if result.get("oracle") is True or (result.get("submission") or {}).get("oracle") is True:
        return True
    return any((r.get("method_info") or {}).get("oracle") is True or (r.get("cell", {}).get("params") or {}).get("oracle") is True
               for r in result.get("records", []) if isinstance(r, dict))


def _same(a: Any, b: Any) -> bool:
    return canonical_json(a) == canonical_json(b)


def header_mismatches(result: dict[str, Any]) -> list[str]:
    """Fields of the file's header that its records (or its file name) contradict."""
    from ..run.results import slug

    wrong = []
    if "path" in result and "name" in result and Path(result["path"]).stem != slug(result["name"]):
        wrong.append("name (does not match the file name)")
    for field, cell_field in (("method", "method"), ("params", "params"), ("benchmark", "benchmark")):
        if field not in result:
            continue
        if any(not _same(r.get("cell", {}).get(cell_field), result[field]) for r in result.get("records", [])):
            wrong.append(field)
    return wrong


def annotate(results: list[dict[str, Any]], current_hashes: dict[str, str | None]) -> list[dict[str, Any]]:
    """Attach flags, ranked and oracle to every result (in place); returns the same list."""
    by_name: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for res in results:
        by_name[(res["benchmark"], res["name"])].append(res)
    for res in results:
        flags = []
        if res.get("integrity", "ok") != "ok":
            flags.append({"kind": "edited", "message": f"integrity check failed: {res['integrity']} "
                                                       "(records_sha256 does not match the records)"})
        if str(res.get("integrity", "")).startswith("unreadable"):
            res.update(flags=flags, oracle=False, ranked=False)
            continue
        wrong = header_mismatches(res)
        if wrong:
            flags.append({"kind": "edited", "message": "the file's header disagrees with its records: " + ", ".join(wrong)})
        current = current_hashes.get(res["benchmark"])
        if current is None:
            flags.append({"kind": "stale", "message": f"benchmark '{res['benchmark']}' has no current definition here; "
                                                      "this result cannot be checked against it"})
        elif res.get("benchmark_hash") != current:
            flags.append({"kind": "stale", "message": f"computed on an earlier definition of benchmark '{res['benchmark']}' "
                                                      f"(hash {res.get('benchmark_hash')}, now {current}); rerun it"})
        twins = [o for o in by_name[(res["benchmark"], res["name"])] if o is not res]
        if twins:
            flags.append({"kind": "duplicate", "message": "another result file claims the same name: "
                                                          + ", ".join(Path(o.get("path", o["id"])).name for o in twins)})
        res["flags"] = flags
        res["oracle"] = is_oracle(res)
        res["ranked"] = not flags and not res["oracle"]
    return results
