"""CANDLE's distillation objective (Eq. 2–4, Alg. 1) with adversarial balancing, as one scalar to backprop.

Per sample i (A2): K_i = KL(p_T(x_i) ‖ p_B(x_i)) (T = 1, teacher as target — A6), F_i = 1 − cos(e^T_B(x_i),
e^B(x_i)) on pooled features, λ_i = σ(AB_φ([K_i, F_i])) (A1: MLP 2→18→34→50→1, ReLU hidden, sigmoid out).

- the classifier θ_c minimises mean_i K_i;
- the encoder θ_e minimises mean_i (1−λ_i)K_i + λ_i F_i with λ constant (A3) — its K path goes through the
  classifier with the classifier's weights held constant (A4: one student forward, a functional call of the
  classifier on detached weights);
- φ maximises the same loss with K_i, F_i held constant (A3: AB's inputs are loss values, detached).

One backward of ``total = mean K^c + L_enc − L_adv`` gives each parameter set exactly its own gradient: θ_c
only sees mean K^c (the student feature is detached there), θ_e only sees L_enc (the classifier weights and λ
are detached there), φ only sees −L_adv (K, F detached), so a descent step on ``total`` is Alg. 1's descent
for θ_c, θ_e and *ascent* for φ (A5: one optimizer, same lr and schedule; ``ab_lr`` may scale φ's group).
The sign-flipped term replaces a gradient-reversal layer; ``tests/test_candle.py`` checks all four routes.

``ab_input_grad=True`` is the A3 alternative: the encoder also gets gradients through λ's inputs (AB's
weights held constant for that path), i.e. plain autograd of L(θ_e) for the encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ltbench.losses import kd_kl


class AdversarialBalancer(nn.Module):
    """AB_φ: [K, F] → λ ∈ (0, 1). ``hidden`` (18, 34, 50) is App. D's "3 hidden layers expanding by 16 from 2"."""

    def __init__(self, hidden: Sequence[int] = (18, 34, 50)):
        super().__init__()
        dims = [2, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, k: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(torch.stack([k, f], dim=-1))).squeeze(-1)


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 − cos(a_i, b_i) per row."""
    return 1.0 - F.cosine_similarity(a, b, dim=1)


def constant_call(module: nn.Module, *args: torch.Tensor) -> torch.Tensor:
    """``module(*args)`` with its parameters detached: gradients reach the inputs, never the module."""
    return functional_call(module, {k: v.detach() for k, v in module.named_parameters()}, args)


@dataclass
class Terms:
    """The pieces of one step: ``total`` to backprop, and per-sample values for logging and tests."""

    total: torch.Tensor
    k: torch.Tensor  # K_i (or the label term for the baseline), detached
    f: torch.Tensor  # F_i, detached
    lam: torch.Tensor  # λ_i, detached
    encoder_loss: torch.Tensor  # L_enc with λ constant (value)


def candle_objective(
    student: nn.Module,
    x: torch.Tensor,
    teacher_feature: torch.Tensor,
    guide: Callable[[torch.Tensor], torch.Tensor],
    balancer: nn.Module | None = None,
    fixed_lambda: float = 0.5,
    granularity: str = "sample",
    ab_input_grad: bool = False,
) -> Terms:
    """Eq. 4 (``balancer``) or Eq. 2 with a fixed λ (``balancer=None``) for one batch.

    ``guide(logits) -> (B,)`` is the per-sample classifier term: KL to the teacher for CANDLE, CE to the label
    for the ``baseline`` variant. ``granularity='batch'`` feeds AB the batch means and uses one λ (A2 alt.).
    """
    feats = student.forward_features(x)
    k_c = guide(student.classifier(feats.detach()))  # θ_c's term: the encoder does not see it
    k_e = guide(constant_call(student.classifier, feats))  # θ_e's K path, classifier weights constant
    f_e = cosine_distance(feats, teacher_feature.detach())
    kd, fd = k_e.detach(), f_e.detach()
    if balancer is None:
        lam = torch.full_like(kd, float(fixed_lambda))
    elif granularity == "batch":
        lam = balancer(kd.mean()[None], fd.mean()[None]).expand_as(kd)
    elif granularity == "sample":
        lam = balancer(kd, fd)
    else:
        raise ValueError(f"unknown lambda granularity {granularity!r}")
    lam_c = lam.detach()
    encoder_loss = ((1 - lam_c) * k_e + lam_c * f_e).mean()
    if balancer is not None and ab_input_grad:
        if granularity == "batch":
            lam_e = constant_call(balancer, k_e.mean()[None], f_e.mean()[None]).expand_as(k_e)
        else:
            lam_e = constant_call(balancer, k_e, f_e)
        encoder_loss = ((1 - lam_e) * k_e + lam_e * f_e).mean()
    total = k_c.mean() + encoder_loss
    if balancer is not None:
        adversary = ((1 - lam) * kd + lam * fd).mean()
        total = total - adversary  # descent on −L for φ = ascent on L (Alg. 1 line 8)
    return Terms(total, kd, fd, lam_c, encoder_loss.detach())


def kl_guide(
    teacher_logits: torch.Tensor, temperature: float = 1.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """K_i = KL(softmax(l_T/T) ‖ softmax(l_B/T)) per sample (A6: T = 1, no T² factor)."""
    return lambda logits: kd_kl(logits, teacher_logits, temperature, reduction="none")


def ce_guide(labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The baseline's label term: per-sample cross-entropy."""
    return lambda logits: F.cross_entropy(logits, labels, reduction="none")
