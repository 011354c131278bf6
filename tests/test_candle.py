"""CANDLE: gradient routing (Alg. 1), the multi-resolution teacher (Alg. 2), variants, config readings."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from ltbench.candle import calibration as calib
from ltbench.candle import method as candle_method
from ltbench.candle.config import CandleConfig, las_epsilons_for
from ltbench.candle.distill import AdversarialBalancer, candle_objective, ce_guide, kl_guide
from ltbench.candle.teacher import MultiResTeacher, resolve_resolutions
from method_spy import spy  # noqa: F401
from torch import nn

from ltbench.backbones.cnn import SmallCNN
from ltbench.errors import LTBenchError
from ltbench.method import Task


@pytest.fixture(autouse=True)
def one_thread():
    """torch's intra-op threads spin when the cores are shared; these tensors are tiny anyway."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TinyStudent(nn.Module):
    def __init__(self, d_in: int = 6, width: int = 4, classes: int = 3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_in, width), nn.Tanh())
        self.num_features = width
        self.classifier = nn.Linear(width, classes)

    def forward_features(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.classifier(self.forward_features(x))


def grads(loss, params):
    return torch.autograd.grad(loss, list(params), allow_unused=True, retain_graph=True)


def by_hand_terms(student, x, t_logits, t_feat):
    """K_i, F_i with an independent formula: Σ p_T (log p_T − log p_B); 1 − a·b/(|a||b|)."""
    feats = student.forward_features(x)
    logp_b = F.log_softmax(student.classifier(feats), 1)
    p_t = F.softmax(t_logits, 1)
    k = (p_t * (torch.log(p_t) - logp_b)).sum(1)
    f = 1 - (feats * t_feat).sum(1) / (feats.norm(dim=1) * t_feat.norm(dim=1))
    return k, f


@pytest.fixture
def setup():
    torch.manual_seed(0)
    student, ab = TinyStudent().double(), AdversarialBalancer().double()
    x = torch.randn(5, 6, dtype=torch.float64)
    t_logits, t_feat = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    return student, ab, x, t_logits, t_feat


def test_gradient_routing_matches_alg1(setup):
    student, ab, x, t_logits, t_feat = setup
    terms = candle_objective(student, x, t_feat, kl_guide(t_logits), ab)
    student.zero_grad(), ab.zero_grad()
    terms.total.backward()
    got_c = [p.grad.clone() for p in student.classifier.parameters()]
    got_e = [p.grad.clone() for p in student.encoder.parameters()]
    got_phi = [p.grad.clone() for p in ab.parameters()]

    k, f = by_hand_terms(student, x, t_logits, t_feat)
    torch.testing.assert_close(terms.k, k.detach())
    torch.testing.assert_close(terms.f, f.detach())
    lam = ab(k.detach(), f.detach())
    torch.testing.assert_close(terms.lam, lam.detach())
    # classifier: ∂ mean K only
    for g, r in zip(got_c, grads(k.mean(), student.classifier.parameters()), strict=True):
        torch.testing.assert_close(g, r)
    # encoder: ∂ mean[(1−λ)K + λF] with λ constant
    lam_c = lam.detach()
    enc_ref = grads(((1 - lam_c) * k + lam_c * f).mean(), student.encoder.parameters())
    for g, r in zip(got_e, enc_ref, strict=True):
        torch.testing.assert_close(g, r)
    # φ: the negative of ∂L/∂φ with K, F constant, so a descent step is an ascent on L
    adv = ((1 - lam) * k.detach() + lam * f.detach()).mean()
    for g, r in zip(got_phi, grads(adv, ab.parameters()), strict=True):
        torch.testing.assert_close(g, -r)
    with torch.no_grad():
        for p, g in zip(ab.parameters(), got_phi, strict=True):
            p -= 1e-3 * g
    lam2 = ab(k.detach(), f.detach())
    assert ((1 - lam2) * k + lam2 * f).mean() > adv


def test_teacher_gets_no_gradient():
    torch.manual_seed(0)
    enc = SmallCNN(5, in_chans=1, width=4)
    teacher = MultiResTeacher(enc, 16, width=8, num_classes=5, resolutions=(4, 8, 16), base=8)
    student = candle_method_student(width=8)
    x = torch.randn(3, 1, 8, 8)
    logits_t, feat_t = teacher.forward_distill(x)  # deliberately outside no_grad
    terms = candle_objective(student, x, feat_t, kl_guide(logits_t), AdversarialBalancer())
    terms.total.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None for p in student.parameters())


