"""CANDLE (Kim et al., arXiv 2404.00285): calibrate a pretrained FP teacher, distil a binary student.

Stages: (1) calibration (:mod:`ltbench.candle.calibration`): a frozen pretrained encoder with new per-resolution
1×1 convs and classifier, trained with class-aware sampling + label-aware smoothing; (2) distillation
(:mod:`ltbench.candle.distill`): the binary student sees ``x`` only, the teacher the multi-resolution inputs;
classifier ← min K, encoder ← min (1−λ)K + λF, balancer φ ← max of the same (Alg. 1). Inference: the student.

Variants (``--set variant=...``; Table 3 rows, results filed as ``candle[<variant>]``):
``baseline`` uncalibrated teacher (fresh frozen 1×1 conv, base resolution) + feature distillation only, the
label term CE in K's place, λ = ``fixed_lambda``; ``cd`` calibrate & distil with fixed λ; ``cd+alb`` adds
adversarial balancing; ``cd+alb+mr`` (default, = CANDLE) adds the multi-resolution teacher. Large sets are
single-resolution unless ``multires_large=true`` (Table 2 †).

Ambiguities of the paper and the reading taken (field that switches it, where it matters):
- A1 AB_φ: "3 hidden layers, channels expanding by 16 per layer starting at 2" → 2→18→34→50→1, ReLU hidden,
  sigmoid output (``ab_hidden``; the other reading 16,32,48).
- A2 λ per sample: λ_i = AB(K_i, F_i), loss = mean_i[(1−λ_i)K_i + λ_i F_i]; the epoch's mean λ is logged
  (``lambda_granularity=batch`` feeds AB the batch means instead).
- A3 AB's inputs are loss values: detached; λ is a constant in the encoder's loss; φ gets gradient only
  through λ (``ab_input_grad=true``: the encoder also differentiates through λ's inputs).
- A4 one student forward per step; the classifier's gradient comes from K only, the encoder's K path uses
  the classifier's weights as constants (a functional call on detached weights). Same math as Alg. 1's
  three updates from one forward; no switch.
- A5 φ shares the optimizer (Adam), lr and cosine schedule; its update is an ascent step, implemented by
  the sign-flipped term in one backward (``ab_lr`` sets φ's lr).
- A6 KL at T = 1, batch mean, teacher as target (``kl_temperature``).
- A7 Alg. 2's "Downsample(e_S), Upsample(e_L)" is backwards: both maps are nearest-resized to the base map
  size (so e_S is up-sampled), then concatenated, then pooled (resize before pool, as Alg. 2). No switch:
  the stated direction cannot give equal sizes.
- A8 one 1×1 conv per resolution, trained in calibration, frozen in distillation; single-resolution
  teachers have one too (encoder width → student width), else F is undefined.
- A9 calibration hyper-parameters: MiSLAS stage 2 — 10 epochs, SGD m0.9, lr 0.1 cosine (per step here),
  wd 5e-4, batch 128, class-aware 4/class, concave LAS with MiSLAS's ε for the nearest dataset (default
  0.3/0.0); no LWS, no BN shift, no mixup (``calib_*``, ``las_*``).
- A10 the base resolution is the student's input size (224, CIFAR included; digits 8); teacher inputs are
  resizes of the *same* augmented x the student sees (bilinear, anti-aliased when shrinking); augmentation
  is the family's train transform (RandomResizedCrop + flip; digits: small affine) (``augment``,
  ``calib_augment``, ``resolutions``).
- A11 the student trains in one stage from random init, binary weights and activations (no ReActNet
  two-step schedule); lr 0.01 for every dataset.
- A12 ``baseline`` and ``cd`` as above; the fixed λ is 0.5 (``fixed_lambda``).
- A13 distillation samples x ~ D_LT instance-balanced (``sampler``).
- A14 concerns the baselines (Adam on binary backbones), not CANDLE.
- A15 teacher weights: torchvision ResNet-152 and timm EfficientNetV2-M IN-21K as ``ltbench.teachers``
  loads them (``teacher``: auto | digits | resnet152 | efficientnetv2-m-in21k).

Records in the result: ``lambda_per_epoch`` (Fig. 6), ``kl_per_epoch``, ``fs_per_epoch``, ``weight_norms``
{teacher, student} per class (Fig. 7; teacher null for ``baseline``), ``teacher_calibration`` {avg, head,
medium, tail} of the calibrated teacher on the test split, ``teacher`` (encoder, resolutions, ε).
"""

from __future__ import annotations

from typing import Any

import torch
from ltbench.candle.calibration import (
    build_teacher,
    cached_pooled_features,
    fit_calibrated_teacher,
    teacher_id,
    teacher_record,
)
from ltbench.candle.config import VARIANTS, CandleConfig
from ltbench.candle.distill import AdversarialBalancer, candle_objective, ce_guide, kl_guide
from ltbench.candle.teacher import MultiResTeacher
from torch import nn
from torch.utils.data import Dataset

from ltbench.data import fetch_batch
from ltbench.method import Method, Task
from ltbench.registry import METHODS
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer


class IndexedSet(Dataset):
    """(image, index) pairs, so a step can look up cached teacher outputs; keeps ``labels`` for samplers."""

    def __init__(self, base):
        self.base = base
        self.labels = base.labels

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        return self.base[i][0], i

    def __getitems__(self, indices: list[int]):
        return [(img, i) for (img, _), i in zip(fetch_batch(self.base, indices), indices, strict=True)]


@METHODS.register("candle", variants=VARIANTS)
class Candle(Method):
    Config = CandleConfig
    stages = "1: calibrate teacher head (frozen encoder, multi-res) · 2: distil (KL + FS, adversarial λ)"
    sampler = "class-aware (calibration), instance (distillation)"
    test_time = "raw logits of the student"
    follows = "Kim et al. 2024 (no public code): App. D, Alg. 1–2; ambiguities A1–A15 in the docstring"

    def fit(self, task: Task) -> nn.Module:
        cfg: CandleConfig = self.config  # type: ignore[assignment]
        cfg.check()
        student = task.create_model()
        width = int(student.num_features)
        if cfg.calibrated:
            teacher = fit_calibrated_teacher(task, cfg, width)
        else:
            teacher = build_teacher(task, cfg, width).eval()
            task.records["teacher"] = {
                **teacher_record(cfg, task.family),
                "resolutions": list(teacher.resolutions),
                "base": teacher.base,
                "calibrated": False,
            }
            task.records["teacher_calibration"] = None
        distil(task, cfg, student, teacher)
        task.records["weight_norms"] = {
            "teacher": class_norms(teacher.classifier) if cfg.calibrated else None,
            "student": class_norms(student.classifier),
        }
        return student

    def teacher(self, task: Task) -> tuple[nn.Module, MultiResTeacher]:
        """CANDLE as another method's teacher (DiVE*): its calibrated FP teacher, not the binary student."""
        cfg: CandleConfig = self.config  # type: ignore[assignment]
        cfg.check()
        t = fit_calibrated_teacher(task, cfg, int(task.create_model().num_features))
        return t, t


def class_norms(classifier: nn.Module) -> list[float]:
    return [float(v) for v in classifier.weight.detach().norm(dim=1).cpu()]


def distil(
    task: Task, cfg: CandleConfig, student: nn.Module, teacher: MultiResTeacher
) -> list[dict[str, Any]]:
    """Stage 2: train ``student`` against the frozen ``teacher``; logs λ, K, F per epoch into task.records."""
    teacher.eval()
    teacher.requires_grad_(False)
    balancer = AdversarialBalancer(cfg.ab_hidden).to(task.device) if cfg.balanced else None
    cached = cfg.cache_teacher and not cfg.augment
    if cached:
        base = task.train_set(augment=False)
        with torch.no_grad():
            pooled = cached_pooled_features(teacher, task, teacher_id(cfg, task.family))
            t_logits, t_feats = teacher.head_pooled(pooled.to(task.device))
        label_table = torch.as_tensor(base.labels, device=task.device)
        dataset: Dataset = IndexedSet(base)
    else:
        dataset = task.train_set(augment=cfg.augment)
    sums = {"lambda": 0.0, "kl": 0.0, "fs": 0.0, "n": 0}

    def step(images: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        if cached:
            logits_t, feats_t, labels = t_logits[second], t_feats[second], label_table[second]
        else:
            labels = second
            with torch.no_grad():
                logits_t, feats_t = teacher.forward_distill(images)
        guide = kl_guide(logits_t, cfg.kl_temperature) if cfg.calibrated else ce_guide(labels)
        terms = candle_objective(
            student,
            images,
            feats_t,
            guide,
            balancer,
            cfg.fixed_lambda,
            cfg.lambda_granularity,
            cfg.ab_input_grad,
        )
        b = len(images)
        sums["lambda"] += float(terms.lam.sum())
        sums["kl"] += float(terms.k.sum())
        sums["fs"] += float(terms.f.sum())
        sums["n"] += b
        return terms.total

    def on_epoch_end(epoch: int) -> dict[str, float]:
        n = max(sums["n"], 1)
        out = {k: sums[k] / n for k in ("lambda", "kl", "fs")}
        sums.update({"lambda": 0.0, "kl": 0.0, "fs": 0.0, "n": 0})
        return out

    params: list[dict[str, Any]] = [{"params": list(student.parameters())}]
    modules: dict[str, nn.Module] = {"student": student}
    if balancer is not None:
        group: dict[str, Any] = {"params": list(balancer.parameters())}
        if cfg.ab_lr is not None:
            group["lr"] = cfg.ab_lr
        params.append(group)
        modules["balancer"] = balancer
    add_stage(task.records, "distil", dataset, cfg, loss="(1−λ)·KL + λ·FS" if cfg.calibrated else "CE + FS")
    history = Trainer(task, cfg, "distil").fit(modules, params, step, dataset, on_epoch_end=on_epoch_end)
    task.records["lambda_per_epoch"] = [h["lambda"] for h in history]
    task.records["kl_per_epoch"] = [h["kl"] for h in history]
    task.records["fs_per_epoch"] = [h["fs"] for h in history]
    student.eval()
    return history
