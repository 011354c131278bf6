"""The one training loop every method's stages run on.

``Trainer(task, cfg, stage).fit(modules, params, step, dataset)`` builds the sampler, loader, optimizer and a
per-step learning-rate schedule from ``cfg``, runs ``cfg.epochs`` epochs of ``loss = step(images, labels)``
(backward, optional clipping, optimizer and schedule steps), shows a progress bar, and checkpoints at the end
of every epoch to ``<run_dir>/<stage>.ckpt`` (atomic write, ``weights_only`` load). With ``task.resume`` a
stage restarts from its last checkpoint — modules, optimizer, schedule and RNG states — so an interrupted run
ends with the same weights as an uninterrupted one; a finished stage is only reloaded.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ltbench.data import num_workers
from ltbench.method import Task, TrainConfig
from ltbench.progress import console, make_progress
from ltbench.samplers import make_sampler

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_optimizer(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (linear warm-up, then the schedule)."""
    total = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch
    if warm and step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(total - warm, 1)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    if cfg.schedule == "linear":
        return max(1.0 - t, 0.0)
    if cfg.schedule == "multistep":
        epoch = step // steps_per_epoch
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


class Trainer:
    def __init__(self, task: Task, cfg: TrainConfig, stage: str):
        self.task, self.cfg, self.stage = task, cfg, stage
        self.ckpt = Path(task.run_dir) / f"{stage}.ckpt"
        self.history: list[dict[str, float]] = []

    def loader(self, dataset: Dataset, sampler: str | None = None, shuffle_seed: int = 0) -> DataLoader:
        labels = dataset.labels
        s = make_sampler(
            sampler or self.cfg.sampler, labels, self.task.seed + shuffle_seed, self.cfg.batch_size
        )
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=s,
            drop_last=len(s) >= 2 * self.cfg.batch_size,
            num_workers=num_workers(),
            persistent_workers=num_workers() > 0,
        )

    def fit(
        self,
        modules: dict[str, nn.Module],
        params: Iterable[Any],
        step: Step,
        dataset: Dataset,
        sampler: str | None = None,
        on_epoch_end: Callable[[int], dict[str, float] | None] | None = None,
    ) -> list[dict[str, float]]:
        cfg, device = self.cfg, self.task.device
        loader = self.loader(dataset, sampler)
        steps_per_epoch = len(loader)
        opt = make_optimizer(params, cfg)
        self.optimizer = opt  # steps that need the optimizer's lr/state (BALMS's inner step) read it here
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, steps_per_epoch))
        start = 0
        if self.task.resume and self.ckpt.exists():
            start = self._load(modules, opt, sched)
        for m in modules.values():
            m.train()
        with make_progress() as prog:
            bar = prog.add_task(self.stage, total=cfg.epochs * steps_per_epoch, info="")
            prog.advance(bar, start * steps_per_epoch)
            for epoch in range(start, cfg.epochs):
                loader.sampler.set_epoch(epoch)
                t0, total, n = time.perf_counter(), 0.0, 0
                for images, labels in loader:
                    images, labels = (
                        images.to(device, non_blocking=True),
                        labels.to(device, non_blocking=True),
                    )
                    loss = step(images, labels)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(
                            [p for g in opt.param_groups for p in g["params"]], cfg.grad_clip
                        )
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(labels)
                    n += len(labels)
                    prog.update(bar, advance=1, info=f"epoch {epoch + 1}/{cfg.epochs} loss {total / n:.3f}")
                rec = {"epoch": epoch + 1, "loss": total / max(n, 1), "lr": opt.param_groups[0]["lr"]}
                rec["images_per_s"] = n / max(time.perf_counter() - t0, 1e-9)
                if on_epoch_end is not None:
                    rec.update(on_epoch_end(epoch) or {})
                self.history.append(rec)
                if cfg.log_every and (epoch + 1) % cfg.log_every == 0:
                    console.log(f"{self.stage} " + " ".join(f"{k}={v:.4g}" for k, v in rec.items()))
                self._save(modules, opt, sched, epoch + 1)
        return self.history

    def _save(self, modules, opt, sched, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
            "numpy_pos": int(np.random.get_state()[2]),
            "history": self.history,
        }
        self.ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.ckpt)

    def _load(self, modules, opt, sched) -> int:
        state = torch.load(self.ckpt, map_location=self.task.device, weights_only=True)
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        np.random.set_state(
            ("MT19937", state["numpy_rng"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0)
        )
        self.history = list(state["history"])
        console.log(f"resumed {self.stage} from {self.ckpt} at epoch {state['epoch']}")
        return int(state["epoch"])
