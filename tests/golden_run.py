"""The golden digits run: every built-in method on a small digits benchmark, numbers pinned in golden/expected.json.

`python tests/golden_run.py --write` recomputes and rewrites the pinned numbers; do that only
for a change that is meant to move them, and say why in the commit.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN = HERE / "golden"
EXPECTED = GOLDEN / "expected.json"


def build_project(root: Path) -> Path:
    shutil.copytree(REPO / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir()
    shutil.copy(GOLDEN / "benchmark.yaml", root / "benchmarks" / "golden.yaml")
    subs = root / "leaderboard" / "submissions"
    subs.mkdir(parents=True)
    for name, spec in yaml.safe_load((GOLDEN / "submissions.yaml").read_text()).items():
        body = {"name": name, "benchmark": "golden", "seeds": [0], "params": {}, **spec}
        (subs / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return root


def numbers(results: Path) -> dict[str, dict[str, dict[str, float]]]:
    """entry -> scenario -> every numeric metric of its cell."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for path in sorted(results.glob("*/*.json")):
        body = json.loads(path.read_text())
        for rec in body["records"]:
            assert rec["status"] == "ok", (body["name"], rec["cell"]["scenario"], rec["error"])
            metrics = {k: v for k, v in rec["metrics"].items() if isinstance(v, (int, float))}
            out.setdefault(body["name"], {})[rec["cell"]["scenario"]] = metrics
    return out


def run_golden(workdir: Path) -> dict:
    import os

    from shiftbench.cli.main import main

    root = build_project(workdir / "project")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = main(["run", "--quiet", "--device", "cpu", "--store", str(workdir / "store")])
    finally:
        os.chdir(cwd)
    assert code == 0, code
    return numbers(root / "leaderboard" / "results")


def machine() -> dict[str, str]:
    """What decides floating-point results beyond the code: torch's build and the CPU kernels it picks."""
    import torch

    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python tests/golden_run.py --write   (recomputes tests/golden/expected.json)")
    import os

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SHIFTBENCH_CACHE"] = str(Path(tmp) / "cache")
        result = run_golden(Path(tmp))
    EXPECTED.write_text(json.dumps({"machine": machine(), "numbers": result}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECTED}: {sum(len(v) for v in result.values())} cells")
