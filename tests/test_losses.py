"""Shared losses against hand-derived values: LAS, balanced softmax, mixup, the meta sampler's ST sample."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ltbench.baselines.losses import (
    balanced_softmax_loss,
    las_epsilons,
    las_loss,
    mixup_batch,
    mixup_loss,
    sample_weighted_loss,
    straight_through_gumbel,
)


def test_las_concave_epsilon_at_n_min_n_max_and_midpoint():
    # n_max = 100 → ε_head, n_min = 10 → ε_tail, n = 55 is the midpoint: ε_t + (ε_h − ε_t)·sin(π/4)
    eps = las_epsilons([100, 55, 10], eps_head=0.3, eps_tail=0.1).tolist()
    assert eps == pytest.approx([0.3, 0.1 + 0.2 * math.sqrt(0.5), 0.1], abs=1e-7)


def test_las_linear_and_convex_midpoints():
    lin = las_epsilons([100, 55, 10], 0.3, 0.1, "linear").tolist()
    assert lin == pytest.approx([0.3, 0.2, 0.1], abs=1e-7)
    # MiSLAS's convex: ε_h + (ε_h − ε_t)·sin(3π/2 + rπ/2) at r = 1/2 → 0.3 − 0.2·cos(π/4)
    cvx = las_epsilons([100, 55, 10], 0.3, 0.1, "convex").tolist()
    assert cvx == pytest.approx([0.3, 0.3 - 0.2 * math.sqrt(0.5), 0.1], abs=1e-7)


def test_las_loss_hand_value():
    # logits (ln 2, 0, 0): p = (1/2, 1/4, 1/4); target 0 with ε = 0.3 over all 3 classes
    logits = torch.tensor([[math.log(2.0), 0.0, 0.0]])
    eps = torch.tensor([0.3, 0.0, 0.0])
    nll = math.log(2.0)
    smooth = (math.log(2.0) + 2 * math.log(4.0)) / 3
    expect = 0.7 * nll + 0.3 * smooth
    assert las_loss(logits, torch.tensor([0]), eps).item() == pytest.approx(expect, rel=1e-6)
    # ε = 0 is plain CE
    assert las_loss(logits, torch.tensor([1]), eps).item() == pytest.approx(math.log(4.0), rel=1e-6)


def test_balanced_softmax_is_ce_on_logits_plus_log_prior():
    # z = (1, 2), counts (3, 1): p_0 = 0.75e / (0.75e + 0.25e²) = 3 / (3 + e)
    z = torch.tensor([[1.0, 2.0]])
    loss = balanced_softmax_loss(z, torch.tensor([0]), [3, 1]).item()
    assert loss == pytest.approx(math.log((3 + math.e) / 3), rel=1e-6)
    # and equals CE(z + log π) on a random batch
    torch.manual_seed(0)
    z = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    counts = [40, 20, 8, 2]
    log_pi = torch.log(torch.tensor(counts, dtype=torch.float32) / 70)
    assert balanced_softmax_loss(z, y, counts).item() == pytest.approx(
        F.cross_entropy(z + log_pi, y).item(), rel=1e-6
    )


def test_mixup_loss_hand_value():
    # logits (0, ln 3): p = (1/4, 3/4); λ = 0.3 on y_a = 0, 0.7 on y_b = 1
    z = torch.tensor([[0.0, math.log(3.0)]])
    loss = mixup_loss(z, torch.tensor([0]), torch.tensor([1]), 0.3).item()
    assert loss == pytest.approx(0.3 * math.log(4.0) + 0.7 * math.log(4.0 / 3.0), rel=1e-6)


def test_mixup_batch_draws_lambda_from_beta_and_mixes_with_a_permutation():
    x = torch.arange(4, dtype=torch.float32).view(4, 1) * 10
    y = torch.tensor([0, 1, 2, 3])
    np.random.seed(7)
    lam_expected = float(np.random.beta(1.0, 1.0))
    np.random.seed(7)
    mixed, y_a, y_b, lam = mixup_batch(x, y, 1.0)
    assert lam == pytest.approx(lam_expected)
    assert torch.equal(y_a, y) and sorted(y_b.tolist()) == [0, 1, 2, 3]
    assert torch.allclose(mixed[:, 0], lam * x[:, 0] + (1 - lam) * x[y_b, 0])
    # α ≤ 0: no mixing (λ = 1)
    same, _, _, lam0 = mixup_batch(x, y, 0.0)
    assert lam0 == 1.0 and torch.equal(same, x)


def test_straight_through_gumbel_value_and_gradient():
    w = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    log_w = w.log().requires_grad_(True)
    g = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    index, st = straight_through_gumbel(log_w, g)
    # argmax of (ln .2, ln .3 + 1, ln .5) = 1; the value is one-hot
    assert int(index) == 1
    assert st.detach().tolist() == [0.0, 1.0, 0.0]
    # gradient of the soft sample s = softmax(log w + g): ∂s_1/∂log w_j = s_1(δ_1j − s_j)
    s = torch.softmax(w.log() + g, 0)
    (grad,) = torch.autograd.grad(st[1], log_w)
    expect = s[1] * (torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) - s)
    assert torch.allclose(grad, expect)


def test_sample_weighted_loss_value_is_the_mean_and_gradient_goes_through_the_sample():
    log_w = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
    index, st = straight_through_gumbel(log_w, g)
    per = torch.tensor([1.5, 0.5], dtype=torch.float64)
    loss = sample_weighted_loss(per, st)
    assert loss.item() == pytest.approx(1.0)
    (grad,) = torch.autograd.grad(loss, log_w)
    s = torch.softmax(g, 1)  # log w = 0
    expect = torch.zeros(2, 3, dtype=torch.float64)
    for b, i in enumerate(index.tolist()):
        onehot = F.one_hot(torch.tensor(i), 3).double()
        expect[b] = per[b] / 2 * s[b, i] * (onehot - s[b])
    assert torch.allclose(grad, expect)
