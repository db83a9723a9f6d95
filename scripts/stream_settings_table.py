"""What each evaluation setting does to source, BN-adapt and TENT on the built-in digits.

    PYTHONPATH=src python scripts/stream_settings_table.py [--workdir DIR]

Builds a throwaway project whose benchmark is digits' model and six-corruption sequence under
every `stream:` setting (docs/settings.md), runs the three methods (continual, and per_scenario
for the sequence and the batch-size axis) and prints the error (%) per setting, plus the online
error of the long stream per cycle. About 11 minutes on a busy 2-core CPU (docs/settings.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIX = "[gaussian_noise, shot_noise, impulse_noise, contrast, gaussian_blur, pixelate]"
BENCHMARK = f"""\
name: digits-settings
dataset: digits
batch_size: 64
model: {{arch: small_cnn, width: 16}}
training: {{name: erm, epochs: 15, lr: 0.05, batch_size: 64}}
scenarios:
  - {{name: sequence, family: covariate, segment_matrix: {{c: {SIX}}}, shifts: [{{shift: "{{c}}", severity: 5}}]}}
  - name: gradual
    family: covariate
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{severities: [1, 2, 3, 4, 5, 4, 3, 2, 1]}}
  - name: mixed
    family: covariate
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{mix: true, seed_name: sequence}}
  - name: "correlated-d{{d}}"
    family: covariate
    matrix: {{d: [0.1, 0]}}
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{label_order: {{concentration: "{{d}}"}}, seed_name: sequence}}
  - name: "mixed-correlated-d{{d}}"
    family: covariate
    matrix: {{d: [0.1, 0]}}
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{mix: true, label_order: {{concentration: "{{d}}"}}, seed_name: sequence}}
  - name: long-x10
    family: covariate
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{cycles: 10, window: 539, seed_name: sequence}}
  - name: "sequence-b{{b}}"
    family: covariate
    matrix: {{b: [1, 4, 16, 64]}}
    segment_matrix: {{c: {SIX}}}
    shifts: [{{shift: "{{c}}", severity: 5}}]
    stream: {{batch_size: "{{b}}", seed_name: sequence}}
"""
METHODS = {"Source": ("source", "{}"), "BN-adapt": ("bn_adapt", "{}"), "TENT": ("tent", "{}")}


def project(root: Path) -> Path:
    shutil.copytree(REPO / "data_manifests", root / "data_manifests")
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "digits-settings.yaml").write_text(BENCHMARK)
    subs = root / "leaderboard" / "submissions"
    subs.mkdir(parents=True)
    for label, (method, params) in METHODS.items():
        for protocol in ("continual", "per_scenario"):
            (subs / f"{method}-{protocol}.yaml").write_text(
                f"name: {label} ({protocol})\nmethod: {method}\nparams: {params}\nbenchmark: digits-settings\n"
                f"protocol: {protocol}\n")
    return root


def main() -> None:
    import os

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="stream-settings-"))
    root = project(work / "project")
    os.chdir(root)
    from shiftbench.cli.main import main as cli

    assert cli(["run", "--quiet", "--device", "cpu", "--store", str(work / "store")]) == 0
    rows: dict[str, dict[str, str]] = {}
    online: dict[str, list[float]] = {}
    for path in sorted((root / "leaderboard" / "results" / "digits-settings").glob("*.json")):
        body = json.loads(path.read_text())
        for r in body["records"]:
            scenario, protocol = r["cell"]["scenario"], r["cell"]["protocol"]
            if protocol == "per_scenario" and not scenario.startswith("sequence"):
                continue  # per_scenario only where it means reset per corruption
            label = body["name"].split(" (")[0]
            rows.setdefault(f"{scenario} ({protocol})", {})[label] = f"{100 * r['metrics']['error']:.1f}"
            if scenario == "long-x10":
                online[label] = r["online"]["error"]
    print("| setting (protocol) | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for setting in sorted(rows):
        print(f"| {setting} | " + " | ".join(rows[setting].get(m, "-") for m in METHODS) + " |")
    print("\nlong-x10, online error (%) per 539-image window = per corruption; gaussian_noise on its 1st and "
          "10th visit, and the mean of cycle 1 vs cycle 10:")
    for label, errors in online.items():
        first, last = errors[:6], errors[-6:]
        print(f"  {label}: {100 * errors[0]:.1f} -> {100 * errors[-6]:.1f}; cycle mean "
              f"{100 * sum(first) / 6:.1f} -> {100 * sum(last) / 6:.1f} ({len(errors)} windows)")


if __name__ == "__main__":
    main()