def candle_method_student(width: int):
    return SmallCNN(5, in_chans=1, width=width // 4)


def test_cd_fixed_lambda_is_the_weighted_sum(setup):
    student, _, x, t_logits, t_feat = setup
    terms = candle_objective(student, x, t_feat, kl_guide(t_logits), None, fixed_lambda=0.3)
    student.zero_grad()
    terms.total.backward()
    k, f = by_hand_terms(student, x, t_logits, t_feat)
    assert torch.all(terms.lam == 0.3)
    torch.testing.assert_close(terms.encoder_loss, (0.7 * k + 0.3 * f).mean().detach())
    torch.testing.assert_close(terms.total.detach(), (k.mean() + (0.7 * k + 0.3 * f).mean()).detach())
    for p, r in zip(
        student.encoder.parameters(),
        grads((0.7 * k + 0.3 * f).mean(), student.encoder.parameters()),
        strict=True,
    ):
        torch.testing.assert_close(p.grad, r)


def test_baseline_guide_is_label_ce(setup):
    student, _, x, _, t_feat = setup
    y = torch.tensor([0, 1, 2, 0, 1])
    terms = candle_objective(student, x, t_feat, ce_guide(y), None, fixed_lambda=0.5)
    ref = F.cross_entropy(student(x), y, reduction="none")
    torch.testing.assert_close(terms.k, ref.detach())


def test_batch_granularity_and_input_grad_switches(setup):
    student, ab, x, t_logits, t_feat = setup
    t = candle_objective(student, x, t_feat, kl_guide(t_logits), ab, granularity="batch")
    assert torch.allclose(t.lam, t.lam[0].expand_as(t.lam))
    student.zero_grad()
    candle_objective(student, x, t_feat, kl_guide(t_logits), ab, ab_input_grad=True).total.backward()
    with_path = [p.grad.clone() for p in student.encoder.parameters()]
    student.zero_grad(), ab.zero_grad()
    candle_objective(student, x, t_feat, kl_guide(t_logits), ab).total.backward()
    assert not all(
        torch.allclose(a, p.grad) for a, p in zip(with_path, student.encoder.parameters(), strict=True)
    )


def test_balancer_architecture_a1():
    ab = AdversarialBalancer()
    dims = [(m.in_features, m.out_features) for m in ab.mlp if isinstance(m, nn.Linear)]
    assert dims == [(2, 18), (18, 34), (34, 50), (50, 1)]
    lam = ab(torch.rand(7), torch.rand(7))
    assert lam.shape == (7,) and torch.all((lam > 0) & (lam < 1))


def test_alg2_shapes_and_resize_direction():
    torch.manual_seed(0)
    enc = SmallCNN(5, in_chans=1, width=4).eval()  # map channels 16, stride 2
    teacher = MultiResTeacher(enc, 16, width=6, num_classes=5, resolutions=(4, 8, 16), base=8)
    x = torch.randn(2, 1, 8, 8)
    inputs = teacher.inputs(x)
    assert [tuple(i.shape[-2:]) for i in inputs] == [(4, 4), (8, 8), (16, 16)]
    assert inputs[1] is x
    maps = teacher.encoder_maps(x)
    assert [tuple(m.shape[-2:]) for m in maps] == [(2, 2), (4, 4), (8, 8)]
    seen = {}
    teacher.classifier.register_forward_hook(lambda m, i, o: seen.update(shape=i[0].shape))
    logits, feat = teacher.head(maps)
    assert seen["shape"] == (2, 3 * 6) and logits.shape == (2, 5) and feat.shape == (2, 6)
    # A7: the small-input map (2×2) is up-sampled and the large one (8×8) down-sampled to the base 4×4
    proj = [p(m) for p, m in zip(teacher.proj, maps, strict=True)]
    small_up = proj[0].repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest ×2 by hand
    large_down = proj[2][..., ::2, ::2]  # nearest ÷2 picks every other pixel
    pooled = torch.cat([small_up, proj[1], large_down], 1).mean((2, 3))
    torch.testing.assert_close(logits, teacher.classifier(pooled))
    torch.testing.assert_close(feat, proj[1].mean((2, 3)))
    # the cached path (pool before the linear head) gives the same values
    lp, fp = teacher.head_pooled(teacher.pooled_maps(maps))
    torch.testing.assert_close(lp, logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fp, feat, atol=1e-5, rtol=1e-5)


def test_encoder_stays_frozen_in_train_mode():
    enc = SmallCNN(5, in_chans=1, width=4)
    teacher = MultiResTeacher(enc, 16, 6, 5, (8,), 8).train()
    assert not enc.training and teacher.classifier.training
    assert all(not p.requires_grad for p in enc.parameters())
    before = enc.features[1].running_mean.clone()
    teacher.forward_distill(torch.randn(4, 1, 8, 8))
    assert torch.equal(before, enc.features[1].running_mean)


def test_resolutions():
    assert resolve_resolutions("digits", 8) == (4, 8, 16)
    assert resolve_resolutions("small", 224) == (128, 224, 480)
    assert resolve_resolutions("small", 224, multires=False) == (224,)
    assert resolve_resolutions("small", 112) == (64, 112, 240)
    with pytest.raises(LTBenchError):
        resolve_resolutions("small", 224, (128, 480))


def test_config_readings():
    cfg = CandleConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.lr, cfg.weight_decay) == (
        400,
        256,
        "adam",
        0.01,
        0.0,
    )
    assert cfg.multires and cfg.balanced and cfg.calibrated
    assert not dataclasses.replace(cfg, variant="cd").balanced
    with pytest.raises(LTBenchError):
        dataclasses.replace(cfg, variant="cd+mr").check()
    with pytest.raises(LTBenchError):
        dataclasses.replace(cfg, cache_teacher=True).check()
    # the one ε table: SADE-AgnosticLT f0c042c custum_data/new_dataset.py:53-69 smooth_dict, [head, tail]
    assert las_epsilons_for(cfg, "cifar100", 100) == (0.08, 0.36)
    assert las_epsilons_for(cfg, "cifar10", 10) == (0.07, 0.07)
    assert las_epsilons_for(cfg, "places-lt", None) == (0.4, 0.1)
    assert las_epsilons_for(cfg, "digits", 10) == (0.3, 0.0)
    assert las_epsilons_for(dataclasses.replace(cfg, las_eps_head=0.2), "cifar100", 100) == (0.2, 0.36)


