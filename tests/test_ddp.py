"""``ltbench run`` under ``torchrun --nproc-per-node 2`` with gloo on CPU: rank 0 writes one result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_torchrun_two_processes_gloo(digits_data, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    env = {**os.environ, "LTBENCH_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc-per-node", "2", "-m", "ltbench", "run", "--method", "ce"]
    cmd += ["--dataset", "digits-lt10", "--backbone", "cnn-digits", "--epochs", "3", "--device", "cpu"]
    cmd += ["--data", str(digits_data), "--results", str(tmp_path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    files = list(tmp_path.glob("digits-lt10/ce/cnn-digits/*.json"))
    assert len(files) == 1
    r = json.loads(files[0].read_text())
    assert r["environment"]["world_size"] == 2
    assert r["metrics"]["avg"] > 0.3  # learns: 3× chance after 3 epochs (single process: similar)
    log = tmp_path / ".runs" / "digits-lt10" / "ce" / "cnn-digits" / "seed0.log"
    assert len(log.read_text().splitlines()) == 3  # rank 0 alone logs
