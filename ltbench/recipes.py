"""Named recipes per method: the one place a recipe's hyper-parameter values live.

A method's config resolves in layers (later wins): its ``Config`` dataclass (the schema and the method's own
constants) → the named recipe for the dataset family → ``--config FILE.yaml`` → ``--set key=value``.

Recipe names (``ltbench config --recipe NAME``; the default is ``binary`` on a binary backbone, else
``official``):

- ``official``: the method's own official setting (``METHOD_RECIPES[m]["official"]``, then
  ``["official/<family>"]``).
- ``binary``: the method's own schedule (the resolved ``official`` recipe for the family: epochs, batch size,
  schedule, warm-up, milestones) trained with Adam at lr 0.01 and zero weight decay in every trained stage —
  the CANDLE paper's only statement about binary baselines (§4, App. G: "Adam, zero weight decay"; lr 0.01
  as CANDLE App. D and the authors' TADE ReActNet config) — then the method's ``binary`` and
  ``binary/<family>`` entries where the authors' code says otherwise (TADE:
  gistvision/SADE-AgnosticLT ``configs/config_small_dataset_reactnet.json``).
- ``equal-budget``: every method on CANDLE's distillation budget (App. D: Adam, no weight decay, cosine from
  lr 0.01, 400 epochs of batch 256; classifier stages Adam lr 0.01 cosine, batch 256) — ltbench's binary
  protocol before issue 14; selectable, not the default.
- shared recipes (``SHARED_RECIPES``): method-independent training protocols layered over the backbone kind's
  default recipe (ReActNet's two steps).

An entry ``binary/<family>`` whose family is a *demo* family (``Family.demo``: digits) is a complete recipe of its own (on top
of the dataclass defaults) and serves every non-official recipe name there: digits runs are short by design.
"""

from __future__ import annotations

import dataclasses
from typing import Any

Recipe = dict[str, Any]

OFFICIAL, BINARY, EQUAL_BUDGET_NAME = "official", "binary", "equal-budget"
RECIPE_NAMES = (OFFICIAL, BINARY, EQUAL_BUDGET_NAME)
#: Prefixes of a trained stage's optimiser fields (stage 1 has none). ``calib_`` (CANDLE's FP teacher head)
#: and ``tta_`` (TADE's test-time SGD) are not the binary student's training, so the binary rule skips them.
TRAINED_STAGES = ("", "cls_")

# ------------------------------------------------------------------------------------------------ fragments
#: kaidic/LDAM-DRW ``cifar_train.py``: defaults (l. 43-54) and ``adjust_learning_rate`` (l. 366-378), which
#: adds 1 to the 0-based epoch before comparing, so the ×0.01 / ×1e-4 steps fall at 0-based epochs 160, 180.
LDAM_CIFAR: Recipe = {
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 2e-4,
    "batch_size": 128,
    "epochs": 200,
    "warmup_epochs": 5,
    "schedule": "multistep",
    "milestones": (160, 180),
    "gamma": 0.01,
}
#: The binary rule: Adam at lr 0.01 without weight decay (CANDLE §4, App. D/G).
BINARY_OPTIMIZER: Recipe = {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.0}
#: CANDLE App. D's distillation budget: Adam, no weight decay, cosine from lr 0.01, 400 epochs of batch 256.
EQUAL_BUDGET: Recipe = {
    **BINARY_OPTIMIZER,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "milestones": (),
    "epochs": 400,
    "batch_size": 256,
}
EQUAL_BUDGET_CLS: Recipe = {
    "cls_optimizer": "adam",
    "cls_lr": 0.01,
    "cls_weight_decay": 0.0,
    "cls_schedule": "cosine",
    "cls_batch_size": 256,
}
#: The short digits recipe (Adam, cosine, 30 epochs of batch 64) the ``*/digits`` recipes start from.
DIGITS: Recipe = {**EQUAL_BUDGET, "lr": 0.005, "epochs": 30, "batch_size": 64}
DIGITS_CLS: Recipe = {
    "cls_epochs": 10,
    "cls_batch_size": 64,
    "cls_optimizer": "adam",
    "cls_lr": 0.005,
    "cls_weight_decay": 0.0,
    "cls_schedule": "cosine",
}