def test_row_names():
    from ltbench.run import row_name

    assert row_name("candle", CandleConfig()) == "candle"
    assert row_name("candle", CandleConfig(variant="cd")) == "candle[cd]"


# ---- short runs on digits-LT with a tiny random encoder in place of the pretrained one ----


def tiny_task(digits_data, tmp_path, ir=100) -> Task:
    from ltbench.data import open_split

    return Task(
        info=open_split(f"digits-lt{ir}", digits_data),
        backbone="cnn-digits",
        device=torch.device("cpu"),
        run_dir=tmp_path / "run",
        backbone_kwargs={"width": 4},
    )


@pytest.fixture
def tiny_encoder(monkeypatch):
    calls = {"n": 0}

    def load(name, device, info=None, weights=None):
        calls["n"] += 1
        torch.manual_seed(123)
        calls["encoder"] = SmallCNN(10, in_chans=1, width=4)
        calls["before"] = {k: v.clone() for k, v in calls["encoder"].state_dict().items()}
        return calls["encoder"]

    monkeypatch.setattr(calib, "load_encoder", load)
    return calls


FAST = {"epochs": 2, "batch_size": 64, "calib_epochs": 2, "calib_batch_size": 32}


def test_full_candle_records(digits_data, tmp_path, tiny_encoder):
    task = tiny_task(digits_data, tmp_path)
    cfg = dataclasses.replace(CandleConfig(), **FAST)
    model = candle_method.Candle(cfg).fit(task)
    r = task.records
    assert len(r["lambda_per_epoch"]) == 2 and all(0 < v < 1 for v in r["lambda_per_epoch"])
    assert set(r["teacher_calibration"]) == {"avg", "top1", "top5", "macro_f1", "head", "medium", "tail"}
    assert len(r["weight_norms"]["teacher"]) == len(r["weight_norms"]["student"]) == 10
    assert r["teacher"]["resolutions"] == [4, 8, 16]
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    after = tiny_encoder["encoder"].state_dict()  # frozen: weights and BN statistics untouched
    assert all(torch.equal(v, after[k]) for k, v in tiny_encoder["before"].items())


