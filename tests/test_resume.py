"""Kill a training subprocess mid-run, resume it with ``ltbench run … --resume``: the final metrics equal an
uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ARGS = [
    "--method",
    "ce",
    "--dataset",
    "digits-lt10",
    "--backbone",
    "cnn-digits",
    "--epochs",
    "6",
    "--device",
    "cpu",
    "--set",
    "checkpoint_every_s=0",  # a checkpoint after every epoch: the run is killed after its first
]


def ltbench(*args: str, results, data, **kw) -> subprocess.Popen:
    env = {**os.environ, "LTBENCH_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ltbench", "run", *args, "--data", str(data), "--results", str(results)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def result(results) -> dict:
    return json.loads((results / "digits-lt10" / "ce" / "cnn-digits" / "seed0.json").read_text())


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(digits_data, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    p = ltbench(*ARGS, results=full, data=digits_data)
    assert p.wait(timeout=600) == 0, p.stdout.read()

    p = ltbench(*ARGS, results=cut, data=digits_data)
    ckpt = cut / ".runs" / "digits-lt10" / "ce" / "cnn-digits" / "seed0" / "ce.ckpt"
    deadline = time.time() + 600
    while not ckpt.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, "the run ended before it could be interrupted"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (cut / "digits-lt10" / "ce" / "cnn-digits" / "seed0.json").exists()

    p = ltbench(*ARGS, "--resume", results=cut, data=digits_data)
    out = p.communicate(timeout=600)[0]
    assert p.returncode == 0, out
    assert "resumed ce" in out
    a, b = result(full), result(cut)
    assert a["metrics"] == b["metrics"] and a["per_class_accuracy"] == b["per_class_accuracy"]