# ------------------------------------------------------------------------------------------ method recipes
_DECOUPLED_DIGITS = {**DIGITS, **DIGITS_CLS}
_DECOUPLED = {
    OFFICIAL: {},  # the Config defaults: classifier-balancing's ImageNet-LT feat_uniform.yaml / cls_*.yaml
    "official/small": LDAM_CIFAR,
    "official/digits": _DECOUPLED_DIGITS,
    "binary/digits": _DECOUPLED_DIGITS,
    EQUAL_BUDGET_NAME: {**EQUAL_BUDGET, **EQUAL_BUDGET_CLS},
}
_LWS_DIGITS = {**_DECOUPLED_DIGITS, "cls_epochs": 5}
_BALMS_DIGITS = {**_DECOUPLED_DIGITS, "iterations": 0, "warmup_iterations": 0, "cls_iterations": 0}
_BALMS_IMAGENET_META = {"meta_batch_size": 1024, "meta_init_pow": 0.1, "meta_lr": 0.001}
_PACO_CIFAR = {"alpha": 0.01, "temperature": 0.05, "queue_size": 1024, "moco_dim": 32}
_PACO_IMAGENET = {"alpha": 0.05, "temperature": 0.2, "queue_size": 8192, "moco_dim": 128}
_PACO_DIGITS = {**_PACO_IMAGENET, "queue_size": 256, "moco_dim": 32, **DIGITS}
_TADE_DIGITS = {**DIGITS, "nesterov": False}
#: The CANDLE authors' TADE on ReActNet-A (gistvision/SADE-AgnosticLT f0c042c
#: ``configs/config_small_dataset_reactnet.json`` l. 17, 24-26, 33, 39-47; the ImageNet-LT file has the same).
_TADE_REACTNET = {
    **BINARY_OPTIMIZER,
    "batch_size": 128,
    "epochs": 180,
    "schedule": "cosine",
    "warmup_epochs": 0,
    "milestones": (),
    "tau": 2.0,
}
_LDAM = {
    OFFICIAL: {**LDAM_CIFAR, "drw_epoch": 160},  # cifar_train.py:201 idx = epoch // 160
    "official/digits": {**DIGITS, "drw_epoch": 24},
    "binary/digits": {**DIGITS, "drw_epoch": 24},
    EQUAL_BUDGET_NAME: {**EQUAL_BUDGET, "drw_epoch": 320},
}
_DIVE = {
    # BagofTricks-LT configs/cao_cifar/DiVE/*/student.yaml: LDAM's CIFAR recipe with steps at 120 and 160
    OFFICIAL: {**LDAM_CIFAR, "milestones": (120, 160)},
    "official/digits": DIGITS,
    # reactnet-a-tiny: the student takes CE's digits recipe (30 epochs, lr 0.002; 15 epochs at lr 0.005 left
    # dive_star at 31% avg with a 98% teacher); the teacher is BALMS's own digits model (its stage 1 is the one
    # the balms row trains, loaded from the stage store)
    "binary/digits": {**DIGITS, "lr": 0.002},
    EQUAL_BUDGET_NAME: EQUAL_BUDGET,
}
#: digits (demo scale, ≈40 s per run on 2 cores): fewer epochs, smaller batches, a gentler lr for the tiny
#: binary student; calibration long enough for a fresh head on ~250 images. 30 distillation epochs instead of 50
#: left candle at 89.4 % avg and candle[cd] at 94.9 (3 seeds, 7 December, against 94.8 and 95.6 at 50 then).
_CANDLE_DIGITS = {
    "epochs": 50,
    "batch_size": 32,
    "lr": 0.002,
    "calib_epochs": 30,
    "calib_batch_size": 64,
    "calib_lr": 0.05,
}

