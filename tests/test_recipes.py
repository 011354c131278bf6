"""Every resolved recipe against the official settings it claims (ltbench/recipe_evidence.py), and the ε table."""

from __future__ import annotations

import pytest

from ltbench.config import resolve_config
from ltbench.recipe_evidence import EVIDENCE
from ltbench.recipes import RECIPE_NAMES, las_epsilon, mislas_settings
from ltbench.registry import METHODS

CLAIMS = [(m, c) for m in sorted(EVIDENCE) for c in EVIDENCE[m]]


def test_every_recipe_table_has_evidence():
    """A method with recipes names their sources; recipe tables only for registered methods."""
    from ltbench.recipes import METHOD_RECIPES

    assert set(METHOD_RECIPES) <= set(METHODS.names())
    assert set(METHOD_RECIPES) == set(EVIDENCE)


@pytest.mark.parametrize(("method", "claim"), CLAIMS, ids=[f"{m}-{c.recipe}-{c.family}" for m, c in CLAIMS])
def test_resolved_recipe_matches_its_source(method, claim):
    cfg = resolve_config(method, claim.recipe != "official", claim.family, recipe=claim.recipe)
    got = {k: getattr(cfg, k) for k in claim.fields}
    assert got == claim.fields, claim.source


@pytest.mark.parametrize("method", sorted(EVIDENCE))
@pytest.mark.parametrize(
    ("backbone", "binary"), [("resnet32", False), ("reactnet-a", True), ("reactnet-a-tiny", True)]
)
def test_cifar_and_reactnet_size_recipes_resolve(method, backbone, binary):
    """CIFAR-size (ResNet-32, FP) and ReActNet-A-size recipes resolve for every method and recipe name."""
    for name in RECIPE_NAMES:
        for family in ("small", "large"):
            cfg = resolve_config(method, binary, family, recipe=name, backbone=backbone)
            assert cfg.epochs >= 1 and cfg.lr > 0


def test_ldam_steps_at_0_based_160_and_180():
    """cifar_train.py:366-378 compares epoch + 1 > 160: 0-based epochs 160 and 180 (issue 14 defect 2)."""
    for method in ("ldam_drw", "cb_focal", "ce"):
        assert resolve_config(method, False, "small").milestones == (160, 180)


def test_binary_default_is_own_schedule_with_adam():
    """Issue 14 defect 8: binary = each method's own schedule under Adam/wd 0; CANDLE's budget is selectable."""
    ce = resolve_config("ce", True, "small")
    assert (ce.optimizer, ce.lr, ce.weight_decay, ce.epochs, ce.batch_size) == ("adam", 0.01, 0.0, 200, 128)
    tade = resolve_config("tade", True, "small")  # the authors' ReActNet TADE config
    assert (tade.optimizer, tade.lr, tade.epochs, tade.batch_size, tade.schedule) == (
        "adam",
        0.01,
        180,
        128,
        "cosine",
    )
    eq = resolve_config("ce", True, "small", recipe="equal-budget")
    assert (eq.epochs, eq.batch_size, eq.schedule, eq.milestones) == (400, 256, "cosine", ())
    yml = resolve_config("ce", True, "small", config_file="configs/binary-candle-protocol.yaml")
    assert yml == eq


@pytest.mark.parametrize(
    ("source", "ir", "expect"),
    [  # SADE-AgnosticLT f0c042c custum_data/new_dataset.py:53-69, [head, tail]
        ("cub200", 10, (0.04, 0.01)),
        ("cars", 10, (0.0, 0.38)),
        ("places-lt", None, (0.4, 0.1)),
        ("cifar10", 100, (0.05, 0.1)),
        ("cifar100", 10, (0.08, 0.36)),
        ("aircraft", 10, (0.0, 0.39)),
        ("fruits360", 100, (0.0, 0.0)),
        ("digits", 10, (0.3, 0.0)),
    ],
)
def test_one_epsilon_table(source, ir, expect):
    assert las_epsilon(source, ir, "small", 10)[:2] == expect
    assert mislas_settings(source, ir, "small", 10)[0][:2] == expect  # MiSLAS reads the same table
    from ltbench.candle.config import CandleConfig, las_epsilons_for

    assert las_epsilons_for(CandleConfig(), source, ir) == expect  # and so does CANDLE


def test_epsilon_lookup_nearest_and_stand_in():
    assert las_epsilon("cub200", 100, "small", 200)[:2] == (0.04, 0.01)  # nearest IR of the same source
    assert las_epsilon("newset", 10, "small", 10)[:2] == (0.07, 0.07)  # ≤ 10 classes: CIFAR-10's row
    assert las_epsilon("newset", 100, "small", 50)[:2] == (0.08, 0.36)  # CIFAR-100's
    assert las_epsilon("newset", None, "large", 500)[:2] == (0.3, 0.0)  # ImageNet-LT's
    assert mislas_settings("cifar10", 100, "small", 10)[0][2:] == (False, 0.5)  # MiSLAS cifar10 IR100
