"""CANDLE end to end on digits-LT (IR 100) with reactnet-a-tiny and the pretrained digits teacher (slow)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_calibrated_teacher_tail_far_above_binary_ce(digits_data, tmp_path):
    from ltbench.run import run_one

    common = {"dataset": "digits-lt100", "backbone": "reactnet-a-tiny", "data_root": digits_data}
    ce = json.loads(run_one("ce", results=tmp_path, **common).read_text())
    out = run_one("candle", results=tmp_path, **common)
    res = json.loads(out.read_text())
    assert res["row"] == "candle" and res["config"]["variant"] == "cd+alb+mr"
    rec = res["records"]
    teacher_tail, ce_tail = rec["teacher_calibration"]["tail"], ce["metrics"]["tail"]
    assert teacher_tail >= 0.6 and teacher_tail >= ce_tail + 0.3, (teacher_tail, ce_tail)
    assert len(rec["lambda_per_epoch"]) == res["config"]["epochs"]
    assert all(0.0 < v < 1.0 for v in rec["lambda_per_epoch"])
    assert len(rec["weight_norms"]["student"]) == len(rec["weight_norms"]["teacher"]) == 10
    assert rec["teacher"]["resolutions"] == [4, 8, 16] and rec["teacher"]["encoder"] == "digits"


@pytest.mark.slow
def test_cli_variant_row(digits_data, tmp_path):
    from ltbench.run import run_one

    out = run_one(
        "candle",
        "digits-lt10",
        "reactnet-a-tiny",
        sets={"variant": "cd", "epochs": "2", "calib_epochs": "2"},
        data_root=digits_data,
        results=tmp_path,
    )
    res = json.loads(out.read_text())
    assert res["row"] == "candle[cd]" and "candle[cd]" in str(out)
    assert res["records"]["lambda_per_epoch"] == [0.5, 0.5]
