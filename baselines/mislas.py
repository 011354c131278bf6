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

``eps_head``/``eps_tail`` left at ``None`` come from the one ε table (:func:`ltbench.recipes.las_epsilon`, the
CANDLE authors' per-dataset values), ``shift_bn``/``lr_factor`` from :data:`ltbench.recipes.MISLAS_STAGE2`, by
source name and IR; a dataset outside a table takes its family's stand-in (small sets with ≤ 10 classes:
CIFAR-10's row at the nearest IR; other small sets: CIFAR-100's; large sets: ImageNet-LT's) — the resolution is
written to ``task.records['mislas']``. Choices: the official stage-2 epoch is ⌈N/B⌉+1 steps, the
shared class-aware sampler gives ⌊N/B⌋; cosine is per step here, per epoch there; the official stage 2
reloads stage 1's best-val checkpoint, here the last one. The CANDLE paper's summary says "CutMix"; the official
code uses mixup, followed here. ``binary`` = the same schedules under Adam, lr 0.01, no weight decay
(``equal-budget``: CANDLE's 400 epochs of batch 256).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from ltbench.method import Method, Optimizer, SamplerName, Schedule, Task
from ltbench.recipes import mislas_settings
from ltbench.registry import METHODS

from .decoupling import (
    ClassifierStageConfig,
    classifier_stage_config,
    train_classifier,
    train_stage1,
)
from .heads import ScaledLinear
from .losses import las_epsilons, las_loss

FIELDS = ("eps_head", "eps_tail", "shift_bn", "lr_factor")


@dataclass
class MiSLASConfig(ClassifierStageConfig):
    """Defaults: CIFAR ResNet-32 (``cifar*_imb001_stage{1_mixup,2_mislas}.yaml``)."""

    epochs: int = 200
    batch_size: int = 128
    optimizer: Optimizer = "sgd"
    lr: float = 0.1
    weight_decay: float = 2e-4
    schedule: Schedule = "multistep"
    warmup_epochs: float = 5.0
    milestones: tuple[int, ...] = (160, 180)
    gamma: float = 0.1
    mixup_alpha: float = 1.0
    cls_epochs: int = 10
    cls_batch_size: int = 128
    cls_optimizer: Optimizer = "sgd"
    cls_lr: float = 0.1
    cls_weight_decay: float = 2e-4
    cls_schedule: Schedule = "cosine"
    cls_sampler: SamplerName = "class_aware"
    eps_head: float | None = None  # None: from ltbench.recipes.las_epsilon
    eps_tail: float | None = None
    shift_bn: bool | None = None
    lr_factor: float | None = None
    las_kind: Literal["concave", "linear", "convex"] = "concave"


@METHODS.register("mislas")
class MiSLAS(Method):
    Config = MiSLASConfig
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
