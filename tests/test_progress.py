"""Progress: plain lines when stderr is a file or pipe, rich bars on a terminal, silence at --quiet.

The line format is pinned on a controlled clock; the CLI is run in subprocesses with stderr a pipe (plain), a
pseudo-terminal (rich) and with ``--quiet``; the demo's worker processes are checked to reach the log.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ltbench.progress as progress
from ltbench.progress import PlainProgress, epoch_summary, report

LTBENCH = str(Path(sys.executable).parent / "ltbench")
# digits-LT at IR 10 (the paper's Table 6 counts, from the registry's `expected`)
DIGITS_COUNTS = {"train": 403, "test": 400, "pretrain": 300}


def env() -> dict[str, str]:
    """The test process's environment without what silences or forces progress."""
    drop = ("LTBENCH_NO_PROGRESS", "LTBENCH_QUIET", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e["TERM"] = "xterm-256color"
    return e


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "perf_counter", c)
    monkeypatch.setattr(progress, "_label", "")
    monkeypatch.delenv("LTBENCH_QUIET", raising=False)
    return c


def test_plain_lines_say_what_how_far_elapsed_and_eta(clock, capsys):
    with PlainProgress(every=1e9) as prog:
        task = prog.add_task("ce", total=40, info="")
        clock.t += 10
        prog.update(task, advance=10, info="ignored until reported")
        report(prog, task, "epoch 1/4 loss 1.5 lr 0.01")  # 10 of 40 steps in 10 s: 30 s to go
        clock.t += 3725
        prog.update(task, advance=30)
        report(prog, task, "epoch 4/4 loss 0.25 lr 0")
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "[ltbench] ce: epoch 1/4 loss 1.5 lr 0.01, 25%, elapsed 0:00:10, ETA 0:00:30",
        "[ltbench] ce: epoch 4/4 loss 0.25 lr 0, 100%, elapsed 1:02:15",  # reported at the end: no "done" line
    ]


def test_a_stage_ends_with_one_line_and_long_stages_say_so_on_the_way(clock, capsys):
    progress.set_label("ce seed 1")
    with PlainProgress(every=60) as prog:
        task = prog.add_task("writing train", total=1000, info="")
        for _ in range(10):
            clock.t += 15  # a line after 60 s, then after 120 s
            prog.advance(task, 100)
        hidden = prog.add_task("rank 1", total=1, info="", visible=False)
        prog.advance(hidden)
    assert capsys.readouterr().err.splitlines() == [
        "[ltbench] ce seed 1 | writing train: 400/1,000, 40%, elapsed 0:01:00, ETA 0:01:30",
        "[ltbench] ce seed 1 | writing train: 800/1,000, 80%, elapsed 0:02:00, ETA 0:00:30",
        "[ltbench] ce seed 1 | writing train: done 1,000/1,000, 100%, elapsed 0:02:30",
    ]


def test_no_line_after_an_error(clock, capsys):
    with pytest.raises(KeyError), PlainProgress(every=1e9) as prog:
        prog.add_task("writing train", total=10, info="")
        raise KeyError("x")
    assert capsys.readouterr().err == ""


def test_epoch_summary():
    rec = {"epoch": 3, "loss": 1.23456, "lr": 0.001, "images_per_s": 1234.4, "acc": 0.8125}
    assert epoch_summary(rec, 10) == "epoch 3/10 loss 1.235 lr 0.001 1,234 img/s acc 0.8125"


def _run(args, cwd, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LTBENCH, *map(str, args)],
        cwd=cwd,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=600,
    )


def test_build_and_train_print_lines_into_a_pipe(tmp_path):
    p = _run(["build", "digits", "--ir", "10", "--out", "d"], tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    for split, n in DIGITS_COUNTS.items():
        assert f"[ltbench] writing {split}: done {n}/{n}, 100%, elapsed 0:00:0" in "\n".join(lines)
    assert (
        "\x1b[" not in p.stderr
        and lines[-1].startswith("built d/digits-lt10")
        and p.stdout == "d/digits-lt10\n"
    )

    args = [
        "run",
        "--method",
        "ce",
        "--dataset",
        "digits-lt10",
        "--data",
        "d",
        "--results",
        "r",
        "--epochs",
        "2",
    ]
    p = _run([*args, "--backbone", "cnn-digits", "--device", "cpu"], tmp_path)
    assert p.returncode == 0, p.stderr
    epochs = [
        ln for ln in p.stderr.splitlines() if ln.startswith("[ltbench] ce on digits-lt10 seed 0 | ce: epoch")
    ]
    assert len(epochs) == 2
    assert epochs[0].startswith("[ltbench] ce on digits-lt10 seed 0 | ce: epoch 1/2 loss ")
    assert " img/s, 50%, elapsed " in epochs[0] and ", ETA " in epochs[0]
    assert " img/s, 100%, elapsed " in epochs[1] and "ETA" not in epochs[1]
    assert "ce on digits-lt10" in p.stdout  # the result table

    p = _run(["--quiet", *args, "--backbone", "cnn-digits", "--device", "cpu"], tmp_path)
    assert p.returncode == 0 and p.stderr == ""
    assert "ce on digits-lt10" in p.stdout and "wrote" not in p.stdout  # nothing but the table


def test_quiet_build_prints_only_the_path(tmp_path):
    p = _run(["-q", "build", "digits", "--ir", "100", "--out", "d"], tmp_path)
    assert p.returncode == 0 and p.stderr == "" and p.stdout == "d/digits-lt100\n"


def test_rich_bars_on_a_terminal(tmp_path):
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [LTBENCH, "build", "digits", "--ir", "10", "--out", "d"],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=600) == 0
    shown = b"".join(chunks).decode(errors="replace")
    assert "\x1b[?25l" in shown  # rich's live display hid the cursor: the bars were drawn
    assert "[ltbench]" not in shown and "built" in shown


@pytest.mark.slow
def test_demo_workers_reach_the_log(tmp_path):
    log = tmp_path / "log"
    with log.open("w") as f:
        p = subprocess.run(
            [LTBENCH, "demo", "--method", "ce", "--seeds", "2", "--jobs", "2", "--backbone", "cnn-digits"],
            cwd=tmp_path,
            env=env(),
            stdout=f,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    text = log.read_text()
    assert p.returncode == 0, text
    for seed in (0, 1):  # each worker process's epochs, labelled with its run
        assert f"[ltbench] ce seed {seed} | ce: epoch 1/30 loss " in text
        assert f"[ltbench] ce seed {seed} | ce: epoch 30/30 loss " in text
    assert "[ltbench] demo on digits-lt10 (2 workers): 1/2 runs, ce seed " in text
    assert "[ltbench] demo on digits-lt10 (2 workers): 2/2 runs, ce seed " in text
    # the closing table is the head/medium/tail one, each row on one line of the log (no cell folded)
    mean_std = r"\d+\.\d\d ± \d+\.\d\d"
    assert re.search(rf"│ ce +│ cnn-digits +(?:│ +{mean_std} ){{4}}│ +2 │\n", text), text
    page = re.search(r"all columns of the table above \(CI, paired vs ce, ECE, cost\): (\S+)\n", text)
    assert page and page[1] == "leaderboards/digits-lt10.md" and (tmp_path / page[1]).exists(), text
