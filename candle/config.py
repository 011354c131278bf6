"""CANDLE's configuration: one dataclass whose defaults are the paper's (App. D) and the readings of A1–A15.

See :mod:`ltbench.candle.method` for what each ambiguity reading means and which field switches it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import ClassVar, Literal

from ltbench.errors import LTBenchError
from ltbench.method import Optimizer, SamplerName, Schedule, TrainConfig
from ltbench.recipes import las_epsilon

Variant = Literal["baseline", "cd", "cd+alb", "cd+alb+mr"]  # Table 3 rows; the last one is CANDLE
VARIANTS: tuple[str, ...] = typing.get_args(Variant)


@dataclass
class CandleConfig(TrainConfig):
    """Distillation fields (inherited) default to App. D: Adam, no weight decay, cosine from 0.01, batch 256,
    400 epochs, instance-balanced sampling (A13). ``calib_*`` fields are the calibration stage (A9)."""

    ROW_FIELD: ClassVar[str | None] = "variant"  # ablation rows: candle[cd], candle[cd+alb], ...

    epochs: int = 400
    batch_size: int = 256
    optimizer: Optimizer = "adam"
    lr: float = 0.01
    weight_decay: float = 0.0
    schedule: Schedule = "cosine"
    sampler: SamplerName = "instance"
    variant: Variant = "cd+alb+mr"  # the last Table 3 row = CANDLE
    teacher: Literal["auto", "digits", "resnet152", "efficientnetv2-m-in21k"] = "auto"  # auto: the family's
    #: the teacher encoder's weights: a torchvision/timm name (IMAGENET1K_V2, in21k) or a local checkpoint file
    #: (``--teacher-weights``); None: the encoder's default ImageNet weights
    teacher_weights: str | None = None
    resolutions: tuple[int, ...] = ()  # () = 128/224/480 scaled to the student's input (digits 4/8/16)
    multires_large: bool = False  # large sets are single-resolution by default (Table 2 †)
    fixed_lambda: float = 0.5  # λ of the `cd` and `baseline` variants (A12)
    ab_hidden: tuple[int, ...] = (18, 34, 50)  # A1; the other reading is 16,32,48
    lambda_granularity: Literal["sample", "batch"] = "sample"  # A2
    ab_input_grad: bool = False  # A3: True lets the encoder's gradient flow through λ's inputs
    ab_lr: float | None = None  # A5: φ's lr (None = lr, same Adam and cosine schedule)
    kl_temperature: float = 1.0  # A6
    calib_epochs: int = 10
    calib_batch_size: int = 128
    calib_optimizer: Optimizer = "sgd"
    calib_lr: float = 0.1
    calib_weight_decay: float = 5e-4
    calib_sampler: SamplerName = "class_aware"
    calib_augment: bool = True
    las_eps_head: float | None = None  # None: ltbench.recipes.las_epsilon for the dataset
    las_eps_tail: float | None = None
    las_kind: Literal["concave", "linear", "convex"] = "concave"
    cache_teacher: bool = False  # cache frozen-encoder features on disk for stages without augmentation

    @property
    def calibrated(self) -> bool:
        return self.variant != "baseline"

    @property
    def balanced(self) -> bool:
        return self.variant in ("cd+alb", "cd+alb+mr")

    @property
    def multires(self) -> bool:
        return self.variant == "cd+alb+mr"

    def check(self) -> None:
        if self.variant not in VARIANTS:
            raise LTBenchError(
                f"unknown CANDLE variant {self.variant!r}", f"choose one of {', '.join(VARIANTS)}"
            )
        if self.lambda_granularity not in ("sample", "batch"):
            raise LTBenchError(
                f"lambda_granularity={self.lambda_granularity!r}", "choose sample (A2 default) or batch"
            )
        if not 0.0 <= self.fixed_lambda <= 1.0:
            raise LTBenchError(
                f"fixed_lambda={self.fixed_lambda} is outside [0, 1]", "pick a value in [0, 1]"
            )
        if self.cache_teacher and self.calib_augment and self.augment:
            raise LTBenchError(
                "cache_teacher=true caches features only for stages without augmentation, and both stages augment",
                "add --set calib_augment=false (and/or augment=false for distillation)",
            )


def las_epsilons_for(
    cfg: CandleConfig, source: str, ir: float | None, family: str = "small", num_classes: int = 100
) -> tuple[float, float]:
    """(ε_head, ε_tail) for calibration: the config's, else the one ε table's (:func:`las_epsilon`)."""
    head, tail, _ = las_epsilon(source, ir, family, num_classes)
    return (
        cfg.las_eps_head if cfg.las_eps_head is not None else head,
        cfg.las_eps_tail if cfg.las_eps_tail is not None else tail,
    )
