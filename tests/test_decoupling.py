"""τ-norm / cRT / LWS: heads and τ search by hand, BN policy, what each stage trains on and what τ is chosen on,
the class-aware classifier stage, and cRT's tail gain over CE on digits-LT100."""

from __future__ import annotations

import json
import math

import pytest
import torch
from ltbench.baselines.decoupling import (
    check_bn,
    frozen_features,
    tau_grid,
    tau_search,
)
from ltbench.baselines.heads import ScaledLinear, TauNormLinear, tau_normalize
from method_spy import spy  # noqa: F401
from torch import nn

from ltbench.errors import LTBenchError

BACKBONE = "cnn-digits"  # fast FP backbone for the default suite; reactnet-a-tiny runs in the slow test
DIGITS_COUNTS = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]  # digits-lt10 train counts


def test_tau_grid_is_linspace_0_2_21():
    assert tau_grid() == [i / 10 for i in range(21)]


def test_tau_normalize_and_bias_drop_by_hand():
    w = torch.tensor([[3.0, 4.0], [0.0, 2.0]])  # row norms 5 and 2
    assert torch.allclose(tau_normalize(w, 1.0), torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    assert torch.allclose(tau_normalize(w, 0.0), w)
    half = tau_normalize(w, 0.5)
    assert torch.allclose(half, torch.tensor([[3 / math.sqrt(5), 4 / math.sqrt(5)], [0.0, 2 / math.sqrt(2)]]))
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.copy_(w)
        fc.bias.fill_(10.0)
    head = TauNormLinear(fc.weight, 1.0)
    x = torch.tensor([[1.0, 1.0]])
    # 0.6 + 0.8 and 0 + 1: the stage-1 bias of 10 is gone
    assert torch.allclose(head(x), torch.tensor([[1.4, 1.0]]))
    assert not list(head.parameters())


def test_tau_search_prefers_the_tau_that_balances_norms():
    # head class 0 has norm 10, tail class 1 norm 1; a class-1 image (1, 2) scores (10, 2) at τ = 0 → wrong,
    # (1, 2) at τ = 1 → right; the class-0 image (1, 0) is right at both
    w = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    feats = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    labels = torch.tensor([0, 1])
    accs = tau_search(feats, labels, w, tau_grid(), 2)
    assert accs[0] == pytest.approx(0.5) and accs[10] == pytest.approx(1.0)


def test_lws_scales_logits_and_bias():
    fc = nn.Linear(2, 2)
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        fc.bias.copy_(torch.tensor([0.5, -1.0]))
    head = ScaledLinear(fc, freeze_linear=True)
    with torch.no_grad():
        head.lws.scales.copy_(torch.tensor([2.0, 0.5]))
    x = torch.tensor([[1.0, 1.0]])
    # s ⊙ (Wx + b) = (2·(3 + 0.5), 0.5·(7 − 1))
    assert torch.allclose(head(x), torch.tensor([[7.0, 3.0]]))
    assert [p.requires_grad for p in fc.parameters()] == [False, False]
    assert head.lws.scales.requires_grad


def _cnn():
    from ltbench.backbones import create_backbone

    torch.manual_seed(0)
    return create_backbone("cnn-digits", 10, 1)


def test_bn_policy_eval_keeps_statistics_train_reestimates_them():
    x = torch.randn(16, 1, 8, 8) * 3 + 1
    model = _cnn()
    bn = model.features[1]
    before = bn.running_mean.clone()
    f = frozen_features(model, x, "eval")
    assert torch.equal(bn.running_mean, before) and not f.requires_grad
    model.eval()
    assert torch.allclose(f, model.forward_features(x))
    frozen_features(model, x, "train")
    assert not torch.equal(bn.running_mean, before)
    with pytest.raises(LTBenchError):
        check_bn("frozen")


def _run(method, digits_data, out, backbone=BACKBONE, dataset="digits-lt10", **sets):
    from ltbench.run import run_one

    path = run_one(
        method,
        dataset,
        backbone=backbone,
        sets={k: str(v) for k, v in sets.items()},
        data_root=digits_data,
        results=out,
        device="cpu",
        keep_checkpoints=True,
    )
    result = json.loads(path.read_text())
    run_dir = out / ".runs" / dataset / method / backbone / "seed0"
    return result, run_dir


def _ckpt(run_dir, stage):
    return torch.load(run_dir / f"{stage}.ckpt", weights_only=True)["modules"]["model"]


@pytest.fixture(scope="module")
def results(digits_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("decoupling")
    return {
        "crt": _run("crt", digits_data, out, epochs=1, cls_epochs=1),
        "lws": _run("lws", digits_data, out, epochs=1, cls_epochs=1),
        "tau_norm": _run("tau_norm", digits_data, out, epochs=1),
    }


def _check_result(result, method):
    assert result["method"] == method and result["train_counts"] == DIGITS_COUNTS
    stages = result["records"]["stages"]
    # stage 1 trains on the whole LT train split (403 = Σ DIGITS_COUNTS), as the official code
    assert stages[0]["name"] == "stage1" and stages[0]["train_images"] == sum(DIGITS_COUNTS) == 403
    assert stages[0]["sampler"] == "instance"


def test_crt_reinitialises_the_classifier_and_freezes_the_backbone(results):
    result, run_dir = results["crt"]
    _check_result(result, "crt")
    s1, s2 = _ckpt(run_dir, "stage1"), _ckpt(run_dir, "crt")
    assert not torch.allclose(s1["classifier.weight"], s2["classifier.weight"])
    assert torch.equal(s1["features.0.weight"], s2["features.0.weight"])  # conv frozen
    assert torch.equal(s1["features.1.weight"], s2["features.1.weight"])  # BN affine frozen
    assert not torch.equal(s1["features.1.running_mean"], s2["features.1.running_mean"])  # cls_bn=train


def test_lws_keeps_the_frozen_fc_and_learns_scales(results):
    result, run_dir = results["lws"]
    _check_result(result, "lws")
    s1, s2 = _ckpt(run_dir, "stage1"), _ckpt(run_dir, "lws")
    assert torch.equal(s1["classifier.weight"], s2["classifier.fc.weight"])
    assert torch.equal(s1["classifier.bias"], s2["classifier.fc.bias"])
    assert not torch.equal(s2["classifier.lws.scales"], torch.ones(10))
    assert result["records"]["lws_scales"] == pytest.approx(s2["classifier.lws.scales"].tolist(), abs=1e-6)


def test_tau_norm_trains_on_all_of_train_and_says_tau_was_chosen_on_test(results):
    # digits has no val split: τ is chosen on test, and the result says so (the leaderboard flags it)
    result, _ = results["tau_norm"]
    _check_result(result, "tau_norm")
    assert [s["name"] for s in result["records"]["stages"]] == ["stage1"]
    rec = result["records"]["tau_norm"]
    assert result["records"]["selection"] == {
        "what": "tau",
        "on": "test",
        "split": "test",
        "value": rec["tau"],
    }
    assert rec["grid"] == tau_grid() and rec["grid_split"] == "test"
    accs = rec["grid_mean_class_acc"]
    assert rec["grid"].index(rec["tau"]) == accs.index(max(accs))  # ties → smallest τ
    assert accs[rec["grid"].index(rec["tau"])] == pytest.approx(result["metrics"]["avg"], abs=1e-6)


def test_tau_norm_with_a_fixed_tau_selects_nothing(digits_data, tmp_path):
    result, _ = _run("tau_norm", digits_data, tmp_path, epochs=1, tau=1.0)
    assert result["records"]["selection"]["on"] == "none" and result["records"]["tau_norm"]["tau"] == 1.0


def test_crt_stage2_draws_class_balanced_batches(digits_data, tmp_path, spy):  # noqa: F811
    _run("crt", digits_data, tmp_path, epochs=1, cls_epochs=1)
    seen = spy["crt"]
    assert seen.cfg.sampler == "class_aware"
    counts = seen.label_counts(10)
    # class-aware: 6 batches of 64 = 96 class visits of 4 images over 10 classes → 36 or 40 per class;
    # instance sampling would give ≈ 95 of class 0 and ≈ 10 of class 9
    assert counts.sum() == 6 * 64 and counts.max() - counts.min() <= 8, counts
    assert len(spy["stage1"].dataset) == sum(DIGITS_COUNTS)  # stage 1: the whole LT train split


def test_crt_raises_the_tail_above_ce_on_digits_lt100(digits_data, tmp_path):
    # the default digits recipes, seed 0; digits-LT100 tail classes have 2, 1 and 1 training images
    ce, _ = _run("ce", digits_data, tmp_path, dataset="digits-lt100")
    crt, _ = _run("crt", digits_data, tmp_path, dataset="digits-lt100")
    assert crt["metrics"]["tail"] >= ce["metrics"]["tail"] + 0.1, (crt["metrics"], ce["metrics"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["crt", "lws", "tau_norm"])
def test_end_to_end_on_reactnet_a_tiny(method, digits_data, tmp_path):
    # stage 1 is the shared code the cnn-digits runs above train; epochs=0 keeps the slow suite short
    sets = {"epochs": 0} if method == "tau_norm" else {"epochs": 0, "cls_epochs": 1}
    result, _ = _run(method, digits_data, tmp_path, backbone="reactnet-a-tiny", **sets)
    _check_result(result, method)
    assert result["binary"] and result["recipe"] == "binary"
