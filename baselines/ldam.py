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
  5 epochs, lr × 0.01 and × 1e-4 once ``epoch + 1`` passes 160 and 180, i.e. at 0-based epochs 160 and 180
  (milestones ``(160, 180)``). The repository holds only the CIFAR script, so every family uses it
  (``official``). ``binary`` = that schedule under Adam, lr 0.01, no weight decay (DRW at epoch 160);
  ``equal-budget`` = CANDLE's 400 epochs of batch 256 with DRW at 0.8 of training (epoch 320).

Registered rows: ``ldam_drw`` (the paper's method); ``cb_focal`` — class-balanced **softmax** focal loss as
LDAM-DRW re-implements Cui et al.'s baseline (``--loss_type Focal --train_rule Reweight``, ``losses.py``
``FocalLoss``); ``cb_focal_cui`` — Cui et al.'s own class-balanced focal loss (richardaecn/class-balanced-loss
``src/cifar_main.py:226-266``, ``src/model_base.py:196``): **sigmoid** focal over all C one-vs-rest outputs,
ℓ = Σ_c w_{y} · (1 − p_t,c)^γ · BCE(z_c, 1[c = y]), summed over the batch and divided by the number of
positives (B), with the final classifier's bias initialised to −log(C − 1). β = 0.9999 and γ = 1.0 are the
repository's ``cifar_im_trainval_cb.sh`` values (its only CB-focal script); the paper tunes (β, γ) per dataset
but the code has no table, so other values are ``--set beta=... --set focal_gamma=...``. The two rows differ
(on one random batch 10.81 vs 4.76, logit-gradient cosine 0.59), so a table names the one it shows.
Any other combination is one ``--set`` away (``--set loss=ce --set rule=drw`` is CE-DRW).

Choice where the code is silent: at test time the logits are ``s·cos`` for LDAM (the official evaluates the
raw cosine; argmax is the same, but ECE is only meaningful on the scale the loss was trained at).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.errors import LTBenchError
from ltbench.method import Method, Task, TrainConfig
from ltbench.registry import METHODS
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer

LOSSES = ("ldam", "ce", "focal", "sigmoid_focal")
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


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cui et al.'s focal loss: Σ_{i,c} w_{y_i} (1 − p_t)^γ BCE(z_ic, 1[c = y_i]) / B, p = σ(z) (one-vs-rest);
    the modulator is computed as exp(−γ·t·z − γ·log(1 + e^{−z})), the official numerically stable form."""
    t = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    bce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    modulator = torch.exp(-gamma * t * logits - gamma * F.softplus(-logits)) if gamma else 1.0
    w = 1.0 if weight is None else weight.to(logits.device)[targets][:, None]
    return (w * modulator * bce).sum() / t.sum()


def init_sigmoid_bias(classifier: nn.Module, num_classes: int) -> None:
    """The final layer's bias = −log(C − 1) (``model_base.py``: every class starts at prior 1/C)."""
    if not isinstance(classifier, nn.Linear) or classifier.bias is None:
        raise LTBenchError(
            f"the sigmoid focal loss needs a linear classifier with a bias, not {type(classifier).__name__}",
            "use a backbone whose `classifier` is an nn.Linear",
        )
    with torch.no_grad():
        classifier.bias.fill_(-math.log(num_classes - 1))


@dataclass
class LDAMConfig(TrainConfig):
    loss: Literal["ldam", "ce", "focal", "sigmoid_focal"] = "ldam"  # focal: LDAM-DRW's softmax; sigmoid: Cui
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
        if cfg.loss == "sigmoid_focal":
            init_sigmoid_bias(model.classifier, task.num_classes)
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
            if cfg.loss == "sigmoid_focal":
                return sigmoid_focal_loss(out, labels, cfg.focal_gamma, w)
            return F.cross_entropy(out, labels, weight=w)

        train = task.train_set()
        add_stage(task.records, "ldam", train, cfg, loss=cfg.loss, rule=cfg.rule)
        trainer.fit({"model": model}, model.parameters(), step, train)
        task.records["ldam"] = {"margins": margins.cpu().tolist(), "loss": cfg.loss, "rule": cfg.rule}
        return model

    @torch.no_grad()
    def predict(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        out = model(images)
        return self.config.scale * out if self.config.loss == "ldam" else out


@dataclass
class CBFocalConfig(LDAMConfig):
    loss: Literal["ldam", "ce", "focal", "sigmoid_focal"] = "focal"
    rule: Literal["none", "reweight", "drw"] = "reweight"


@METHODS.register("cb_focal")
class CBFocal(LDAMDRW):
    Config = CBFocalConfig
    stages = "1: softmax focal loss (γ=1) with class-balanced weights (1−β)/(1−β^n), β=0.9999, from epoch 0"
    test_time = "raw logits"
    follows = (
        "Cui et al. 2019 as re-implemented in kaidic/LDAM-DRW (softmax FocalLoss, --train_rule Reweight)"
    )


@dataclass
class CBFocalCuiConfig(LDAMConfig):
    loss: Literal["ldam", "ce", "focal", "sigmoid_focal"] = "sigmoid_focal"
    rule: Literal["none", "reweight", "drw"] = "reweight"


@METHODS.register("cb_focal_cui")
class CBFocalCui(LDAMDRW):
    Config = CBFocalCuiConfig
    stages = (
        "1: sigmoid focal loss (γ=1) with class-balanced weights, β=0.9999, from epoch 0; bias init −log(C−1)"
    )
    test_time = "raw logits (argmax of σ(z) = argmax z)"
    follows = "Cui et al. CVPR'19, richardaecn/class-balanced-loss (cifar_main.py focal_loss, model_base.py)"
