"""DiVE / DiVE*: power-normalised target, τ² factor, BSCE part (hand values), end to end per teacher."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest
import torch
from ltbench.baselines.dive import dive_loss, power_normalized_target
from method_spy import spy  # noqa: F401


def test_power_normalized_target_hand_value():
    # τ = 2, t = (0, 2·ln 4): softmax(t/τ) = (0.2, 0.8); ^0.5 = (√0.2, √0.8) ∝ (1, 2) → (1/3, 2/3)
    t = torch.tensor([[0.0, 2 * math.log(4.0)]])
    assert power_normalized_target(t, 2.0, 0.5).tolist()[0] == pytest.approx([1 / 3, 2 / 3], rel=1e-6)
    # p = 1 is the plain tempered softmax
    assert power_normalized_target(t, 2.0, 1.0).tolist()[0] == pytest.approx([0.2, 0.8], rel=1e-6)


def test_dive_loss_hand_value_with_tau_squared():
    counts = [1, 3]  # π = (0.25, 0.75)
    t = torch.tensor([[0.0, 2 * math.log(4.0)]])  # target (1/3, 2/3) at τ = 2, p = 0.5
    s = torch.zeros(1, 2)  # softmax(s/τ) = (½, ½)
    y = torch.tensor([0])
    alpha, tau = 0.25, 2.0
    kl = (1 / 3) * math.log((1 / 3) / 0.5) + (2 / 3) * math.log((2 / 3) / 0.5)
    bsce = -math.log(0.25)  # CE((0,0) + log π, 0) = −log π_0
    expect = (1 - alpha) * bsce + alpha * tau**2 * kl
    assert dive_loss(s, t, y, counts, tau, 0.5, alpha).item() == pytest.approx(expect, rel=1e-6)
    # the KL part vanishes when the student matches the power-normalised target: softmax(s/τ) = (1/3, 2/3)
    s_match = torch.tensor([[0.0, tau * math.log(2.0)]])
    only_bsce = (1 - alpha) * -math.log(0.25 / (0.25 + 0.75 * 4.0))  # exp(s₁) = exp(2 ln 2) = 4
    assert dive_loss(s_match, t, y, counts, tau, 0.5, alpha).item() == pytest.approx(only_bsce, rel=1e-6)


def test_dive_teacher_gets_no_gradient():
    s = torch.zeros(2, 3, requires_grad=True)
    t = torch.randn(2, 3, requires_grad=True)
    dive_loss(s, t, torch.tensor([0, 1]), [5, 3, 1]).backward()
    assert t.grad is None and s.grad is not None


def _run(method, digits_data, tmp_path, backbone="cnn-digits", **sets):
    from ltbench.run import run_one

    sets = {"epochs": "1", **{k: str(v) for k, v in sets.items()}}
    path = run_one(method, "digits-lt10", backbone, 0, sets, data_root=digits_data, results=tmp_path)
    return json.loads(path.read_text())


def test_dive_with_bsce_teacher_end_to_end(digits_data, tmp_path, spy):  # noqa: F811
    res = _run("dive", digits_data, tmp_path, teacher="bsce", alpha=0.5, temperature=2.0)
    teacher = res["records"]["dive_teacher"]
    assert teacher["source"] == "bsce" and teacher["records"]["stages"][0]["loss"] == "BSCE"
    assert [s["name"] for s in res["records"]["stages"]] == ["dive_student"]
    # the student's step = (1 − α)·BSCE + α·τ²·KL(p̃_T ‖ softmax(s/τ)) with the trained teacher, by hand
    seen, t_model = spy["dive_student"], spy["dive_teacher"].modules["model"]
    student = seen.modules["model"]
    x = torch.stack([seen.dataset[i][0] for i in range(0, 400, 11)])
    y = torch.as_tensor(seen.dataset.labels[0:400:11])
    counts = torch.tensor([100, 77, 59, 46, 35, 27, 21, 16, 12, 10], dtype=torch.float32)
    with torch.no_grad():
        s, t = student(x), t_model(x)
        bsce = -torch.log_softmax(s + torch.log(counts / counts.sum()), 1)[torch.arange(len(y)), y].mean()
        p = torch.softmax(t / 2.0, 1).sqrt()
        p = p / p.sum(1, keepdim=True)
        kl = (p * (p.log() - torch.log_softmax(s / 2.0, 1))).sum(1).mean()
        got = seen.step(x, y)
    assert got.item() == pytest.approx((0.5 * bsce + 0.5 * 4.0 * kl).item(), rel=1e-5)


def test_dive_with_balms_teacher_end_to_end(digits_data, tmp_path):
    from ltbench.registry import METHODS

    if "balms" not in METHODS:
        pytest.skip("the balms baseline (issue 7, part A) is not registered yet")
    res = _run("dive", digits_data, tmp_path, teacher_set="epochs=1,cls_epochs=1")
    teacher = res["records"]["dive_teacher"]
    assert teacher["source"] == "balms" and teacher["config"]["epochs"] == 1
    assert teacher["records"]["balms"]["stage2_epochs"] == 1
    assert [s["name"] for s in teacher["records"]["stages"]] == ["stage1", "balms"]
    assert res["config"]["epochs"] == 1 and res["records"]["stages"][0]["name"] == "dive_student"


def _candle_teacher_available() -> bool:
    """CANDLE's calibration entry point and the teacher weights module it loads encoders from."""
    if any(importlib.util.find_spec(m) is None for m in ("ltbench.candle.calibration", "ltbench.teachers")):
        return False
    from ltbench.candle import calibration

    return hasattr(calibration, "fit_calibrated_teacher")


