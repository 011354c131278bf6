"""TADE: rank-reversed prior, the three-expert loss (hand values), test-time aggregation and its stop, e2e."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltbench.baselines.tade import (
    TADEConfig,
    aggregation_loss,
    inverse_prior,
    learn_aggregation,
    should_stop,
    tade_loss,
)


def test_inverse_prior_reverses_values_in_rank_order():
    # sorted values (0.2, 0.3, 0.5); ranks of (0.5, 0.2, 0.3) are (2, 0, 1) → values of ranks (0, 2, 1)
    assert inverse_prior(torch.tensor([0.5, 0.2, 0.3])).tolist() == pytest.approx([0.2, 0.5, 0.3])
    # an LT prior in label order is simply reversed — not 1/π
    assert inverse_prior(torch.tensor([0.6, 0.3, 0.1])).tolist() == pytest.approx([0.1, 0.3, 0.6])


def test_inverse_prior_of_a_head_to_tail_prior_with_ties_is_the_reversed_prior():
    # CIFAR-100-LT100's profile ends in tied counts; a head-to-tail prior must come back exactly reversed
    prior = torch.tensor([0.4, 0.2, 0.2, 0.1, 0.05, 0.05])
    assert inverse_prior(prior).tolist() == pytest.approx(prior.flip(0).tolist())
    counts = torch.tensor([500, 400, 400, 400, 30, 5, 5, 5, 5], dtype=torch.float64)
    assert torch.equal(inverse_prior(counts / counts.sum()), (counts / counts.sum()).flip(0))


def _ce(logits, y):
    return -logits[y] + math.log(sum(math.exp(v) for v in logits))


def test_tade_loss_hand_values():
    counts = [3, 1]  # π = (0.75, 0.25), π̄ = (0.25, 0.75)
    z = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])  # (B=1, 3 experts, C=2)
    y = torch.tensor([1])
    tau = 2.0
    lp = [math.log(0.75 + 1e-9), math.log(0.25 + 1e-9)]
    lpi = [math.log(0.25 + 1e-9), math.log(0.75 + 1e-9)]
    e1 = _ce([1.0, 0.0], 1)
    e2 = _ce([0.5 + lp[0], 0.5 + lp[1]], 1)
    e3 = _ce([0.0 + lp[0] - tau * lpi[0], 1.0 + lp[1] - tau * lpi[1]], 1)
    assert tade_loss(z, y, counts, tau).item() == pytest.approx(e1 + e2 + e3, rel=1e-6)


def test_should_stop_rounds_like_sade():
    assert should_stop([0.5, 0.46, 0.04])
    assert not should_stop([0.34, 0.33, 0.33])
    assert not should_stop([0.5, 0.451, 0.049])  # rounds to 0.05: the official keeps going
    assert should_stop([0.5, 0.456, 0.044])


def test_aggregation_loss_values():
    z = torch.randn(4, 3, 5)
    w = torch.zeros(3)
    assert aggregation_loss(w, z, z).item() == pytest.approx(-1.0, abs=1e-6)
    # hand value: one expert only (w → a = (1, 0, 0) in the limit), two 2-class views
    z1 = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    z2 = torch.tensor([[[math.log(3.0), 0.0], [0.0, 0.0], [0.0, 0.0]]])
    w = torch.tensor([50.0, 0.0, 0.0])
    p1, p2 = (0.5, 0.5), (0.75, 0.25)
    cos = (p1[0] * p2[0] + p1[1] * p2[1]) / (math.hypot(*p1) * math.hypot(*p2))
    assert aggregation_loss(w, z1, z2).item() == pytest.approx(-cos, rel=1e-5)


def _fake_experts(images):
    """Experts 1 and 2 agree across views (logits from the image itself); expert 3 is view-dependent noise."""
    base = images.flatten(1)[:, :4] * 5
    return torch.stack([base, base.flip(1), torch.randn_like(base) * 20], dim=1)


def _batches():
    torch.manual_seed(0)
    x = torch.randn(64, 1, 2, 2)
    return [torch.stack([x[i : i + 16], x[i : i + 16]], dim=1) for i in range(0, 64, 16)]


def test_aggregation_learns_to_drop_the_inconsistent_expert_and_stops():
    cfg = TADEConfig(tta_epochs=5, tta_lr=20.0, tta_momentum=0.0, tta_weight_decay=0.0, tta_nesterov=False)
    torch.manual_seed(1)
    a, epochs = learn_aggregation(_fake_experts, _batches(), cfg)
    assert a.sum().item() == pytest.approx(1.0)
    assert a[2] < 0.045 and epochs == 1  # stopped after the first pass
    cfg.tta_stop = 0.0  # never stops: runs every epoch
    torch.manual_seed(1)
    _, epochs = learn_aggregation(_fake_experts, _batches(), cfg)
    assert epochs == 5


def test_aggregation_trains_only_the_weights():
    cfg = TADEConfig(tta_epochs=1)
    model = torch.nn.Linear(4, 4)
    before = model.weight.clone()

    def experts(x):
        z = model(x.flatten(1)[:, :4])
        return torch.stack([z, z, z], 1)

    learn_aggregation(experts, _batches(), cfg)
    assert torch.equal(model.weight, before) and model.weight.grad is None


def test_end_to_end_on_digits_records_weights(digits_data, tmp_path):
    from ltbench.run import run_one

    sets = {"epochs": "1", "tta_epochs": "1"}
    path = run_one("tade", "digits-lt10", "cnn-digits", 0, sets, data_root=digits_data, results=tmp_path)
    res = json.loads(path.read_text())
    rec = res["records"]["tade"]
    weights = rec["aggregation_weights"]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert weights != pytest.approx([1 / 3] * 3, abs=1e-4)  # the test-time step moved them
    assert rec["epochs"] == 1 and res["records"]["stages"][0]["train_images"] == 403


def _digits_task(digits_data, backbone="cnn-digits"):
    from ltbench.data import open_split
    from ltbench.method import Task

    return Task(info=open_split("digits-lt10", digits_data), backbone=backbone, device=torch.device("cpu"))


def test_predict_applies_the_learned_aggregation_weights(digits_data):
    from ltbench.baselines.tade import TADE, build_tade

    task = _digits_task(digits_data)
    torch.manual_seed(0)
    model = build_tade(task, 30.0).eval()
    method = TADE(TADEConfig(tta_epochs=1, tta_lr=10.0, tta_stop=0.0))
    record = method.prepare_predict(model, task)["tade"]
    a = torch.tensor(record["aggregation_weights"])
    assert record["epochs"] == 1 and (a - 1 / 3).abs().max() > 0.01
    x = task.eval_set()[0][0][None].repeat(4, 1, 1, 1)
    x = x + 0.3 * torch.randn_like(x)
    z = model.expert_logits(x)
    expect = (a[None, :, None] * z).sum(1)  # Σ_k a_k z_k with the recorded weights
    got = method.predict(model, x)
    assert torch.allclose(got, expect, atol=1e-4)
    assert not torch.allclose(got, z.mean(1), atol=1e-3)


def test_time_views_use_the_evaluators_normalisation():
    from ltbench.baselines.tade import test_time_view

    from ltbench.transforms import eval_transform

    for family, size in (("small", 32), ("large", 224), ("digits", 8)):
        view = test_time_view(family, size).transforms[-1]  # the Normalize step
        ref = eval_transform(family, size).transforms[-1]
        assert (list(view.mean), list(view.std)) == (list(ref.mean), list(ref.std)), family


def test_expert_split_follows_the_authors_expert_reactnet(digits_data):
    from ltbench.baselines.tade import build_tade

    # cnn-digits: shared first conv block, experts own blocks 2–3 (SADE's CIFAR split), cosine heads
    # reactnet-a-*: shared stem + blocks 1–7, experts own blocks 8–13 with nn.Linear heads (Expert_ReActNet.py)
    for backbone, n_expert_modules, head in (
        ("cnn-digits", 6, "CosineClassifier"),
        ("reactnet-a-tiny", 6, "Linear"),
    ):
        task = _digits_task(digits_data, backbone)
        model = build_tade(task, 30.0)
        assert len(model.experts) == 3 and all(len(e) == n_expert_modules for e in model.experts)
        assert all(type(h).__name__ == head for h in model.heads)
        flat = [torch.cat([p.flatten() for p in e.parameters()]) for e in model.experts]
        assert not torch.equal(flat[0], flat[1])  # independent initialisations
        assert model.expert_logits(torch.randn(2, 1, 8, 8)).shape == (2, 3, 10)
    assert len(model.stem) == 1 + 7  # stem + blocks 1–7