METHOD_RECIPES: dict[str, dict[str, Recipe]] = {
    "ce": {
        OFFICIAL: LDAM_CIFAR,
        "official/digits": DIGITS,
        "binary/digits": {**DIGITS, "lr": 0.002},
        EQUAL_BUDGET_NAME: EQUAL_BUDGET,
    },
    "crt": _DECOUPLED,
    "lws": {**_DECOUPLED, "official/digits": _LWS_DIGITS, "binary/digits": _LWS_DIGITS},
    "tau_norm": {
        OFFICIAL: {},
        "official/small": LDAM_CIFAR,
        "official/digits": DIGITS,
        "binary/digits": DIGITS,
        EQUAL_BUDGET_NAME: EQUAL_BUDGET,
    },
    "balms": {
        OFFICIAL: {},  # the Config defaults: the CIFAR-LT ResNet-32 configs
        "official/large": {  # ImageNet-LT ResNet-10 (feat_uniform_resnet10.yaml, balms_resnet10.yaml)
            "iterations": 0,
            "warmup_iterations": 0,
            "epochs": 90,
            "lr": 0.2,
            "cls_iterations": 0,
            "cls_epochs": 20,
            "cls_lr": 0.5,
            **_BALMS_IMAGENET_META,
        },
        "official/digits": _BALMS_DIGITS,
        "binary/digits": _BALMS_DIGITS,
        EQUAL_BUDGET_NAME: {
            **EQUAL_BUDGET,
            **EQUAL_BUDGET_CLS,
            "iterations": 0,
            "warmup_iterations": 0,
            "cls_iterations": 0,
            "cls_epochs": 20,
        },
        "equal-budget/large": _BALMS_IMAGENET_META,
    },
    "mislas": {
        OFFICIAL: {},  # the Config defaults: CIFAR ResNet-32 (cifar*_imb001_stage{1_mixup,2_mislas}.yaml)
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
        "official/digits": _DECOUPLED_DIGITS,
        "binary/digits": _DECOUPLED_DIGITS,
        EQUAL_BUDGET_NAME: {**EQUAL_BUDGET, **EQUAL_BUDGET_CLS},
        "equal-budget/large": {"mixup_alpha": 0.2},
    },
    "paco": {
        OFFICIAL: {  # PaCo/LT sh/CIFAR100_train_imb*.sh, paco_cifar.py adjust_learning_rate (epoch > 320)
            **_PACO_CIFAR,
            "optimizer": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 5e-4,
            "batch_size": 128,
            "epochs": 400,
            "warmup_epochs": 10,
            "schedule": "multistep",
            "milestones": (321, 361),
            "gamma": 0.1,
        },
        "official/large": {**_PACO_IMAGENET, "lr": 0.02, "schedule": "cosine", "milestones": ()},
        "official/digits": _PACO_DIGITS,
        "binary/digits": {**_PACO_DIGITS, "epochs": 20},  # reactnet-a-tiny: ≈ CE's 30-epoch time
        EQUAL_BUDGET_NAME: {**_PACO_CIFAR, **EQUAL_BUDGET},
        "equal-budget/large": _PACO_IMAGENET,
    },
    "tade": {
        OFFICIAL: {  # SADE configs/config_cifar100_ir100_sade.json
            "optimizer": "sgd",
            "lr": 0.1,
            "momentum": 0.9,
            "nesterov": True,
            "weight_decay": 5e-4,
            "batch_size": 128,
            "epochs": 200,
            "warmup_epochs": 5,
            "schedule": "multistep",
            "milestones": (160, 180),
            "gamma": 0.1,
        },
        "official/large": {  # SADE configs/config_imagenet_lt_resnext50_sade.json
            "lr": 0.025,
            "batch_size": 64,
            "epochs": 180,
            "warmup_epochs": 0,
            "schedule": "cosine",
            "milestones": (),
            "tta_lr": 0.025,
        },
        "official/digits": _TADE_DIGITS,
        BINARY: _TADE_REACTNET,
        # 30 epochs like every digits recipe: 12 (sized for experts of blocks 6–13) left 70 % avg, 30 give 93 %
        "binary/digits": _TADE_DIGITS,
        EQUAL_BUDGET_NAME: EQUAL_BUDGET,
        "equal-budget/large": {"tta_lr": 0.025},
    },
    "dive": _DIVE,
    "dive_star": _DIVE,
    "ldam_drw": _LDAM,
    "cb_focal": _LDAM,
    "cb_focal_cui": _LDAM,  # LDAM-DRW's CIFAR schedule; Cui et al.'s own schedule is not separated here
    "candle": {
        # the paper trains binary students only; an FP student gets the same recipe
        OFFICIAL: EQUAL_BUDGET,
        "official/digits": _CANDLE_DIGITS,
        BINARY: EQUAL_BUDGET,  # CANDLE's own schedule is the App. D budget
        "binary/digits": _CANDLE_DIGITS,
        EQUAL_BUDGET_NAME: EQUAL_BUDGET,
    },
}

