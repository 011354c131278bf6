"""BALMS: meta-sampler init, draws, the differentiable inner step, the meta gradient by hand, end to end."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from ltbench.baselines.balms import (
    MetaSampler,
    SampleLearner,
    differentiable_step,
    meta_sampler_gradient,
)
from ltbench.baselines.losses import straight_through_gumbel
from method_spy import spy  # noqa: F401
from torch import nn

DIGITS_COUNTS = [100, 77, 59, 46, 35, 27, 21, 16, 12, 10]  # digits-lt10 train counts
STATE = ("logits", "exp_avg", "exp_avg_sq", "adam_step")


def test_sampler_init_follows_the_official_inverse_sigmoid():
    # counts (8, 2): π = (.8, .2); p = 1 → 1/π = (1.25, 5) → /(min + max) = (.2, .8) → logit = (ln ¼, ln 4)
    learner = SampleLearner([0, 1], [8, 2], init_pow=1.0)
    assert learner.logits.tolist() == pytest.approx([math.log(0.25), math.log(4.0)], rel=1e-6)
    # p = 0: every class 1/2 → logit 0 → uniform over instances
    assert SampleLearner([0, 1], [8, 2], init_pow=0.0).logits.tolist() == [0.0, 0.0]


def test_draw_queues_one_hot_straight_through_samples():
    torch.manual_seed(0)
    learner = SampleLearner([0, 0, 0, 1], [3, 1])
    index = learner.draw(5)
    st = learner.pop()
    assert st.shape == (5, 4) and index.shape == (5,)
    assert torch.equal(st.detach(), F.one_hot(index, 4).float())
    assert st.requires_grad
    with pytest.raises(RuntimeError):
        learner.pop()


def test_meta_sampler_epoch_length():
    learner = SampleLearner([0] * 300 + [1] * 103, [300, 103])
    assert len(MetaSampler(learner, 403, 64)) == 6 * 64
    assert len(MetaSampler(learner, 10, 64)) == 64  # at least one batch (with replacement)
    assert len(list(iter(MetaSampler(learner, 403, 64)))) == 6 * 64
    learner.samples.clear()


OPTIMIZERS = {
    "sgd_momentum_wd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=5e-4),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "sgd_plain": lambda p: torch.optim.SGD(p, lr=0.3),
    "adam_l2": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.05),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("warm", [False, True])
def test_differentiable_step_matches_the_torch_optimizer(name, warm):
    torch.manual_seed(1)
    lin = nn.Linear(3, 2)
    opt = OPTIMIZERS[name](lin.parameters())
    if warm:  # populate momentum / moment state
        for p in lin.parameters():
            p.grad = torch.randn_like(p)
        opt.step()
    grads = [torch.randn_like(p) for p in lin.parameters()]
    stepped = differentiable_step(opt, list(lin.parameters()), grads)
    ref = copy.deepcopy(lin)
    ref_opt = OPTIMIZERS[name](ref.parameters())
    ref_opt.load_state_dict(opt.state_dict())
    for p, g in zip(ref.parameters(), grads, strict=True):
        p.grad = g.clone()
    ref_opt.step()
    for a, b in zip(stepped, ref.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-7)


def test_meta_gradient_equals_the_hand_chain_rule():
    """∂L_meta/∂w_c = −lr/B Σ_b (u·v_b) ∂s_b[i_b]/∂w_c for one plain SGD step, with u = ∇θ' L_meta,
    v_b = ∇θ ℓ_b (balanced-softmax loss of slot b) and ∂s_i/∂w_c = (1−σ(w_c)) s_i (1[y_i=c] − Σ_{j:y_j=c} s_j)."""
    torch.manual_seed(3)
    labels = torch.tensor([0, 0, 1, 1, 1])
    counts = [3, 1]
    learner = SampleLearner(labels, counts).double()
    with torch.no_grad():
        learner.logits.copy_(torch.tensor([0.3, -0.4], dtype=torch.float64))
    head = nn.Linear(3, 2).double()
    lr = 0.5
    opt = torch.optim.SGD(head.parameters(), lr=lr)
    B = 2
    g = torch.tensor([[0.0, 2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 3.0]], dtype=torch.float64)
    index, st = straight_through_gumbel(learner.instance_log_weights().expand(B, -1), g)
    assert index.tolist() == [1, 4]
    y = labels[index]
    feats = torch.randn(B, 3, dtype=torch.float64)
    meta_feats = torch.randn(4, 3, dtype=torch.float64)
    meta_y = torch.tensor([0, 1, 0, 1])
    grad = meta_sampler_gradient(head, opt, learner, st, feats, y, meta_feats, meta_y, counts)

    # independent computation
    W, b = head.weight.detach(), head.bias.detach()
    log_pi = torch.log(torch.tensor([0.75, 0.25], dtype=torch.float64))

    def slot_grad(k):
        Wk, bk = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
        loss = -torch.log_softmax(feats[k] @ Wk.t() + bk + log_pi, 0)[y[k]]
        return torch.cat([t.flatten() for t in torch.autograd.grad(loss, (Wk, bk))])

    v = [slot_grad(k) for k in range(B)]
    step = sum(v) / B
    W2 = (W - lr * step[:6].view(2, 3)).requires_grad_(True)
    b2 = (b - lr * step[6:]).requires_grad_(True)
    meta = F.cross_entropy(meta_feats @ W2.t() + b2, meta_y)
    u = torch.cat([t.flatten() for t in torch.autograd.grad(meta, (W2, b2))])
    sig = torch.sigmoid(learner.logits.detach())
    s = torch.softmax(torch.log(sig[labels]) + g, 1)
    expect = torch.zeros(2, dtype=torch.float64)
    for k, i in enumerate(index.tolist()):
        for c in range(2):
            ds = (1 - sig[c]) * s[k, i] * (float(labels[i] == c) - s[k, labels == c].sum())
            expect[c] += -lr / B * (u @ v[k]) * ds
    assert torch.allclose(grad, expect, atol=1e-10)


def test_adam_update_of_the_sampler_matches_torch_adam():
    learner = SampleLearner([0, 1, 2], [5, 3, 1])
    ref = nn.Parameter(learner.logits.detach().clone())
    opt = torch.optim.Adam([ref], lr=0.01)
    for k in range(3):
        grad = torch.tensor([0.5, -1.0, 2.0]) * (k + 1)
        learner.adam_update(grad, 0.01)
        ref.grad = grad.clone()
        opt.step()
    assert torch.allclose(learner.logits, ref, atol=1e-7)


def test_balms_end_to_end_on_digits(digits_data, tmp_path, spy, monkeypatch):  # noqa: F811
    import ltbench.baselines.balms as balms
    from ltbench.baselines.decoupling import frozen_features

    from ltbench.run import run_one

    calls = []  # the sampler's state as each meta step starts, and the meta-gradient it computes
    real_gradient = balms.meta_sampler_gradient

    def watched(head, optimizer, learner, *rest):
        calls.append({k: getattr(learner, k).detach().clone() for k in STATE})
        calls[-1]["g"] = real_gradient(head, optimizer, learner, *rest).detach().clone()
        return calls[-1]["g"]

    monkeypatch.setattr(balms, "meta_sampler_gradient", watched)

    path = run_one(
        "balms",
        "digits-lt10",
        backbone="cnn-digits",
        sets={"epochs": "1", "cls_epochs": "1"},
        data_root=digits_data,
        results=tmp_path,
        device="cpu",
        keep_checkpoints=True,
    )
    result = json.loads(path.read_text())
    rec = result["records"]["balms"]
    assert rec["meta_split"] == "train" and rec["stage2_epochs"] == 1
    stage2 = result["records"]["stages"][1]
    assert stage2["meta_set"] == {
        "split": "train",
        "images": 403,
        "per_class": 1,
    }  # ClassAwareSampler default
    # the classifier step's loss is the balanced softmax CE(z + log π, y) of the sampled batch, by hand
    seen = spy["balms"]
    model, learner = seen.modules["model"], seen.modules["meta_sampler"]
    x = torch.stack([seen.dataset[i][0] for i in range(0, 400, 13)])
    y = torch.as_tensor(seen.dataset.labels[0:400:13])
    learner.draw(len(y))  # the step pops the straight-through sample of its batch
    with torch.no_grad():
        z = model.classifier(frozen_features(model, x, "train"))
    log_pi = torch.log(torch.tensor(DIGITS_COUNTS, dtype=torch.float32) / 403)
    expect = -torch.log_softmax(z + log_pi, 1)[torch.arange(len(y)), y].mean()
    assert seen.step(x, y).item() == pytest.approx(expect.item(), rel=1e-5)
    # the sampler descends the meta loss: between two meta steps, w moves by one Adam step along +∂L_meta/∂w
    first, second = calls[0], calls[1]
    assert first["g"].abs().max() > 0
    ref = SampleLearner(learner.labels, DIGITS_COUNTS)
    for k in STATE:
        getattr(ref, k).data.copy_(first[k])
    ref.adam_update(first["g"], result["config"]["meta_lr"])
    assert torch.allclose(ref.logits, second["logits"], atol=1e-7)
    assert not torch.allclose(ref.logits, first["logits"], atol=1e-4)
    run_dir = tmp_path / ".runs" / "digits-lt10" / "balms" / "cnn-digits" / "seed0"
    load = lambda stage: torch.load(run_dir / f"{stage}.ckpt", weights_only=True)["modules"]  # noqa: E731
    s1, s2 = load("stage1"), load("balms")
    assert not torch.allclose(s1["model"]["classifier.weight"], s2["model"]["classifier.weight"])  # re-init
    assert torch.equal(s1["model"]["features.0.weight"], s2["model"]["features.0.weight"])  # frozen
    assert int(s2["meta_sampler"]["adam_step"]) == 403 // 64  # one meta update per step
    rates = torch.sigmoid(s2["meta_sampler"]["logits"]).tolist()
    assert rec["sample_rates"] == pytest.approx(rates, abs=1e-6) and rates != [0.5] * 10


@pytest.mark.slow
def test_balms_end_to_end_on_reactnet_a_tiny(digits_data, tmp_path):
    from ltbench.run import run_one

    path = run_one(
        "balms",
        "digits-lt10",
        backbone="reactnet-a-tiny",
        sets={"epochs": "0", "cls_epochs": "1"},  # stage 1 = the shared code trained above; keeps it short
        data_root=digits_data,
        results=tmp_path,
        device="cpu",
    )
    result = json.loads(path.read_text())
    assert result["binary"] and result["records"]["stages"][1]["sampler"] == "meta"


def test_stage1_view_on_cifar_style_sets_is_the_official_one(digits_data):
    from types import SimpleNamespace

    from ltbench.baselines.balms import stage1_train_set
    from torchvision.transforms import v2

    from ltbench.transforms import Cutout

    captured = {}

    class Split:
        def __init__(self, info, split, tf, mode):
            captured["tf"] = tf

    import ltbench.baselines.balms as balms

    task = SimpleNamespace(family="small", input_size=32, info=None)
    orig = balms.ImageSplit
    balms.ImageSplit = Split
    try:
        stage1_train_set(task, True)
    finally:
        balms.ImageSplit = orig
    ops = captured["tf"].transforms
    kinds = [type(t).__name__ for t in ops]
    # RandomCrop(32, pad 4) + flip + AutoAugment(CIFAR10) + ToTensor + Cutout(16) + Normalize (ImbalanceCIFAR.py)
    assert kinds[-6:] == [
        "RandomCrop",
        "RandomHorizontalFlip",
        "AutoAugment",
        "ToDtype",
        "Cutout",
        "Normalize",
    ]
    assert ops[-4].policy == v2.AutoAugmentPolicy.CIFAR10 and ops[-2].size == 16
    assert ops[-6].padding == [4, 4, 4, 4] or ops[-6].padding == 4
    img = torch.ones(1, 8, 8)
    torch.manual_seed(0)
    cut = Cutout(4)(img)
    assert (cut == 0).sum() in (4, 6, 8, 9, 12, 16) and cut.max() == 1  # a 4×4 hole, clipped at the border


@pytest.mark.slow
def test_decoupled_balanced_softmax_without_meta_sampler(digits_data, tmp_path):
    from ltbench.run import run_one

    path = run_one(
        "balms",
        "digits-lt10",
        backbone="cnn-digits",
        sets={"epochs": "1", "cls_epochs": "1", "cls_meta_sampler": "false"},
        data_root=digits_data,
        results=tmp_path,
        device="cpu",
    )
    result = json.loads(path.read_text())
    assert "sample_rates" not in result["records"]["balms"]
    assert result["records"]["stages"][1]["sampler"] == "instance"


def test_balms_raises_the_tail_above_ce_on_digits_lt100(digits_data, tmp_path):
    # the default digits recipes, seed 0; digits-LT100 tail classes have 2, 1 and 1 training images
    from ltbench.run import run_one

    def tail(method):
        path = run_one(method, "digits-lt100", "cnn-digits", 0, {}, data_root=digits_data, results=tmp_path)
        return json.loads(path.read_text())["metrics"]["tail"]

    assert tail("balms") >= tail("ce") + 0.1