@pytest.mark.slow
@pytest.mark.skipif(
    not _candle_teacher_available(),
    reason="CANDLE's fit_calibrated_teacher / ltbench.teachers (issue: CANDLE) are not available yet",
)
def test_dive_star_with_candle_teacher_end_to_end(digits_data, tmp_path):
    res = _run("dive_star", digits_data, tmp_path, backbone="reactnet-a-tiny")
    teacher = res["records"]["dive_teacher"]
    assert teacher["source"] == "candle" and teacher["records"]["stages"][0]["name"] == "calibrate"
    assert res["config"]["teacher"] == "candle"


def test_unknown_teacher_is_a_user_error(digits_data, tmp_path):
    from ltbench.errors import LTBenchError

    with pytest.raises(LTBenchError, match="teacher"):  # a Literal choice: rejected when the config resolves
        _run("dive", digits_data, tmp_path, teacher="oracle")


def test_dive_star_takes_its_teacher_from_candle_with_teacher_set(digits_data, tmp_path, monkeypatch):
    """The wiring only: a stand-in FP teacher replaces ``fit_calibrated_teacher`` (the real one is slow);
    ``teacher_set`` reaches CANDLE's config, the student's ``--set``s do not."""
    candle_method = pytest.importorskip("ltbench.candle.method")
    from ltbench.backbones import create_backbone

    calls = []

    def stand_in(task, cfg, width=None):
        calls.append((task.run_dir.name, cfg.calib_epochs, cfg.epochs))
        return create_backbone("cnn-digits", task.num_classes, 1).to(task.device)

    monkeypatch.setattr(candle_method, "fit_calibrated_teacher", stand_in)
    res = _run("dive_star", digits_data, tmp_path, teacher_set="calib_epochs=3")
    assert calls == [("teacher", 3, candle_method.Candle.recipe(False, "digits")["epochs"])]
    teacher = res["records"]["dive_teacher"]
    assert teacher["source"] == "candle" and teacher["config"]["calib_epochs"] == 3
    assert res["config"]["teacher"] == "candle" and res["config"]["epochs"] == 1


def test_no_method_imports_orchestration():
    """Methods stay below orchestration: no module of baselines/ or candle/ imports ltbench.run,
    ltbench.evaluate or (outside itself) ltbench.candle.method; teachers come from ltbench.method_teacher."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    forbidden = {"ltbench.run", "ltbench.evaluate", "ltbench.candle.method"}
    offenders = []
    for path in [*root.glob("baselines/*.py"), *root.glob("candle/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            hits = forbidden.intersection(names) - (
                {"ltbench.candle.method"} if path.name == "method.py" else set()
            )
            if hits:
                offenders.append(f"{path.parent.name}/{path.name}: {sorted(hits)}")
    assert not offenders, offenders
