"""MiSLAS: the per-dataset ε/shift_bn/lr_factor table, stage-2 mechanics (continued classifier, lr_factor,
shift-BN as statistics re-estimation, LWS) end to end on digits-LT10."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltbench.baselines.mislas import mislas_settings
from method_spy import spy  # noqa: F401

DIGITS_COUNTS = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]  # digits-lt10 train counts


@pytest.mark.parametrize(
    ("source", "ir", "family", "classes", "expect", "where"),
    [  # ε: SADE-AgnosticLT f0c042c custum_data/new_dataset.py:53-69 [head, tail] (the one ε table, issue 14
        # defect 7); shift_bn, lr_factor: MiSLAS config/*/*_stage2_mislas.yaml
        ("cifar100", 100, "small", 100, (0.08, 0.36, True, 0.2), "cifar100 IR100"),
        ("cifar100", 10, "small", 100, (0.08, 0.36, True, 0.1), "cifar100 IR10"),
        ("cifar10", 50, "small", 10, (0.07, 0.07, False, 0.2), "cifar10 IR50"),
        ("cifar10", 100, "small", 10, (0.05, 0.1, False, 0.5), "cifar10 IR100"),
        ("imagenet-lt", None, "large", 1000, (0.3, 0.0, True, 0.05), "imagenet-lt"),
        ("places-lt", None, "large", 365, (0.4, 0.1, True, 0.05), "places-lt"),
        ("inat-lt", None, "large", 8142, (0.3, 0.0, True, 0.05), "inat-lt"),
    ],
)
def test_official_table(source, ir, family, classes, expect, where):
    vals, src = mislas_settings(source, ir, family, classes)
    assert vals == expect and where in src


def test_family_defaults_outside_the_table():
    # digits: its documented ε 0.3/0.0; shift_bn, lr_factor from the CIFAR-10 IR10 stand-in
    vals, src = mislas_settings("digits", 10, "digits", 10)
    assert vals == (0.3, 0.0, False, 0.2) and "stand-in for digits" in src
    vals, src = mislas_settings("cub200", 100, "small", 200)  # CUB's own ε (IR10 row); CIFAR-100 IR100 rest
    assert vals == (0.04, 0.01, True, 0.2) and "cifar100 IR100" in src
    assert mislas_settings("cifar10", 20, "small", 10)[0] == (0.07, 0.07, False, 0.2)  # nearest IR: 10


def _run(digits_data, out, **sets):
    from ltbench.run import run_one

    base = {"epochs": 1, "cls_epochs": 1, "cls_schedule": "constant"}
    path = run_one(
        "mislas",
        "digits-lt10",
        backbone="cnn-digits",
        sets={k: str(v) for k, v in {**base, **sets}.items()},
        data_root=digits_data,
        results=out,
        device="cpu",
        keep_checkpoints=True,
    )
    run_dir = out / ".runs" / "digits-lt10" / "mislas" / "cnn-digits" / "seed0"
    load = lambda stage: torch.load(run_dir / f"{stage}.ckpt", weights_only=True)  # noqa: E731
    return json.loads(path.read_text()), load("stage1"), load("mislas")


def test_stage2_continues_the_classifier_and_shifts_bn(digits_data, tmp_path):
    # lr_factor = 0 freezes the classifier group exactly: it must equal stage 1's (continued, not re-initialised)
    result, s1, s2 = _run(digits_data, tmp_path, shift_bn="true", lr_factor=0.0)
    rec = result["records"]["mislas"]
    # digits' ε_head: 0.3 (ltbench.recipes.LAS_EPSILON)
    assert rec["shift_bn"] is True and rec["lr_factor"] == 0.0 and rec["eps_head"] == 0.3
    assert "set: shift_bn, lr_factor" in rec["from"]
    m1, m2 = s1["modules"]["model"], s2["modules"]["model"]
    assert torch.equal(m1["classifier.weight"], m2["classifier.fc.weight"])
    assert torch.equal(m1["classifier.bias"], m2["classifier.fc.bias"])
    assert not torch.equal(m2["classifier.lws.scales"], torch.ones(10))  # LWS group at the full lr
    assert torch.equal(m1["features.0.weight"], m2["features.0.weight"])
    assert torch.equal(m1["features.1.weight"], m2["features.1.weight"])  # BN affine frozen
    assert not torch.equal(m1["features.1.running_mean"], m2["features.1.running_mean"])  # re-estimated
    groups = s2["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == pytest.approx([0.0, 0.005])


def test_stage2_without_shift_bn_keeps_statistics(digits_data, tmp_path):
    result, s1, s2 = _run(digits_data, tmp_path)  # digits: CIFAR-10 IR10 row, shift_bn False, lr_factor 0.2
    assert result["records"]["mislas"]["shift_bn"] is False
    m1, m2 = s1["modules"]["model"], s2["modules"]["model"]
    assert torch.equal(m1["features.1.running_mean"], m2["features.1.running_mean"])
    assert not torch.equal(m1["classifier.weight"], m2["classifier.fc.weight"])
    assert [g["lr"] for g in s2["optimizer"]["param_groups"]] == pytest.approx([0.005 * 0.2, 0.005])


def test_stage2_is_label_aware_smoothing_on_class_balanced_batches(digits_data, tmp_path, spy):  # noqa: F811
    result, _, _ = _run(digits_data, tmp_path)
    rec = result["records"]["mislas"]
    seen = spy["mislas"]
    assert seen.cfg.sampler == "class_aware" and [s["name"] for s in result["records"]["stages"]] == [
        "stage1",
        "mislas",
    ]
    counts = seen.label_counts(10)  # 6 batches of 64, 4 per class visit: 36 or 40 images of every class
    assert counts.sum() == 384 and counts.max() - counts.min() <= 8, counts
    # the stage-2 step's loss on a batch = LAS by hand: ε_y = ε_t + (ε_h − ε_t)·sin(π/2·(n_y − n_min)/(n_max − n_min)),
    # (1 − ε_y)·(−log p_y) + ε_y·mean_k(−log p_k) on s ⊙ (W f(x) + b)
    from ltbench.baselines.decoupling import frozen_features

    model = seen.modules["model"]
    x, y = (
        torch.stack([seen.dataset[i][0] for i in range(0, 400, 7)]),
        torch.tensor(seen.dataset.labels[0:400:7]),
    )
    eh, et = rec["eps_head"], rec["eps_tail"]
    assert eh > et  # otherwise LAS and CE could not be told apart
    eps = [et + (eh - et) * math.sin(math.pi / 2 * (n - 10) / (100 - 10)) for n in DIGITS_COUNTS]
    with torch.no_grad():
        logp = torch.log_softmax(model.classifier(frozen_features(model, x, "eval")), 1)
        e = torch.tensor(eps)[y]
        expect = ((1 - e) * -logp[torch.arange(len(y)), y] + e * -logp.mean(1)).mean()
        got = seen.step(x, y)
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.slow
def test_mislas_end_to_end_on_reactnet_a_tiny(digits_data, tmp_path):
    from ltbench.run import run_one

    path = run_one(
        "mislas",
        "digits-lt10",
        backbone="reactnet-a-tiny",
        sets={"epochs": "0", "cls_epochs": "1"},  # stage 1 = the shared code trained above; keeps it short
        data_root=digits_data,
        results=tmp_path,
        device="cpu",
    )
    result = json.loads(path.read_text())
    assert result["binary"] and [s["name"] for s in result["records"]["stages"]] == ["stage1", "mislas"]
    assert result["records"]["stages"][1]["loss"] == "LAS"
