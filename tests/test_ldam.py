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


@pytest.mark.parametrize("method", ["ldam_drw", "cb_focal"])
def test_end_to_end_on_digits(method, digits_data, tmp_path):
    from ltbench.run import run_one

    sets = {"epochs": "2", "drw_epoch": "1"}
    path = run_one(method, "digits-lt10", _backbone(), 0, sets, data_root=digits_data, results=tmp_path)
    res = json.loads(path.read_text())
    assert 0.0 <= res["metrics"]["avg"] <= 1.0
    assert res["records"]["ldam"]["rule"] == ("drw" if method == "ldam_drw" else "reweight")
    assert res["config"]["drw_epoch"] == 1
