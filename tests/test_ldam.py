"""LDAM-DRW family: margins, LDAM loss, class-balanced / DRW weights, focal loss (hand values), end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltbench.baselines.ldam import (
    CosineClassifier,
    class_balanced_weights,
    focal_loss,
    ldam_loss,
    ldam_margins,
    rule_weights,
    sigmoid_focal_loss,
)


def test_ldam_margins_hand_values():
    # n^-1/4 = 100^-1/4 = 0.316228, 16^-1/4 = 0.5, 1^-1/4 = 1; the largest (rarest) margin becomes 0.5
    m = ldam_margins([100, 16, 1], max_m=0.5)
    assert m.tolist() == pytest.approx([0.5 * 100**-0.25, 0.25, 0.5], abs=1e-7)


def test_ldam_loss_subtracts_the_true_class_margin_then_scales():
    cos = torch.tensor([[0.2, 0.1], [0.3, 0.5]])
    y = torch.tensor([0, 1])
    margins = torch.tensor([0.1, 0.3])
    # sample 0: s·(0.2 − 0.1, 0.1) = (3, 3) → log 2; sample 1: s·(0.3, 0.5 − 0.3) = (9, 6) → −log softmax_1
    l0 = math.log(2)
    l1 = -6 + math.log(math.exp(9) + math.exp(6))
    assert ldam_loss(cos, y, margins, scale=30).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    # with class weights, F.cross_entropy's weighted mean: Σ w_y ℓ / Σ w_y
    w = torch.tensor([1.0, 3.0])
    assert ldam_loss(cos, y, margins, 30, w).item() == pytest.approx((l0 + 3 * l1) / 4, rel=1e-6)


def test_class_balanced_weights_hand_values():
    beta = 0.5
    raw = [(1 - beta) / (1 - beta**10), (1 - beta) / (1 - beta**1)]
    expect = [2 * r / sum(raw) for r in raw]
    assert class_balanced_weights([10, 1], beta).tolist() == pytest.approx(expect, rel=1e-6)
    assert class_balanced_weights([10, 1, 5], 0.0).tolist() == [1.0, 1.0, 1.0]


def test_drw_switches_at_drw_epoch_and_reweight_from_start():
    counts = [100, 10]
    assert rule_weights(counts, "none", 0) is None
    assert rule_weights(counts, "drw", 159, 0.9999, 160).tolist() == [1.0, 1.0]
    late = rule_weights(counts, "drw", 160, 0.9999, 160)
    assert late.tolist() == pytest.approx(class_balanced_weights(counts, 0.9999).tolist())
    assert late[1] > late[0] and late.sum().item() == pytest.approx(2.0)
    assert rule_weights(counts, "reweight", 0).tolist() == pytest.approx(late.tolist())


def test_focal_loss_hand_values():
    logits = torch.zeros(1, 2)
    y = torch.tensor([0])
    ce = math.log(2)  # p = 0.5
    assert focal_loss(logits, y, 0.0).item() == pytest.approx(ce)
    assert focal_loss(logits, y, 1.0).item() == pytest.approx(0.5 * ce)
    # the official computes p from the *weighted* CE: ℓ = w·log 2, p = exp(−ℓ)
    w = torch.tensor([2.0, 1.0])
    lw = 2 * ce
    assert focal_loss(logits, y, 1.0, w).item() == pytest.approx((1 - math.exp(-lw)) * lw)


def test_cui_sigmoid_focal_loss_hand_value():
    # one image of class 0, C = 2, logits (0, ln 3): p = σ(z) = (1/2, 3/4)
    # class 0 is the positive: p_t = 1/2, BCE = ln 2, (1 − p_t)^γ = 1/2 at γ = 1
    # class 1 a negative: p_t = 1 − 3/4 = 1/4, BCE = −ln(1/4) = ln 4, (1 − p_t) = 3/4
    z = torch.tensor([[0.0, math.log(3.0)]])
    y = torch.tensor([0])
    expect = 0.5 * math.log(2) + 0.75 * math.log(4)  # summed over classes, / 1 positive
    assert sigmoid_focal_loss(z, y, 1.0).item() == pytest.approx(expect, rel=1e-6)
    assert sigmoid_focal_loss(z, y, 0.0).item() == pytest.approx(math.log(2) + math.log(4), rel=1e-6)
    # class weights: every output of an image is weighted by its true class's weight; / number of positives
    z2 = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    w = torch.tensor([2.0, 0.5])
    other = 0.5 * math.log(2) + 0.25 * math.log(4 / 3)  # class 1 positive: p_t = 3/4 → BCE ln(4/3), (1/4)
    got = sigmoid_focal_loss(z2, torch.tensor([0, 1]), 1.0, w).item()
    assert got == pytest.approx((2.0 * expect + 0.5 * other) / 2, rel=1e-6)
    # not the softmax focal loss of LDAM-DRW's re-implementation (cb_focal)
    # (softmax: p_0 = 1/4, (1 − 1/4)·ln 4 ≈ 1.040 against 1.386 here)
    assert focal_loss(z, y, 1.0).item() == pytest.approx(0.75 * math.log(4), rel=1e-6)
    assert sigmoid_focal_loss(z, y, 1.0).item() - focal_loss(z, y, 1.0).item() > 0.3


def test_cosine_classifier_is_scaled_cosine():
    torch.manual_seed(0)
    head = CosineClassifier(4, 3, scale=30.0)
    assert head.weight.norm(dim=0).tolist() == pytest.approx([1.0] * 3, abs=1e-6)
    x = torch.randn(5, 4)
    expect = 30 * torch.nn.functional.cosine_similarity(x[:, None, :], head.weight.T[None], dim=2)
    assert torch.allclose(head(x), expect, atol=1e-5)


def _backbone() -> str:
    from ltbench.registry import BACKBONES

    return "reactnet-a-tiny" if "reactnet-a-tiny" in BACKBONES else "cnn-digits"


@pytest.mark.parametrize(
    ("method", "loss", "rule"),
    [
        ("ldam_drw", "ldam", "drw"),
        ("cb_focal", "focal", "reweight"),
        ("cb_focal_cui", "sigmoid_focal", "reweight"),
    ],
)
def test_end_to_end_on_digits(method, loss, rule, digits_data, tmp_path, monkeypatch):
    from ltbench.run import run_one
    from ltbench.trainer import Trainer

    first_bias = []
    real_fit = Trainer.fit

    def fit(self, modules, *a, **k):  # the classifier's bias as training starts
        first_bias.append(modules["model"].classifier.bias.detach().clone() if loss != "ldam" else None)
        return real_fit(self, modules, *a, **k)

    monkeypatch.setattr(Trainer, "fit", fit)
    sets = {"epochs": "1", "drw_epoch": "1"}
    path = run_one(method, "digits-lt10", "cnn-digits", 0, sets, data_root=digits_data, results=tmp_path)
    res = json.loads(path.read_text())
    rec = res["records"]["ldam"]
    assert (rec["loss"], rec["rule"]) == (loss, rule) and res["records"]["stages"][0]["loss"] == loss
    n = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]
    assert rec["margins"] == pytest.approx([0.5 * (c / 10) ** -0.25 for c in n], abs=1e-6)
    if loss == "sigmoid_focal":  # Cui et al.: every class starts at σ(b) = 1/C, b = −log(C − 1)
        assert first_bias[0].tolist() == pytest.approx([-math.log(9)] * 10, abs=1e-6)