#: What ReActNet-A's two training steps share (liuzechun/ReActNet mobilenet/*/run.sh): Adam lr 5e-4, batch 256,
#: 256 epochs, lr·(1 − epoch/E) stepped once per epoch.
_REACTNET_STEP: Recipe = {
    "optimizer": "adam",
    "lr": 5e-4,
    "batch_size": 256,
    "epochs": 256,
    "schedule": "linear",
    "schedule_by": "epoch",
}
#: Method-independent protocols, layered over the backbone kind's default recipe (``recipe: NAME`` in YAML).
SHARED_RECIPES: dict[str, Recipe] = {
    # ReActNet-A step 1 (liuzechun/ReActNet mobilenet/1_step1/run.sh, train.py): binary activations, real
    # weights; Adam lr 5e-4 at batch 256 for 256 epochs, lr·(1 − epoch/E) stepped per epoch, weight decay 1e-5
    # only on conv weights (4-d or 'conv' in the name).
    "reactnet-step1": {
        **_REACTNET_STEP,
        "weight_decay": 1e-5,
        "weight_decay_rule": "conv",
        "backbone_args": {"binary_weights": False},
    },
    # ReActNet-A step 2 (mobilenet/2_step2): binary weights too, no weight decay, same lr and schedule.
    "reactnet-step2": {
        **_REACTNET_STEP,
        "weight_decay": 0.0,
        "weight_decay_rule": "all",
        "backbone_args": {"binary_weights": True},
    },
}


def recipe_names(method: str) -> list[str]:
    """Every recipe name ``method`` resolves (its own, the derived ``binary``, and the shared ones)."""
    return [*RECIPE_NAMES, *SHARED_RECIPES]


def default_recipe(binary: bool) -> str:
    return BINARY if binary else OFFICIAL


