"""The LDAM-DRW loss family (Cao et al., NeurIPS 2019): LDAM, DRW, class-balanced re-weighting, focal loss.

Follows kaidic/LDAM-DRW (``losses.py``, ``cifar_train.py``, ``models/resnet_cifar.py``), read at 2536330f:

- **LDAM**: per-class margin m_c ∝ n_c^(−1/4), scaled so that max_c m_c = ``max_m`` (0.5); the true-class
  logit loses its margin and the cross-entropy sees ``s·(z − m_y·1_y)`` with s = 30, on a cosine classifier
  (the official ``NormedLinear``: weights U(−1, 1) renormalised to unit columns; the official builds it only
  for LDAM, ``use_norm = loss_type == 'LDAM'``).
- **Re-weighting** (Cui et al. 2019): w_c = (1 − β)/(1 − β^{n_c}), normalised to sum to C, β = 0.9999, used
  as ``F.cross_entropy(weight=w)`` (a weighted *mean*). ``rule="reweight"`` uses them from epoch 0;
  ``rule="drw"`` (deferred re-weighting) uses β = 0 (all weights 1) before ``drw_epoch`` (160) and β after;
  ``rule="none"`` never re-weights.
- **Focal** (γ = 1 in the official runs): per-sample weighted CE ℓ_i, p_i = exp(−ℓ_i), loss mean((1 − p)^γ ℓ)
  — p is computed from the *weighted* CE, as the official ``focal_loss`` does, and the mean is unweighted.
- Recipe (official, CIFAR ResNet-32): 200 epochs, batch 128, SGD m0.9, lr 0.1, wd 2e-4, linear warm-up over
  5 epochs, lr × 0.01 for epoch > 160 and × 1e-4 for epoch > 180 (0-based epochs: milestones 161, 181).
  The repository holds only the CIFAR script, so every family uses it (``official``). ``binary`` is the
  CANDLE paper's protocol (App. D/G: Adam, no weight decay, cosine from lr 0.01, 400 epochs, batch 256);
  DRW's switch stays at 0.8 of training (epoch 320).

Registered rows: ``ldam_drw`` (the paper's method) and ``cb_focal`` (class-balanced focal loss, the
official ``--loss_type Focal --train_rule Reweight`` baseline). Any other combination is one ``--set`` away
(``--set loss=ce --set rule=drw`` is CE-DRW).

Choice where the code is silent: at test time the logits are ``s·cos`` for LDAM (the official evaluates the
raw cosine; argmax is the same, but ECE is only meaningful on the scale the loss was trained at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.errors import LTBenchError
from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.trainer import Trainer

LOSSES = ("ldam", "ce", "focal")
RULES = ("none", "reweight", "drw")


class CosineClassifier(nn.Module):
    """``scale · ⟨x/‖x‖, w_c/‖w_c‖⟩`` (LDAM's / SADE's ``NormedLinear``); weight (F, C) starts U(−1, 1) with
    unit-norm columns."""

    def __init__(self, in_features: int, num_classes: int, scale: float = 1.0):
        super().__init__()
        w = torch.empty(in_features, num_classes).uniform_(-1, 1)
        self.weight = nn.Parameter(w / w.norm(dim=0, keepdim=True))
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)


def ldam_margins(counts: Sequence[int], max_m: float = 0.5) -> torch.Tensor:
    """m_c = n_c^(−1/4), rescaled so that the largest margin (the rarest class's) is ``max_m``."""
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    m = n.pow(-0.25)
    return (m * (max_m / m.max())).float()


def ldam_loss(
    cosine: torch.Tensor,
    targets: torch.Tensor,
    margins: torch.Tensor,
    scale: float = 30.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """CE(s·(z − m_y·onehot(y)), y) with optional class weights (weighted mean, as ``F.cross_entropy``)."""
    onehot = F.one_hot(targets, cosine.shape[1]).to(cosine.dtype)
    z = cosine - onehot * margins.to(cosine.device)[targets][:, None]
    return F.cross_entropy(scale * z, targets, weight=weight)


def class_balanced_weights(counts: Sequence[int], beta: float) -> torch.Tensor:
    """Cui et al.'s effective-number weights (1 − β)/(1 − β^{n_c}), normalised to sum to C (β = 0 → all 1)."""
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    w = (1.0 - beta) / (1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))
    return (w / w.sum() * len(n)).float()


def rule_weights(
    counts: Sequence[int], rule: str, epoch: int, beta: float = 0.9999, drw_epoch: int = 160
) -> torch.Tensor | None:
    """Class weights of ``rule`` at 0-based ``epoch`` (``None`` for no re-weighting)."""
    if rule == "none":
        return None
    if rule == "reweight":
        return class_balanced_weights(counts, beta)
    if rule == "drw":
        return class_balanced_weights(counts, beta if epoch >= drw_epoch else 0.0)
    raise ValueError(f"unknown re-weighting rule {rule!r}; choose from {RULES}")


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """The official focal loss: ℓ = weighted CE per sample, p = exp(−ℓ), mean((1 − p)^γ · ℓ)."""
    ce = F.cross_entropy(logits, targets, weight=weight, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


@dataclass
class LDAMConfig(TrainConfig):
    loss: Literal["ldam", "ce", "focal"] = "ldam"
    rule: Literal["none", "reweight", "drw"] = "drw"
    max_m: float = 0.5
    scale: float = 30.0
    beta: float = 0.9999
    drw_epoch: int = 160
    focal_gamma: float = 1.0


@METHODS.register("ldam_drw")
class LDAMDRW(Method):
    Config = LDAMConfig
    stages = "1: LDAM (margins ∝ n^-1/4, s=30, cosine classifier); CB re-weighting (β=0.9999) from epoch 160"
    sampler = "instance"
    test_time = "raw logits (s·cos)"
    follows = "Cao et al. 2019, kaidic/LDAM-DRW (losses.py, cifar_train.py)"

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        if cfg.loss not in LOSSES:
            raise LTBenchError(f"unknown LDAM-family loss {cfg.loss!r}", f"choose one of {', '.join(LOSSES)}")
        if cfg.rule not in RULES:
            raise LTBenchError(f"unknown re-weighting rule {cfg.rule!r}", f"choose one of {', '.join(RULES)}")
        model = task.create_model()
        if cfg.loss == "ldam":
            model.classifier = CosineClassifier(model.num_features, task.num_classes).to(task.device)
        counts = task.class_counts
        margins = ldam_margins(counts, cfg.max_m).to(task.device)
        trainer = Trainer(task, cfg, "ldam")

        def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            epoch = len(trainer.history)  # finished epochs, also right after a resume
            w = rule_weights(counts, cfg.rule, epoch, cfg.beta, cfg.drw_epoch)
            w = None if w is None else w.to(task.device)
            out = model(images)
            if cfg.loss == "ldam":
                return ldam_loss(out, labels, margins, cfg.scale, w)
            if cfg.loss == "focal":
                return focal_loss(out, labels, cfg.focal_gamma, w)
            return F.cross_entropy(out, labels, weight=w)

        trainer.fit({"model": model}, model.parameters(), step, task.train_set())
        task.records["ldam"] = {"margins": margins.cpu().tolist(), "loss": cfg.loss, "rule": cfg.rule}
        return model

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        out = model(images)
        return self.config.scale * out if self.config.loss == "ldam" else out


@dataclass
class CBFocalConfig(LDAMConfig):
    loss: str = "focal"
    rule: str = "reweight"


@METHODS.register("cb_focal")
class CBFocal(LDAMDRW):
    Config = CBFocalConfig
    stages = "1: focal loss (γ=1) with class-balanced weights (1−β)/(1−β^n), β=0.9999, from epoch 0"
    test_time = "raw logits"
    follows = "Cui et al. 2019 as run in kaidic/LDAM-DRW (--loss_type Focal --train_rule Reweight)"
