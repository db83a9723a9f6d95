"""Progress in logs: no carriage-return frames when output is not a terminal, --quiet, a final summary line."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from conftest import REPO, make_project, submission

from shiftbench.core.progress import LineProgress, progress_bar, progress_iter


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_at_each_tenth_and_at_the_end(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    assert list(progress_iter(range(40), "cells", unit="cell")) == list(range(40))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert [ln.split(" (")[0] for ln in lines[:-1]] == [f"cells: {4 * k}/40 cell" for k in range(1, 10)]
    assert lines[-1].startswith("cells: 40/40 cell done in ")

    log.truncate(0), log.seek(0)
    bar = progress_bar(3, "training", unit="epoch")
    assert isinstance(bar, LineProgress)
    for _ in range(3):
        bar.update()
    bar.close()
    bar.close()  # closing twice writes one end line
    assert [ln.split(" (")[0] for ln in log.getvalue().splitlines()][:2] == ["training: 1/3 epoch", "training: 2/3 epoch"]
    assert len(log.getvalue().splitlines()) == 3

    log.truncate(0), log.seek(0)
    list(progress_iter(range(5), "quiet", enabled=False))
    assert log.getvalue() == ""


def test_a_terminal_still_gets_a_live_bar(monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = progress_bar(5, "cells")
    assert not isinstance(bar, LineProgress)
    bar.close()


def run_logged(root, *args, log_name="log"):
    """`shiftbench run ARGS > log 2>&1` in a fresh process; returns the log's bytes."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
           "SHIFTBENCH_CACHE": str(root / "cache")}  # its own cache: the source model is trained, with its bar
    log = root / log_name
    with open(log, "wb") as out:
        code = subprocess.run([sys.executable, "-m", "shiftbench", "run", *args], cwd=root, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=600).returncode
    assert code == 0, log.read_text()
    return log.read_bytes()


def test_run_into_a_log_leaves_no_carriage_returns_and_ends_with_a_summary(tmp_path):
    root = make_project(tmp_path / "p", {"source.yaml": submission("Source", "source"),
                                         "bn.yaml": submission("BN", "bn_adapt")})
    text = run_logged(root, "--store", str(tmp_path / "store")).decode()
    assert "\r" not in text
    lines = text.splitlines()
    assert any(ln.startswith("training source model: 3/3 epoch done in ") for ln in lines)
    assert any(ln.startswith("cells: 12/12 cell done in ") for ln in lines)
    assert lines[-1] == f"done: 12 cells, 0 failed, 2 result files; leaderboard: {root / 'leaderboard' / 'site' / 'index.html'}"

    quiet = run_logged(root, "--quiet", "--force", "--store", str(tmp_path / "store"), log_name="quiet").decode()
    assert quiet.splitlines() == ["12 cells: 12 computed, 0 reused, 0 failed", lines[-1]]