def binary_rule(config_cls: type) -> Recipe:
    """Adam at lr 0.01 and no weight decay for each trained stage the config has (stage 1, ``cls_``)."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {f"{p}{k}": v for p in TRAINED_STAGES for k, v in BINARY_OPTIMIZER.items() if f"{p}{k}" in names}


def recipe_layers(
    method: str, config_cls: type, name: str, family: str, binary: bool = False
) -> list[tuple[str, Recipe]]:
    """The layers of recipe ``name`` for ``method`` on ``family``: (label, field overrides), in order.

    ``binary`` (the backbone kind) picks the base that a shared recipe is layered over."""
    table = METHOD_RECIPES.get(method, {})

    def pick(*keys: str) -> list[tuple[str, Recipe]]:
        return [(f"recipe {k}", table[k]) for k in keys if k in table]

    if name in SHARED_RECIPES:
        base = recipe_layers(method, config_cls, default_recipe(binary), family)
        return [*base, (f"recipe {name}", SHARED_RECIPES[name])]
    official = pick(OFFICIAL, f"{OFFICIAL}/{family}")
    if name == OFFICIAL:
        return official
    from ltbench.families import get_family

    if get_family(family).demo and f"{BINARY}/{family}" in table:
        return pick(f"{BINARY}/{family}")
    if name == BINARY:
        return [*official, ("binary rule", binary_rule(config_cls)), *pick(BINARY, f"{BINARY}/{family}")]
    if name == EQUAL_BUDGET_NAME:
        return pick(EQUAL_BUDGET_NAME, f"{EQUAL_BUDGET_NAME}/{family}")
    raise KeyError(name)


# --------------------------------------------------------------------------- label-aware smoothing ε table
#: (ε_head, ε_tail) of label-aware smoothing per (source, IR) — MiSLAS stage 2 and CANDLE's calibration (A9).
#: The paper's 15 sets: ``smooth_dict`` of the CANDLE authors' gistvision/SADE-AgnosticLT f0c042c
#: ``custum_data/new_dataset.py`` l. 53-69 (their keys cub/fgvc/flowers/fruits/places/imagenet/inat are
#: ltbench's cub200/aircraft/flowers102/fruits360/places-lt/imagenet-lt/inat-lt). Order [head, tail]: nothing in
#: that repository reads the dict, but its places/imagenet/inat pairs equal MiSLAS's own (smooth_head,
#: smooth_tail) for those sets (dvlab-research/MiSLAS config/{places,imagenet,ina2018}/*_stage2_mislas.yaml:
#: 0.4/0.1, 0.3/0.0, 0.3/0.0), and MiSLAS's convention is head ≥ tail there. ``digits`` (not in the paper): 0.3/0.0,
#: MiSLAS's ImageNet-LT/iNat value and CANDLE's documented default for a set outside the table (A9).
LAS_EPSILON: dict[tuple[str, float | None], tuple[float, float]] = {
    ("caltech101", 10): (0.01, 0.01),
    ("cifar10", 10): (0.07, 0.07),
    ("cifar10", 100): (0.05, 0.1),
    ("cifar100", 10): (0.08, 0.36),
    ("cifar100", 100): (0.08, 0.36),
    ("cub200", 10): (0.04, 0.01),
    ("dtd", 10): (0.01, 0.39),
    ("dogs", 10): (0.0, 0.03),
    ("cars", 10): (0.0, 0.38),
    ("flowers102", 10): (0.04, 0.04),
    ("aircraft", 10): (0.0, 0.39),
    ("fruits360", 100): (0.0, 0.0),
    ("places-lt", None): (0.4, 0.1),
    ("imagenet-lt", None): (0.3, 0.0),
    ("inat-lt", None): (0.3, 0.0),
    ("digits", None): (0.3, 0.0),
}
#: MiSLAS stage 2's other per-dataset settings (shift_bn, lr_factor): dvlab-research/MiSLAS
#: config/{cifar10,cifar100,imagenet,places,ina2018}/*_stage2_mislas.yaml, CIFAR keyed by IR.
MISLAS_STAGE2: dict[tuple[str, float | None], tuple[bool, float]] = {
    ("cifar10", 100): (False, 0.5),
    ("cifar10", 50): (False, 0.2),
    ("cifar10", 10): (False, 0.2),
    ("cifar100", 100): (True, 0.2),
    ("cifar100", 50): (True, 0.1),
    ("cifar100", 10): (True, 0.1),
    ("imagenet-lt", None): (True, 0.05),
    ("places-lt", None): (True, 0.05),
    ("inat-lt", None): (True, 0.05),
}


def _lookup(table: dict, source: str, ir: float | None, family: str, num_classes: int) -> tuple[Any, str]:
    """One per-dataset lookup for every table above: the source's row at its IR (nearest IR when the exact one
    is missing, ties to the larger); a source outside the table takes its family's stand-in (large sets:
    ImageNet-LT; small sets with ≤ 10 classes: CIFAR-10; other small sets: CIFAR-100)."""
    origin = ""
    if not any(s == source for s, _ in table):
        from ltbench.families import get_family

        stand_in = get_family(family).stand_in(num_classes)
        origin, source = f" (stand-in for {source})", stand_in
    rows = {r: v for (s, r), v in table.items() if s == source}
    if None in rows:
        return rows[None], source + origin
    want = ir or 100
    best = min(rows, key=lambda r: (abs(r - want), -r))
    exact = "" if ir == best else f" (nearest to IR {want:g})"
    return rows[best], f"{source} IR{best:g}{exact}{origin}"


def las_epsilon(source: str, ir: float | None, family: str, num_classes: int) -> tuple[float, float, str]:
    """(ε_head, ε_tail, where it came from) of label-aware smoothing for a dataset."""
    (head, tail), where = _lookup(LAS_EPSILON, source, ir, family, num_classes)
    return head, tail, where


def mislas_settings(
    source: str, ir: float | None, family: str, num_classes: int
) -> tuple[tuple[float, float, bool, float], str]:
    """MiSLAS stage 2's (ε_head, ε_tail, shift_bn, lr_factor) for a dataset, and where they came from."""
    head, tail, eps_from = las_epsilon(source, ir, family, num_classes)
    (shift_bn, lr_factor), from_ = _lookup(MISLAS_STAGE2, source, ir, family, num_classes)
    return (head, tail, shift_bn, lr_factor), f"ε: {eps_from}; shift_bn, lr_factor: {from_}"
