"""MiSLAS — Improving Calibration for Long-Tailed Recognition (Zhong et al., CVPR 2021).

Follows dvlab-research/MiSLAS: ``train_stage1.py``, ``train_stage2.py``, ``methods.py`` (mixup,
LabelAwareSmoothing, LearnableWeightScaling), ``config/{cifar10,cifar100,imagenet,places,ina2018}/*.yaml``.

- **Stage 1**: mixup CE (λ ~ Beta(α, α) per batch, in-batch permutation), instance sampling. CIFAR ResNet-32:
  α = 1, 200 ep, bs 128, SGD m0.9 lr 0.1 wd 2e-4, 5-ep warm-up, ×0.1 after 160 and ×0.01 after 180 (defaults);
  ImageNet-LT ResNet-50: α = 0.2, 180 ep cosine, bs 256, wd 5e-4 (``official/large``).
- **Stage 2** (10 ep): class-aware sampling (4/class), backbone forward under ``no_grad``; **shift learning =
  BN statistics re-estimation**: with ``shift_bn`` the backbone runs in train mode so BN running mean/var drift
  to the balanced stream (affine frozen, MiSLAS#3), else eval mode; the stage-1 classifier is **continued, not
  re-initialised**; loss = label-aware smoothing with ε_c between ε_head and ε_tail by the concave rule; LWS
  scales after the classifier; SGD m0.9 with the stage-1 weight decay on both groups, cosine from lr 0.1, the
  classifier group at lr × ``lr_factor``, the LWS group at the full lr.
- **Test**: s ⊙ classifier(f(x)) with the shifted BN statistics — the model's plain forward.

``eps_head``/``eps_tail``/``shift_bn``/``lr_factor`` left at ``None`` come from :data:`MISLAS_TABLE` by dataset
(source name and IR); a dataset outside the table takes the nearest entry of its family (small sets with ≤ 10
classes: CIFAR-10's row at the nearest IR; other small sets: CIFAR-100's; large sets: ImageNet-LT's) — the
resolution is written to ``task.records['mislas']``. Choices: the official stage-2 epoch is ⌈N/B⌉+1 steps, the
shared class-aware sampler gives ⌊N/B⌋; cosine is per step here, per epoch there; the official stage 2
reloads stage 1's best-val checkpoint, here the last one. The CANDLE paper's summary says "CutMix"; the official
code uses mixup, followed here. ``binary`` = the CANDLE protocol (Adam, no wd, cosine, lr 0.01, 400 stage-1
epochs, bs 256), stage 2 under Adam with the table's ε/shift_bn/lr_factor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from torch import nn

from ltbench.method import Method, Task
from ltbench.registry import METHODS

from .decoupling import (
    BINARY_CLS,
    BINARY_STAGE1,
    DIGITS_CLS,
    DIGITS_STAGE1,
    ClassifierStageConfig,
    classifier_stage_config,
    train_classifier,
    train_stage1,
)
from .heads import ScaledLinear
from .losses import las_epsilons, las_loss

# (eps_head, eps_tail, shift_bn, lr_factor) from config/*/*_stage2_mislas.yaml; CIFAR keyed by IR.
MISLAS_TABLE: dict[str, Any] = {
    "cifar10": {100: (0.3, 0.0, False, 0.5), 50: (0.2, 0.0, False, 0.2), 10: (0.1, 0.0, False, 0.2)},
    "cifar100": {100: (0.4, 0.1, True, 0.2), 50: (0.3, 0.0, True, 0.1), 10: (0.2, 0.0, True, 0.1)},
    "imagenetlt": (0.3, 0.0, True, 0.05),
    "placeslt": (0.4, 0.1, True, 0.05),
    "inat": (0.3, 0.0, True, 0.05),
}
FIELDS = ("eps_head", "eps_tail", "shift_bn", "lr_factor")


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _nearest_ir(rows: dict[int, tuple], ir: float | None) -> tuple[int, tuple]:
    ir = ir or 100
    best = min(rows, key=lambda r: (abs(r - ir), -r))
    return best, rows[best]


def mislas_settings(source: str, ir: float | None, family: str, num_classes: int) -> tuple[tuple, str]:
    """(ε_head, ε_tail, shift_bn, lr_factor) for a dataset, and where they came from."""
    key = _key(source)
    for name in ("cifar100", "cifar10", "imagenetlt", "placeslt", "inat"):
        if key.startswith(name) or (name == "inat" and key.startswith("inaturalist")):
            row = MISLAS_TABLE[name]
            if isinstance(row, dict):
                r, vals = _nearest_ir(row, ir)
                exact = "" if ir == r else f" (nearest to IR {ir:g})"
                return vals, f"{name} IR{r}{exact}"
            return row, name
    if family == "large":
        return MISLAS_TABLE["imagenetlt"], f"imagenetlt (family default for {source})"
    name = "cifar10" if num_classes <= 10 else "cifar100"
    r, vals = _nearest_ir(MISLAS_TABLE[name], ir)
    return vals, f"{name} IR{r} (family default for {source} at IR {ir})"


@dataclass
class MiSLASConfig(ClassifierStageConfig):
    """Defaults: CIFAR ResNet-32 (``cifar*_imb001_stage{1_mixup,2_mislas}.yaml``)."""

    epochs: int = 200
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 2e-4
    schedule: str = "multistep"
    warmup_epochs: float = 5.0
    milestones: tuple[int, ...] = (160, 180)
    gamma: float = 0.1
    mixup_alpha: float = 1.0
    cls_epochs: int = 10
    cls_batch_size: int = 128
    cls_optimizer: str = "sgd"
    cls_lr: float = 0.1
    cls_weight_decay: float = 2e-4
    cls_schedule: str = "cosine"
    cls_sampler: str = "class_aware"
    eps_head: float | None = None  # None: from MISLAS_TABLE
    eps_tail: float | None = None
    shift_bn: bool | None = None
    lr_factor: float | None = None
    las_kind: str = "concave"


DIGITS = {**DIGITS_STAGE1, **DIGITS_CLS}


@METHODS.register("mislas")
class MiSLAS(Method):
    Config = MiSLASConfig
    recipes = {
        "official": {},
        "official/large": {  # ImageNet-LT ResNet-50
            "mixup_alpha": 0.2,
            "epochs": 180,
            "batch_size": 256,
            "weight_decay": 5e-4,
            "schedule": "cosine",
            "warmup_epochs": 0.0,
            "milestones": (),
            "cls_batch_size": 256,
            "cls_weight_decay": 5e-4,
        },
        "official/digits": {**DIGITS},
        "binary": {**BINARY_STAGE1, **BINARY_CLS},
        "binary/large": {"mixup_alpha": 0.2},
        "binary/digits": {**DIGITS},
    }
    stages = (
        "1: mixup CE · 2: frozen backbone (BN stats shifted if shift_bn), stage-1 classifier continued "
        "+ LWS, label-aware smoothing (10 ep)"
    )
    sampler = "instance → class-aware (4/class)"
    test_time = "s⊙(Wx+b) with re-estimated BN statistics"
    follows = "Zhong et al. CVPR'21, dvlab-research/MiSLAS"

    def resolve(self, task: Task) -> dict[str, Any]:
        cfg = self.config
        ir = task.info.manifest.get("profile", {}).get("ir")
        vals, source = mislas_settings(task.info.manifest["source"], ir, task.family, task.num_classes)
        out = dict(zip(FIELDS, vals, strict=True))
        overridden = [f for f in FIELDS if getattr(cfg, f) is not None]
        out.update({f: getattr(cfg, f) for f in overridden})
        out["from"] = source + (f"; set: {', '.join(overridden)}" if overridden else "")
        return out

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        s = self.resolve(task)
        task.records["mislas"] = s
        model = train_stage1(task, cfg, mixup_alpha=cfg.mixup_alpha)
        model.classifier = ScaledLinear(model.classifier, freeze_linear=False)
        eps = las_epsilons(task.class_counts, s["eps_head"], s["eps_tail"], cfg.las_kind)
        c2 = classifier_stage_config(cfg)
        groups = [
            {"params": list(model.classifier.fc.parameters()), "lr": c2.lr * s["lr_factor"]},
            {"params": list(model.classifier.lws.parameters()), "lr": c2.lr},
        ]
        train_classifier(
            task,
            c2,
            model,
            groups,
            lambda logits, y: las_loss(logits, y, eps),
            "train" if s["shift_bn"] else "eval",
            "mislas",
            loss_name="LAS",
        )
        task.records["mislas"]["lws_scales"] = [
            round(float(v), 6) for v in model.classifier.lws.scales.detach()
        ]
        return model
