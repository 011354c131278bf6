"""Trainer pieces: schedules, parameter groups, sharded batches, EMA, and a short end-to-end fit."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from ltbench.distributed import ShardedBatches
from ltbench.errors import LTBenchError
from ltbench.method import TrainConfig
from ltbench.samplers import make_sampler
from ltbench.trainer import EMA, lr_factor, make_optimizer, param_groups


def test_cosine_with_warmup_per_step():
    cfg = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=2)
    assert lr_factor(cfg, 0, 5) == pytest.approx(1 / 10)
    assert lr_factor(cfg, 9, 5) == pytest.approx(1.0)
    assert lr_factor(cfg, 10, 5) == pytest.approx(1.0)
    assert lr_factor(cfg, 30, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 20 / 40)))


def test_warmup_from_a_start_factor():
    """BALMS's CosineAnnealingLRWarmup climbs linearly from base_lr 0.05 to warmup_lr 0.1: factor 0.5 → 1."""
    cfg = TrainConfig(epochs=10, schedule="cosine", warmup_epochs=2, warmup_start=0.5)
    assert lr_factor(cfg, 0, 5) == pytest.approx(0.5 + 0.5 / 10)
    assert lr_factor(cfg, 4, 5) == pytest.approx(0.5 + 0.5 * 5 / 10)
    assert lr_factor(cfg, 9, 5) == pytest.approx(1.0)
    assert lr_factor(cfg, 30, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 20 / 40)))  # cosine unchanged


def test_linear_per_epoch_is_reactnet_lambda():
    cfg = TrainConfig(epochs=4, schedule="linear", schedule_by="epoch")
    # ReActNet: lr * (1 - epoch / epochs), constant inside an epoch
    assert [lr_factor(cfg, s, 3) for s in range(12)] == pytest.approx(
        [1, 1, 1, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]
    )


def test_multistep_ldam():
    cfg = TrainConfig(epochs=200, schedule="multistep", milestones=(160, 180), gamma=0.01)
    assert lr_factor(cfg, 159, 1) == 1 and lr_factor(cfg, 160, 1) == pytest.approx(0.01)
    assert lr_factor(cfg, 185, 1) == pytest.approx(1e-4)
    with pytest.raises(LTBenchError):
        lr_factor(replace(cfg, schedule="nope"), 0, 1)


def test_reactnet_weight_decay_rule_only_conv_weights():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 2))
    cfg = TrainConfig(weight_decay=1e-5, weight_decay_rule="conv")
    groups = param_groups(model.parameters(), {"model": model}, cfg)
    decay = {id(p) for p in groups[0]["params"]}
    assert decay == {id(model[0].weight)}
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 5
    assert param_groups(model.parameters(), {"model": model}, replace(cfg, weight_decay_rule="all"))


def test_sharded_batches_split_global_batches_evenly():
    labels = [0] * 7 + [1] * 4
    s = make_sampler("instance", labels, 3, 4)
    single = list(ShardedBatches(s, 4, drop_last=False))
    r0 = list(ShardedBatches(s, 4, drop_last=False, rank=0, world=2))
    r1 = list(ShardedBatches(s, 4, drop_last=False, rank=1, world=2))
    assert len(single) == len(r0) == len(r1) == 3
    for whole, a, b in zip(single[:2], r0, r1, strict=False):
        assert a + b == whole
    assert len(r0[-1]) == len(r1[-1]) == 2  # 3 left over, padded to 4
    assert len(list(ShardedBatches(s, 4, drop_last=True, rank=1, world=2))) == 2
    with pytest.raises(LTBenchError):
        ShardedBatches(s, 3, False, 0, 2)


def test_ema_average():
    m = nn.Linear(1, 1, bias=False)
    m.weight.data.fill_(0.0)
    ema = EMA({"m": m}, 0.5)
    m.weight.data.fill_(2.0)
    ema.update({"m": m})
    ema.copy_to({"m": m})
    assert m.weight.item() == pytest.approx(1.0)


