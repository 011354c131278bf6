"""The evidence behind the recipes: each official setting with the file (and line, where read) it comes from.

This is the oracle the recipe tests check every resolved recipe against, and the data ``docs/methods.md``'s
recipe table is generated from (:func:`recipe_table_md`). It is written from the official sources, not from
:mod:`ltbench.recipes`: if a recipe drifts from its source, ``tests/test_recipes.py`` fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LDAM = "kaidic/LDAM-DRW cifar_train.py"
CB = "facebookresearch/classifier-balancing config/ImageNet_LT"
BS = "jiawei-ren/BalancedMetaSoftmax-Classification config"
MS = "dvlab-research/MiSLAS config"
PC = "dvlab-research/Parametric-Contrastive-Learning PaCo/LT"
SA = "Vanint/SADE-AgnosticLT configs"
SA_BIN = "gistvision/SADE-AgnosticLT@f0c042c configs/config_small_dataset_reactnet.json"
BT = "zhangyongshun/BagofTricks-LT configs/cao_cifar/DiVE"
CP = "CANDLE paper (arXiv 2404.00285)"
DEMO = "ltbench digits demo recipe (ltbench/recipes.py; not from a paper)"


@dataclass(frozen=True)
class Claim:
    """``fields`` hold in recipe ``recipe`` on ``family``, on the evidence of ``source``."""

    recipe: str
    family: str
    fields: dict[str, Any]
    source: str


LDAM_CIFAR = {
    "epochs": 200,  # l. 43
    "batch_size": 128,  # l. 47
    "lr": 0.1,  # l. 50
    "momentum": 0.9,  # l. 52
    "weight_decay": 2e-4,  # l. 54
}
LDAM_SCHEDULE = {"warmup_epochs": 5, "milestones": (160, 180), "gamma": 0.01}  # l. 366-378, epoch + 1
BINARY_RULE = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}
BINARY_RULE_SRC = f"{CP} §4, App. G (Adam, zero weight decay), App. D (lr 0.01)"
EQUAL = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0, "schedule": "cosine", "epochs": 400}
EQUAL_SRC = f"{CP} App. D (distillation budget: Adam, wd 0, cosine from 0.01, 400 epochs, batch 256)"


def _ldam_family(method: str, extra: dict[str, Any] | None = None) -> list[Claim]:
    return [
        Claim("official", "small", {**LDAM_CIFAR, "optimizer": "sgd"}, f"{LDAM}:43-54"),
        Claim("official", "small", {**LDAM_SCHEDULE, "schedule": "multistep"}, f"{LDAM}:366-378"),
        *([Claim("official", "small", extra, f"{LDAM}:186-215")] if extra else []),
        Claim("binary", "small", {**BINARY_RULE, "epochs": 200, "milestones": (160, 180)}, BINARY_RULE_SRC),
        Claim("equal-budget", "small", {**EQUAL, "batch_size": 256}, EQUAL_SRC),
    ]


DIGITS = {"optimizer": "adam", "lr": 0.005, "epochs": 30, "batch_size": 64, "schedule": "cosine"}
DIGITS_CLS = {"cls_optimizer": "adam", "cls_lr": 0.005, "cls_epochs": 10, "cls_batch_size": 64}
_DECOUPLED = [
    Claim(
        "official",
        "large",
        {"epochs": 90, "batch_size": 512, "optimizer": "sgd", "lr": 0.2, "weight_decay": 5e-4},
        f"{CB}/feat_uniform.yaml",
    ),
    Claim(
        "official",
        "small",
        {**LDAM_CIFAR, **LDAM_SCHEDULE},
        f"{LDAM}:43-54, 366-378 (CB has no CIFAR config)",
    ),
    Claim("binary", "small", {**BINARY_RULE, "epochs": 200}, BINARY_RULE_SRC),
    Claim("binary", "large", {**BINARY_RULE, "epochs": 90, "batch_size": 512}, BINARY_RULE_SRC),
    Claim("equal-budget", "small", {**EQUAL, "batch_size": 256}, EQUAL_SRC),
    Claim("binary", "digits", DIGITS, DEMO),
]
_CLS = [
    Claim(
        "official",
        "large",
        {"cls_epochs": 10, "cls_lr": 0.2, "cls_batch_size": 512, "cls_sampler": "class_aware"},
        f"{CB}/cls_crt.yaml",
    ),
    Claim(
        "binary", "large", {"cls_optimizer": "adam", "cls_lr": 0.01, "cls_weight_decay": 0.0}, BINARY_RULE_SRC
    ),
    Claim("binary", "digits", DIGITS_CLS, DEMO),
]
_DIVE = [
    Claim(
        "official",
        "small",
        {**LDAM_CIFAR, "milestones": (120, 160), "temperature": 3.0, "power": 0.5, "alpha": 0.5},
        f"{BT}/*/student.yaml; DiVE paper (τ = 3)",
    ),
    Claim("binary", "small", {**BINARY_RULE, "epochs": 200, "milestones": (120, 160)}, BINARY_RULE_SRC),
    Claim("binary", "digits", {**DIGITS, "lr": 0.002}, DEMO),
]
_LDAM_EXTRA = {"drw_epoch": 160, "beta": 0.9999, "max_m": 0.5, "scale": 30.0}

EVIDENCE: dict[str, list[Claim]] = {
    "ce": [*_ldam_family("ce"), Claim("binary", "digits", {**DIGITS, "lr": 0.002}, DEMO)],
    "crt": [*_DECOUPLED, *_CLS],
    "lws": [
        *_DECOUPLED,
        Claim("official", "large", {"cls_epochs": 5}, f"{CB}/cls_lws.yaml"),
        Claim("binary", "digits", {**DIGITS_CLS, "cls_epochs": 5}, DEMO),
    ],
    "tau_norm": [*_DECOUPLED],
    "balms": [
        Claim(
            "official",
            "small",
            {
                "iterations": 13000,
                "warmup_iterations": 800,
                "batch_size": 512,
                "lr": 0.1,
                "weight_decay": 5e-4,
            },
            f"{BS}/CIFAR10_LT/softmax_imba200.yaml",
        ),
        # base_lr 0.05 → warmup_lr 0.1 linearly over the warm-up, then cosine from 0.1 (CosineAnnealingLRWarmup)
        Claim(
            "official",
            "small",
            {"warmup_start": 0.5},
            f"{BS}/CIFAR10_LT/softmax_imba200.yaml:11-12, utils.py:26-54",
        ),
        Claim(
            "official",
            "small",
            {"cls_iterations": 2000, "cls_lr": 0.1, "cls_batch_size": 512, "meta_lr": 0.01},
            f"{BS}/CIFAR10_LT/balms_imba200.yaml",
        ),
        Claim(
            "official",
            "large",
            {"epochs": 90, "cls_epochs": 20, "cls_lr": 0.5, "meta_batch_size": 1024, "meta_lr": 0.001},
            f"{BS}/ImageNet_LT/balms_resnet10.yaml",
        ),
        Claim(
            "binary", "small", {**BINARY_RULE, "iterations": 13000, "cls_optimizer": "adam"}, BINARY_RULE_SRC
        ),
        Claim("equal-budget", "small", {**EQUAL, "iterations": 0, "cls_epochs": 20}, EQUAL_SRC),
        Claim("binary", "digits", {**DIGITS, **DIGITS_CLS, "iterations": 0}, DEMO),
    ],
    "mislas": [
        Claim(
            "official",
            "small",
            {**LDAM_CIFAR, "warmup_epochs": 5, "milestones": (160, 180), "gamma": 0.1, "mixup_alpha": 1.0},
            f"{MS}/cifar*/cifar*_imb001_stage1_mixup.yaml",
        ),
        Claim(
            "official",
            "small",
            {"cls_epochs": 10, "cls_lr": 0.1, "cls_sampler": "class_aware", "las_kind": "concave"},
            f"{MS}/cifar*/cifar*_imb001_stage2_mislas.yaml",
        ),
        Claim(
            "official",
            "large",
            {
                "mixup_alpha": 0.2,
                "epochs": 180,
                "batch_size": 256,
                "weight_decay": 5e-4,
                "schedule": "cosine",
            },
            f"{MS}/imagenet/imagenet_resnet50_stage1_mixup.yaml",
        ),
        Claim("binary", "small", {**BINARY_RULE, "epochs": 200, "cls_optimizer": "adam"}, BINARY_RULE_SRC),
        Claim("binary", "digits", {**DIGITS, **DIGITS_CLS}, DEMO),
    ],
    "paco": [
        Claim(
            "official",
            "small",
            {"alpha": 0.01, "temperature": 0.05, "queue_size": 1024, "moco_dim": 32, "lr": 0.05},
            f"{PC}/sh/CIFAR100_train_imb0.01.sh",
        ),
        Claim(
            "official",
            "small",
            {"epochs": 400, "warmup_epochs": 10, "milestones": (321, 361), "gamma": 0.1},
            f"{PC}/paco_cifar.py:586-597 (0-based epoch > 320, > 360)",
        ),
        Claim(
            "official",
            "large",
            {"alpha": 0.05, "temperature": 0.2, "queue_size": 8192, "moco_dim": 128, "lr": 0.02},
            f"{PC}/sh/ImageNetLT_train_R50.sh",
        ),
        Claim("binary", "small", {**BINARY_RULE, "epochs": 400, "milestones": (321, 361)}, BINARY_RULE_SRC),
        Claim("binary", "digits", {**DIGITS, "epochs": 20, "temperature": 0.2}, DEMO),
    ],
    "tade": [
        Claim(
            "official",
            "small",
            {"epochs": 200, "batch_size": 128, "lr": 0.1, "nesterov": True, "weight_decay": 5e-4, "tau": 2.0},
            f"{SA}/config_cifar100_ir100_sade.json",
        ),
        Claim(
            "official",
            "large",
            {"epochs": 180, "batch_size": 64, "lr": 0.025, "schedule": "cosine"},
            f"{SA}/config_imagenet_lt_resnext50_sade.json",
        ),
        Claim("binary", "small", {"batch_size": 128}, f"{SA_BIN}:17"),
        Claim("binary", "small", {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}, f"{SA_BIN}:24-26"),
        Claim("binary", "small", {"tau": 2.0}, f"{SA_BIN}:33"),
        Claim("binary", "small", {"schedule": "cosine", "epochs": 180}, f"{SA_BIN}:39-47"),
        Claim(
            "binary",
            "large",
            {"batch_size": 128, "epochs": 180, "lr": 0.01},
            f"{SA_BIN} (ImageNet-LT file alike)",
        ),
        Claim("equal-budget", "small", {**EQUAL, "batch_size": 256}, EQUAL_SRC),
        Claim("binary", "digits", DIGITS, DEMO),
    ],
    "dive": _DIVE,
    "dive_star": _DIVE,
    "ldam_drw": [*_ldam_family("ldam_drw", _LDAM_EXTRA), Claim("binary", "digits", DIGITS, DEMO)],
    "cb_focal": [
        *_ldam_family("cb_focal", {"loss": "focal", "rule": "reweight", "focal_gamma": 1.0, "beta": 0.9999}),
        Claim("binary", "digits", DIGITS, DEMO),
    ],
    "cb_focal_cui": [
        Claim(
            "official",
            "small",
            {"loss": "sigmoid_focal", "rule": "reweight", "focal_gamma": 1.0, "beta": 0.9999},
            "richardaecn/class-balanced-loss src/cifar_main.py:226-266 (review-2026-12)",
        ),
        Claim(
            "official", "small", {**LDAM_CIFAR, **LDAM_SCHEDULE}, f"{LDAM}:43-54, 366-378 (schedule shared)"
        ),
        Claim("binary", "small", {**BINARY_RULE, "epochs": 200, "milestones": (160, 180)}, BINARY_RULE_SRC),
        Claim("binary", "digits", DIGITS, DEMO),
    ],
    "candle": [
        Claim("binary", "small", {**EQUAL, "batch_size": 256, "sampler": "instance"}, f"{CP} App. D"),
        Claim(
            "binary",
            "small",
            {"calib_epochs": 10, "calib_optimizer": "sgd", "calib_lr": 0.1, "calib_sampler": "class_aware"},
            f"{CP} App. D: MiSLAS stage 2 (reading A9)",
        ),
        Claim("binary", "digits", {"epochs": 50, "batch_size": 32, "lr": 0.002, "calib_epochs": 30}, DEMO),
    ],
}


def _fmt(v: Any) -> str:
    if isinstance(v, tuple | list):
        return "(" + ", ".join(map(str, v)) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


def recipe_table_md() -> str:
    """Markdown: per method, each claimed setting, the value it resolves to and its source."""
    lines = []
    for method in sorted(EVIDENCE):
        lines += [f"#### `{method}`", "", "| recipe | family | settings | source |", "|---|---|---|---|"]
        for c in EVIDENCE[method]:
            settings = ", ".join(f"{k} {_fmt(v)}" for k, v in c.fields.items())
            lines.append(f"| {c.recipe} | {c.family} | {settings} | {c.source} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