def test_baseline_uses_no_calibration(digits_data, tmp_path, tiny_encoder, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("baseline must not calibrate")

    monkeypatch.setattr(candle_method, "fit_calibrated_teacher", boom)
    task = tiny_task(digits_data, tmp_path)
    cfg = dataclasses.replace(CandleConfig(variant="baseline"), **FAST)
    candle_method.Candle(cfg).fit(task)
    assert task.records["teacher_calibration"] is None
    assert task.records["teacher"]["resolutions"] == [8] and not task.records["teacher"]["calibrated"]
    assert task.records["weight_norms"]["teacher"] is None
    assert all(v == 0.5 for v in task.records["lambda_per_epoch"])
    assert not (task.run_dir / "calibrate.ckpt").exists()


def test_cache_teacher_reuses_features(digits_data, tmp_path, tiny_encoder, monkeypatch):
    monkeypatch.setenv("LTBENCH_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(CandleConfig(), **FAST, cache_teacher=True, calib_augment=False, augment=False)
    task = tiny_task(digits_data, tmp_path)
    candle_method.Candle(cfg).fit(task)
    files = list((tmp_path / "cache" / "candle").glob("*.pt"))
    assert len(files) == 1 and task.records["teacher"]["cached_features"]
    feats = torch.load(files[0], weights_only=True)
    assert feats.shape == (len(task.train_set(augment=False)), 3, 16)
    # a second run reads the file: the encoder is never run on the training images again
    monkeypatch.setattr(MultiResTeacher, "encoder_maps", lambda *a: (_ for _ in ()).throw(AssertionError))
    monkeypatch.setattr(calib, "teacher_accuracy", lambda *a: {})
    task2 = tiny_task(digits_data, tmp_path / "b")
    candle_method.Candle(cfg).fit(task2)


def test_teacher_per_scale():
    from types import SimpleNamespace

    cfg = CandleConfig()
    assert [calib.teacher_name(cfg, f) for f in ("digits", "small", "large")] == [
        "digits",
        "resnet152",
        "efficientnetv2-m-in21k",
    ]
    assert calib.teacher_name(dataclasses.replace(cfg, teacher="resnet152"), "large") == "resnet152"

    def task(family):
        return SimpleNamespace(family=family, input_size=224)

    assert calib.teacher_resolutions(cfg, task("small")) == (128, 224, 480)
    assert calib.teacher_resolutions(cfg, task("large")) == (224,)  # Table 2 †
    assert calib.teacher_resolutions(dataclasses.replace(cfg, multires_large=True), task("large")) == (
        128,
        224,
        480,
    )
    assert calib.teacher_resolutions(dataclasses.replace(cfg, variant="cd+alb"), task("small")) == (224,)


def test_teacher_renormalises_the_students_input():
    enc = SmallCNN(5, in_chans=3, width=4)
    student_stats = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    teacher = MultiResTeacher(enc, 16, 6, 5, (8,), 8, renorm=(*student_stats, (0.5,) * 3, (0.5,) * 3))
    raw = torch.rand(2, 3, 8, 8)  # pixels in [0, 1]
    x = (raw - torch.tensor(student_stats[0]).view(1, 3, 1, 1)) / torch.tensor(student_stats[1]).view(
        1, 3, 1, 1
    )
    torch.testing.assert_close(teacher.inputs(x)[0], (raw - 0.5) / 0.5)
    same = MultiResTeacher(enc, 16, 6, 5, (8,), 8, renorm=(*student_stats, *student_stats))
    assert same.inputs(x)[0] is x


def test_calibration_is_las_on_class_balanced_batches(digits_data, tmp_path, tiny_encoder, spy):  # noqa: F811
    """A9: the calibration stage samples class-aware (4 per class) and trains c^T with label-aware smoothing."""
    import math

    task = tiny_task(digits_data, tmp_path, ir=10)
    cfg = dataclasses.replace(CandleConfig(), calib_epochs=1, calib_batch_size=64)
    teacher = calib.fit_calibrated_teacher(task, cfg, width=4)
    seen = spy["calibrate"]
    assert seen.cfg.sampler == "class_aware"
    counts = seen.label_counts(10)  # 6 batches of 64 on digits-LT10's 403 images: 36 or 40 per class
    assert counts.sum() == 384 and counts.max() - counts.min() <= 8, counts
    eh, et = task.records["teacher"]["las_eps"]
    assert eh > et
    n = task.class_counts
    eps = torch.tensor([et + (eh - et) * math.sin(math.pi / 2 * (c - min(n)) / (max(n) - min(n))) for c in n])
    x = torch.stack([seen.dataset[i][0] for i in range(0, 400, 9)])
    y = torch.as_tensor(seen.dataset.labels[0:400:9])
    with torch.no_grad():
        logp = torch.log_softmax(teacher.head(teacher.encoder_maps(x))[0], 1)
        e = eps[y]
        expect = ((1 - e) * -logp[torch.arange(len(y)), y] + e * -logp.mean(1)).mean()
        got = seen.step(x, y)
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)