def test_fit_learns_checkpoints_and_logs(digits_data, tmp_path):
    from ltbench.data import open_split
    from ltbench.method import Task
    from ltbench.trainer import Trainer

    torch.manual_seed(0)
    info = open_split("digits-lt10", digits_data)
    task = Task(info=info, backbone="cnn-digits", device=torch.device("cpu"), run_dir=tmp_path / "s0")
    model = task.create_model()
    cfg = TrainConfig(epochs=2, batch_size=64, lr=0.002, ema=0.9, grad_clip=5.0)
    tr = Trainer(task, cfg, "ce")
    hist = tr.fit(
        {"model": model},
        model.parameters(),
        lambda x, y: nn.functional.cross_entropy(model(x), y),
        task.train_set(),
    )
    assert [h["epoch"] for h in hist] == [1, 2] and hist[1]["loss"] < hist[0]["loss"]
    assert (tmp_path / "s0" / "ce.ckpt").exists()
    assert len((tmp_path / "s0.log").read_text().splitlines()) == 2


@pytest.mark.parametrize(("every_s", "saved_after"), [(0.0, [1, 2, 3]), (3600.0, [3])])
def test_checkpoints_every_epoch_or_by_interval_and_always_last(digits_data, tmp_path, every_s, saved_after):
    from ltbench.data import open_split
    from ltbench.method import Task
    from ltbench.trainer import Trainer

    info = open_split("digits-lt10", digits_data)
    task = Task(info=info, backbone="cnn-digits", device=torch.device("cpu"), run_dir=tmp_path / "s0")
    model = task.create_model()
    tr = Trainer(task, TrainConfig(epochs=3, batch_size=256, checkpoint_every_s=every_s), "ce")
    saved = []
    real_save = tr._save
    tr._save = lambda modules, opt, sched, epoch: (saved.append(epoch), real_save(modules, opt, sched, epoch))
    loss = lambda x, y: nn.functional.cross_entropy(model(x), y)  # noqa: E731
    tr.fit({"model": model}, model.parameters(), loss, task.train_set())
    assert saved == saved_after
    assert torch.load(tr.ckpt, weights_only=True)["epoch"] == 3


def test_every_yaml_recipe_resolves():
    from pathlib import Path

    from ltbench.registry import METHODS
    from ltbench.run import resolve_config

    files = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert files
    for f in files:
        cfg = resolve_config(METHODS.get("ce"), True, "large", f)
        assert cfg.schedule in ("cosine", "linear", "multistep", "constant")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_is_fused_by_default_and_keeps_adams_first_step(name):
    """One step from fresh state is θ − lr·g/(|g| + ε) (bias-corrected m̂ = g, v̂ = g²), AdamW first scaling θ by
    1 − lr·wd and Adam adding wd·θ to g; fused (the default) and torch's per-tensor loop both give it."""
    lr, wd, eps = 0.01, 0.1, 1e-8
    g0 = torch.tensor([0.5, -2.0, 1e-3, 0.0])
    theta = torch.tensor([1.0, -1.0, 0.25, 2.0])
    grad = g0 + wd * theta if name == "adam" else g0
    base = theta if name == "adam" else theta * (1 - lr * wd)
    want = base - lr * grad / (grad.abs() + eps)
    for fused in (True, False):
        p = nn.Parameter(theta.clone())
        opt = make_optimizer([p], TrainConfig(optimizer=name, lr=lr, weight_decay=wd, fused_optimizer=fused))
        assert bool(opt.defaults.get("fused")) is fused
        p.grad = g0.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), want, rtol=1e-6, atol=1e-7)


def test_fused_adam_only_where_torch_has_it():
    meta = nn.Parameter(torch.zeros(3, device="meta"))
    assert not make_optimizer([meta], TrainConfig(optimizer="adam")).defaults.get("fused")  # no kernel there
    groups = [
        {"params": [nn.Parameter(torch.zeros(2))]},
        {"params": [nn.Parameter(torch.zeros(2))], "lr": 0.1},
    ]
    assert make_optimizer(groups, TrainConfig(optimizer="adam")).defaults["fused"] is True
    assert not make_optimizer([nn.Parameter(torch.zeros(2))], TrainConfig(optimizer="sgd")).defaults.get(
        "fused"
    )
