"""The small faults: each is one line and an exit status, or a one-line warning and a repair, and
never costs a finished result."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import make_project, one_error_line, run_cli, submission
from scaleout_support import SCENARIOS, cli_env, counts_line, fault_project, store_records
from synthetic_results import site_project, write_result

from shiftbench.cli.main import main
from shiftbench.leaderboard import build_site, load_annotated, summary_table

SOURCE = {"source.yaml": submission("Source", "source")}


@pytest.fixture
def fast(tmp_path, monkeypatch):
    """A fast-grid project with the Source submission; cwd is its folder."""
    root = fault_project(tmp_path / "p", SOURCE)
    monkeypatch.chdir(root)
    return root


def inline_run(store: Path, *extra: str) -> list[str]:
    return ["run", "--quiet", "--device", "cpu", "--executor", "inline", "--store", str(store), *extra]


# ---- the cell store and the model cache heal themselves ----------------------------------------------

@pytest.mark.parametrize("content", ['[1, 2]', '"a string"', '{}', '{"key": "not this one"}', '{"trunc', b"\xff\xfe"],
                         ids=["list", "string", "empty-object", "other-key", "broken-json", "not-utf8"])
def test_a_record_that_is_not_a_record_is_moved_aside_and_recomputed(content, fast, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(inline_run(store)) == 0
    reference = store_records(store)
    victim = sorted(store.glob("tiny/*.json"))[0]
    victim.write_bytes(content if isinstance(content, bytes) else content.encode())
    capsys.readouterr()
    assert main(inline_run(store)) == 0
    out = capsys.readouterr()
    assert counts_line(out.out) == f"{SCENARIOS} cells: 1 computed, {SCENARIOS - 1} reused, 0 failed"
    [warning] = [line for line in out.err.splitlines() if "warning" in line]
    assert warning.startswith(f"shiftbench: warning: cell record {victim} ") and "moved aside to" in warning
    assert victim.with_name(victim.name + ".corrupt").read_bytes() == (content if isinstance(content, bytes)
                                                                       else content.encode())
    assert store_records(store) == reference


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other-architecture", "bad-info"])
def test_a_cached_model_that_does_not_load_is_moved_aside_and_trained_again(damage, tmp_path, monkeypatch, capsys):
    from shiftbench.data import load_dataset
    from shiftbench.models import get_source_model

    monkeypatch.setenv("SHIFTBENCH_CACHE", str(tmp_path / "cache"))
    d = load_dataset("digits")
    train = d.source_train.subset(torch.arange(100))
    args = (train, d.source_val, {"arch": "small_cnn", "width": 4}, {"name": "erm", "epochs": 1}, 0,
            torch.device("cpu"))
    first = get_source_model(*args, progress=False)
    ckpt, info = first.checkpoint, first.checkpoint.with_suffix(".json")
    good = ckpt.read_bytes()
    if damage == "garbage":
        ckpt.write_bytes(b"not a checkpoint")
    elif damage == "truncated":
        ckpt.write_bytes(good[: len(good) // 2])
    elif damage == "other-architecture":
        torch.save({"conv.weight": torch.zeros(3)}, ckpt)
    else:
        info.write_text("[1, 2")
    damaged = (ckpt if damage != "bad-info" else info).read_bytes()
    capsys.readouterr()
    again = get_source_model(*args, progress=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"shiftbench: warning: cached source model {ckpt} cannot be loaded")
    assert "training it again" in err[0]
    assert again.sha256 == first.sha256 and ckpt.read_bytes() == good  # retrained to the same weights
    aside = (ckpt if damage != "bad-info" else info)
    assert aside.with_name(aside.name + ".corrupt").read_bytes() == damaged


# ---- paths that cannot be written ----------------------------------------------------------------------

@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody (root included) can create files in: chmod for a user, the immutable flag for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root without the immutable flag (chattr +i): no way to make a read-only folder")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("flag", ["--results", "--store", "--site"])
@pytest.mark.parametrize("obstacle", ["file", "file-above", "read-only"])
def test_an_unwritable_results_store_or_site_path_stops_the_run_before_any_work(flag, obstacle, fast, tmp_path,
                                                                                 capsys, request):
    if obstacle == "read-only":
        target = request.getfixturevalue("read_only_dir") / "x"
    else:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file")
        target = blocker if obstacle == "file" else blocker / "sub" / "x"
    store = tmp_path / "store"
    args = inline_run(store, flag, str(target)) if flag != "--store" else inline_run(target)
    code, out, err = run_cli(capsys, *args)
    line = one_error_line(err)
    assert code == 2 and f"{flag}: " in line, line
    assert ("is a file, not a folder" in line) if obstacle != "read-only" else ("cannot write in" in line)
    assert not store.exists() and not (fast / "leaderboard" / "results").exists()


def test_a_full_disk_stops_the_run_in_one_line_and_keeps_every_finished_record(fast, tmp_path, monkeypatch, capsys):
    from shiftbench.core import files

    store = tmp_path / "store"
    real, written = files._write, []

    def filling(path, data):  # the third record finds the disk full
        if path.parent.parent == store and len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)
        written.append(path)

    monkeypatch.setattr(files, "_write", filling)
    code, _, err = run_cli(capsys, *inline_run(store))
    line = one_error_line(err)
    assert code == 2 and "cannot write (No space left on device)" in line and str(store) in line
    assert len(store_records(store)) == 2 and not list(store.rglob("*.tmp"))  # whole records, no debris
    monkeypatch.setattr(files, "_write", real)  # space freed
    code, out, _ = run_cli(capsys, *inline_run(store))
    assert code == 0 and counts_line(out) == f"{SCENARIOS} cells: {SCENARIOS - 2} computed, 2 reused, 0 failed"


# ---- broken plugins, odd files, odd options ------------------------------------------------------------

PLUGINS = {
    "syntax": ("def broken(:\n", "SyntaxError: invalid syntax (plugin_syntax.py, line 1)"),
    "raises": ("raise ValueError('no config')\n", "ValueError: no config"),
    "exits": ("import sys\nsys.exit(0)\n", "SystemExit: 0"),
    "imports": ("import no_such_dependency\n", "cannot import module 'no_such_dependency'"),
}


@pytest.mark.parametrize("kind", sorted(PLUGINS))
def test_a_plugin_module_that_fails_to_import_is_one_line(kind, tmp_path, monkeypatch, capsys):
    code_text, message = PLUGINS[kind]
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", f"plugin_{kind}:Method")})
    (root / f"plugin_{kind}.py").write_text(code_text)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/a.yaml")
    line = one_error_line(err)
    assert code == 2 and "a.yaml: method: " in line and message in line, line


def test_an_installed_plugin_that_fails_to_load_is_one_line(tmp_path, monkeypatch, capsys):
    from shiftbench.methods import METHODS

    class Broken:
        name = "broken"

        def load(self):
            raise ImportError("its dependency is missing")

    monkeypatch.setattr(METHODS, "_plugins", lambda: {"broken": Broken()})
    root = make_project(tmp_path / "p", {"a.yaml": submission("A", "broken")})
    monkeypatch.chdir(root)
    code, _, err = run_cli(capsys, "validate", "leaderboard/submissions/a.yaml")
    assert code == 2 and "importing method plugin 'broken' failed: ImportError" in one_error_line(err)
    code, out, _ = run_cli(capsys, "methods")
    assert code == 0 and "broken  (plugin, cannot be loaded:" in out


@pytest.mark.parametrize("kind", ["not-utf8", "folder", "fifo"])
def test_a_submission_path_that_is_not_a_text_file_is_one_line(kind, tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", SOURCE)
    odd = root / "leaderboard" / "submissions" / "odd.yaml"
    if kind == "not-utf8":
        odd.write_bytes(b"name: \xe9t\xe9\nmethod: source\n")
    elif kind == "folder":
        odd.mkdir()
    else:
        os.mkfifo(odd)  # reading it would block forever
    monkeypatch.chdir(root)
    expected = {"not-utf8": "not UTF-8 text (byte 6 is 0xe9)", "folder": "is a folder, not a YAML file",
                "fifo": "is not a regular file"}[kind]
    for args in (["run", "--quiet"], ["validate", str(odd)], ["submit", str(odd)]):
        code, _, err = run_cli(capsys, *args)
        line = one_error_line(err)
        assert code == 2 and f"odd.yaml: {expected}" in line, (args, line)
    assert not (root / "leaderboard" / "results").exists()


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_a_port_out_of_range_is_one_line_and_builds_nothing(port, tmp_path, monkeypatch, capsys):
    site_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "leaderboard", "--serve", "--port", port)
    assert code == 2 and "--port: must be between 0 and 65535" in one_error_line(err)
    assert not (tmp_path / "leaderboard" / "site").exists()


def test_outside_a_project_the_cli_says_so_and_never_uses_the_packages_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.yaml").write_text(submission("X", "source"))
    for args in (["run", "--quiet"], ["validate", "x.yaml"], ["leaderboard"], ["data", "list"]):
        code, _, err = run_cli(capsys, *args)
        line = one_error_line(err)
        assert code == 2 and "not inside a shiftbench project" in line, (args, line)
    assert run_cli(capsys, "methods")[0] == 0  # what needs no project works anywhere
    assert [p.name for p in tmp_path.iterdir()] == ["x.yaml"]


# ---- what methods return -----------------------------------------------------------------------------

def test_logits_of_the_wrong_shape_or_type_fail_their_cells(tmp_path, monkeypatch, capsys):
    kinds = {"wide": "float32 logits of shape (48, 20)", "onehot": "int64 logits of shape (48, 10)",
             "row": "float32 logits of shape (1, 10)"}
    root = fault_project(tmp_path / "p", {f"{k}.yaml": submission(k, "fault_methods:WrongLogits", f"{{kind: {k}}}")
                                          for k in kinds})
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, *inline_run(tmp_path / "store"))
    assert code == 1 and counts_line(out).endswith(f"{3 * SCENARIOS} failed")
    for r in store_records(tmp_path / "store").values():
        assert r["error"] == (f"BadLogits: predict returned {kinds[r['cell']['params']['kind']]}; "
                              "expected floating-point logits of shape (48, 10)")


# ---- the site ------------------------------------------------------------------------------------------

@pytest.fixture
def synth(tmp_path, monkeypatch):
    from shiftbench.run.benchmark import load_benchmark

    site_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "leaderboard" / "results", load_benchmark("synth").content_hash()


BAD_RESULTS = {
    "records-string": {"records": "lots"},
    "records-numbers": {"records": [1, 2, 3]},
    "cell-list": {"records": [{"cell": [1], "status": "ok"}]},
    "metrics-string": {"records": [{"cell": {"scenario": "clean"}, "status": "ok", "metrics": "99%"}]},
    "scenario-list": {"records": [{"cell": {"scenario": ["clean"]}, "status": "ok", "metrics": {}}]},
    "seed-string": {"records": [{"cell": {"scenario": "clean", "seed": "0"}, "status": "ok", "metrics": {}}]},
    "submission-list": {"submission": [1], "records": []},
    "method-object": {"method": {"a": 1}, "protocol": [2], "records": []},
}


def test_result_files_of_the_wrong_shape_are_flagged_and_never_stop_the_site(synth, tmp_path):
    results, current = synth
    good = write_result(results, "Good", "source", benchmark_hash=current)
    for name, body in BAD_RESULTS.items():
        (results / "synth" / f"{name}.json").write_text(json.dumps({"name": name, "benchmark": "synth", **body}))
    page = build_site(results, tmp_path / "site")
    annotated = {r["name"]: r for r in load_annotated(results)}
    for name in BAD_RESULTS:
        if name == "method-object":  # shapes that can be shown are shown, as text
            assert annotated[name]["method"] == "{'a': 1}"
            continue
        assert annotated[name]["integrity"].startswith("unreadable: "), name
        assert annotated[name]["records"] == [] and not annotated[name]["ranked"]
    assert "Good" in page.read_text() and good.exists()


def test_the_protocol_column_shows_the_default_protocol(synth):
    results, current = synth
    write_result(results, "Old", "source", benchmark_hash=current, submission={"protocol": None})
    path = write_result(results, "New", "source", benchmark_hash=current, submission={"protocol": None})
    body = json.loads(path.read_text())
    body["protocol"] = "episodic"  # as run/results.py now writes it
    path.write_text(json.dumps(body))
    table = summary_table(load_annotated(results)).set_index("entry")
    assert table.loc["Old", "protocol"] == "per_scenario" and table.loc["New", "protocol"] == "episodic"


def test_entry_pages_show_errors_and_tracebacks_without_this_machines_paths(tmp_path, monkeypatch, capsys):
    root = fault_project(tmp_path / "p", {**SOURCE, "error.yaml": submission("Error", "fault_methods:FailWhileMarked")})
    (root / "FAIL").touch()
    monkeypatch.chdir(root)
    assert main(inline_run(tmp_path / "store")) == 1
    failed = [r for r in store_records(tmp_path / "store").values() if r["status"] == "failed"]
    assert len(failed) == SCENARIOS
    traceback = failed[0]["traceback"]
    assert 'File "shiftbench/run/compute.py"' in traceback  # the package's files relative to it,
    assert 'fault_methods.py", line' in traceback  # a plugin's relative to the project (or cut to its name)
    assert not any(line.strip().startswith('File "/') for line in traceback.splitlines())
    pages = [p.read_text() for p in (root / "leaderboard" / "site").rglob("*.html")]
    pages += [p.read_text() for p in (root / "leaderboard" / "site").rglob("*.json")]
    assert "fault_methods.py" in "".join(pages)
    for private in (str(tmp_path), str(Path.home()), sys.prefix, str(Path(__file__).resolve().parents[1])):
        assert not any(private in page for page in pages), private


def test_a_traceback_from_another_machine_is_shown_without_its_paths(synth, tmp_path):
    results, current = synth
    path = write_result(results, "Theirs", "source", benchmark_hash=current, failed=("clean",))
    body = json.loads(path.read_text())
    for r in body["records"]:
        if r["status"] == "failed":
            r["error"] = "OSError: cannot open /home/alice/secret/data.bin"
            r["traceback"] = ('  File "/home/alice/venv/lib/python3.11/site-packages/torch/x.py", line 1\n'
                              '  File "/home/alice/work/plugin.py", line 2\n')
    path.write_text(json.dumps(body))
    build_site(results, tmp_path / "site")
    page = next((tmp_path / "site" / "synth" / "entries").glob("*.html")).read_text()
    assert "/home/alice" not in page
    assert "site-packages/torch/x.py" in page and ".../plugin.py" in page and ".../data.bin" in page


def test_a_site_build_killed_half_way_leaves_nothing_the_next_build_does_not_clear(synth, tmp_path):
    results, current = synth
    write_result(results, "A", "source", benchmark_hash=current)
    site = tmp_path / "site"
    killed = ("import os, sys; from shiftbench.leaderboard import render\n"
              "real = render.SiteBuilder.write\n"
              "def write(self, *a, **k):\n    real(self, *a, **k)\n    os._exit(9)  # as a SIGKILL would\n"
              "render.SiteBuilder.write = write\n"
              f"render.build_site({str(results)!r}, {str(site)!r})\n")
    proc = subprocess.run([sys.executable, "-c", killed], cwd=tmp_path, env=cli_env(), capture_output=True)
    assert proc.returncode == 9
    leftovers = list(tmp_path.glob(".site.building-*"))
    assert len(leftovers) == 1 and any(leftovers[0].iterdir())
    alive = tmp_path / f".site.building-{os.getppid()}-x"  # a build by a live process is left alone
    alive.mkdir()
    build_site(results, site)
    assert sorted(p.name for p in tmp_path.glob(".site.*")) == [alive.name]
    assert (site / "index.html").exists()


@pytest.mark.slow  # builds a wheel and a virtual environment
def test_a_wheel_install_works_in_a_project_and_says_so_outside_one(tmp_path):
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(repo)], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this checkout on the path
    env.update(OMP_NUM_THREADS="1", SHIFTBENCH_CACHE=str(tmp_path / "cache"))
    # --ignore-installed: the machine may have shiftbench installed (editable) where the venv can see it
    subprocess.run([venv / "bin" / "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
                   check=True, capture_output=True, env=env)

    def shiftbench(*args, cwd):
        return subprocess.run([venv / "bin" / "shiftbench", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)

    where = subprocess.run([venv / "bin" / "python", "-c", "import shiftbench; print(shiftbench.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv))  # the wheel, not this checkout
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = shiftbench("run", "--quiet", cwd=outside)
    assert proc.returncode == 2 and "not inside a shiftbench project" in proc.stderr and not list(outside.iterdir())
    root = fault_project(tmp_path / "p", SOURCE)
    proc = shiftbench("run", "--quiet", "--device", "cpu", cwd=root)  # worker processes import the wheel too
    assert proc.returncode == 0, proc.stderr
    assert counts_line(proc.stdout) == f"{SCENARIOS} cells: {SCENARIOS} computed, 0 reused, 0 failed"
    assert (root / "leaderboard" / "site" / "static" / "style.css").exists()  # package data came along
