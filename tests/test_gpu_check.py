"""benchmarks/gpu_check.py without a GPU: every step recorded with its status and reason, the JSON written,
the exit status; and the G1/G2 layer list against ReActNet-A's published binary-op count."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: the issue's steps, in the order the script runs them (G3's torch.compile last)
STEPS = ["env", "build", "pytest-gpu", "G0", "G1", "G2", "G3", "G4-candle", "G4-train", "G3-compile"]
GPU_TESTS = 27  # gpu-marked tests in tests/test_kernels_cuda.py, counted by hand (parametrized cases each)


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def report(out: Path) -> dict:
    return json.loads((out / "gpu-check.json").read_text())


def test_dry_run_skips_every_cuda_step_with_its_reason(gc, no_cuda, tmp_path):
    rc = gc.main(["--out", str(tmp_path), "--tests", "tests/test_kernels_cuda.py"])
    assert rc == 0
    r = report(tmp_path)
    assert [s["id"] for s in r["steps"]] == STEPS
    status = {s["id"]: s["status"] for s in r["steps"]}
    assert status == {"env": "ok"} | {sid: "skipped" for sid in STEPS[1:]}
    assert all(s["reason"].startswith("no CUDA device") for s in r["steps"][1:])
    pytest_step = r["steps"][2]
    assert f"{GPU_TESTS} gpu tests collected, none run" in pytest_step["reason"]
    assert r["mode"] == "dry-run" and r["summary"] == {"ok": 1, "failed": 0, "skipped": 9}
    env = r["steps"][0]["data"]
    assert env["torch"] == torch.__version__ and env["cuda_available"] is False
    assert env["imports"]["ltbench.builders"].endswith("builders")
    log = (tmp_path / "gpu-check.log").read_text()
    assert all(f"--- {sid}: " in log for sid in STEPS)


def test_require_cuda_fails_without_a_device_but_still_writes(gc, no_cuda, tmp_path):
    rc = gc.main(["--out", str(tmp_path), "--require-cuda", "--steps", "env,G0"])
    assert rc == 1
    steps = {s["id"]: s for s in report(tmp_path)["steps"]}
    assert steps["env"]["status"] == "failed" and "--require-cuda" in steps["env"]["reason"]
    assert steps["G0"]["status"] == "skipped"
    assert steps["G1"] == steps["G1"] | {"status": "skipped", "reason": "not selected (--steps)"}


def test_a_failing_step_is_recorded_and_the_next_steps_still_run(gc, no_cuda, tmp_path, monkeypatch):
    def boom(ctx):
        """Always fails."""
        raise RuntimeError("boom")

    steps = tuple((sid, boom, est) if sid == "G1" else (sid, fn, est) for sid, fn, est in gc.STEPS)
    monkeypatch.setattr(gc, "STEPS", steps)
    rc = gc.main(["--out", str(tmp_path), "--steps", "env,G1,G4-train"])
    assert rc == 1
    r = report(tmp_path)
    by = {s["id"]: s for s in r["steps"]}
    assert by["G1"]["status"] == "failed" and by["G1"]["reason"] == "RuntimeError: boom"
    assert by["G4-train"]["status"] == "skipped"  # measured after the failure
    assert r["summary"] == {"ok": 1, "failed": 1, "skipped": 8}
    assert "Traceback" in (tmp_path / "gpu-check.log").read_text()


def test_time_budget_skips_a_step_that_would_overrun(gc, no_cuda, tmp_path):
    gc.main(["--out", str(tmp_path), "--steps", "env,build", "--budget-s", "10"])
    by = {s["id"]: s for s in report(tmp_path)["steps"]}
    assert by["env"]["status"] == "ok"  # ~5 s estimate fits in 10
    assert by["build"]["status"] == "skipped" and by["build"]["reason"].startswith("time budget")


def test_unknown_step_is_a_usage_error(gc, tmp_path):
    with pytest.raises(SystemExit) as e:
        gc.main(["--out", str(tmp_path), "--steps", "G9"])
    assert e.value.code == 2


def test_layer_shapes_sum_to_reactnet_a_binary_ops(gc):
    """ReActNet-A (Liu et al. 2020, Table 1): 4.82e9 binary operations per 224² image, 13 blocks = 26 convs."""
    layers = gc.reactnet_layers(224)
    assert sum(sh["count"] for sh in layers) == 26
    macs = 0
    for sh in layers:
        ho = (sh["h"] + 2 * (sh["k"] // 2) - sh["k"]) // sh["stride"] + 1
        macs += sh["count"] * ho * ho * sh["n"] * sh["k"] ** 2 * sh["c"]
    assert macs == pytest.approx(4.82e9, rel=1e-3)
    assert {"c": 512, "n": 512, "h": 14, "k": 3, "stride": 1, "count": 5} in layers
