"""The one training loop every method's stages run on.

``Trainer(task, cfg, stage).fit(modules, params, step, dataset)`` builds the sampler, loader, optimizer and
learning-rate schedule from ``cfg``, runs ``cfg.epochs`` epochs of ``loss = step(images, labels)`` (under
bf16 autocast on CUDA when ``cfg.amp``; backward, gradient averaging over ranks, optional clipping,
optimizer and schedule steps, optional EMA), shows a rich progress bar (loss, lr, images/s), appends one line
per epoch to the run's log file (``<run_dir>.log``) and optionally to TensorBoard, and checkpoints to
``<run_dir>/<stage>.ckpt`` (atomic write by rank 0, ``weights_only`` load) at the end of an epoch once
``cfg.checkpoint_every_s`` passed since the last one, and after the last epoch (a checkpoint of a tiny model with
Adam state is ~20 MB: after every epoch of a minute-long demo run that is a twentieth of its time).

Determinism and resume: at the start of every epoch (and at the end of the stage) the python, numpy and
torch RNGs are re-seeded from (seed, stage, epoch, rank), and samplers draw from (seed, epoch); so epoch e
consumes the same randomness whether or not the run was interrupted, as does whatever follows the stage.
With ``task.resume`` a stage restarts from its last checkpoint (modules, optimizer, schedule, EMA, history)
and ends with the same weights as an uninterrupted run; a finished stage is only reloaded. A stage given a
``share_key`` is loaded from the task's stage store when another run trained it (:mod:`ltbench.stage_store`).

Parameter groups: ``params`` may be tensors or torch param-group dicts. ``cfg.weight_decay_rule`` splits
plain tensors by name (names come from ``modules``): ``all`` (every parameter), ``conv`` (ReActNet: only
parameters with 4 dimensions or ``conv`` in their name), ``no_norm_bias`` (skip 1-d parameters and biases).

Multi-process (``torchrun``): see :mod:`ltbench.distributed` — global batch split over ranks, gradients
averaged after backward, rank 0's buffers broadcast before every step (or SyncBN with ``cfg.sync_bn``).
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import zlib
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ltbench import distributed as dist
from ltbench import stage_store, trackers
from ltbench.data import num_workers
from ltbench.errors import LTBenchError
from ltbench.method import Task, TrainConfig
from ltbench.progress import console, epoch_summary, make_progress, report
from ltbench.samplers import make_sampler

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

WEIGHT_DECAY_RULES = ("all", "conv", "no_norm_bias")
SCHEDULES = ("cosine", "multistep", "linear", "constant")


def make_optimizer(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``params`` (tensors or param-group dicts); Adam and AdamW fused where torch has
    the kernel (``cfg.fused_optimizer``: floating parameters on CPU or CUDA)."""
    params = [dict(p, params=_tensors(p["params"])) if isinstance(p, dict) else p for p in params]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    adam = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(cfg.optimizer)
    if adam is not None:
        tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
        fused = cfg.fused_optimizer and all(
            t.is_floating_point() and t.device.type in ("cpu", "cuda") for t in tensors
        )
        return adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused or None)
    raise LTBenchError(f"unknown optimizer {cfg.optimizer!r}", "choose one of: adam, adamw, sgd")


def _tensors(group_params: Any) -> list[torch.Tensor]:
    return [group_params] if isinstance(group_params, torch.Tensor) else list(group_params)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at optimizer step ``step``: linear warm-up from ``warmup_start`` to 1 over
    ``warmup_epochs`` (per step), then the schedule, evaluated per step or, with ``schedule_by="epoch"``, at the
    start of each epoch."""
    total = cfg.epochs * steps_per_epoch
    warm = cfg.warmup_epochs * steps_per_epoch
    if warm and step < warm:
        return cfg.warmup_start + (1 - cfg.warmup_start) * (step + 1) / warm
    at = step - step % steps_per_epoch if getattr(cfg, "schedule_by", "step") == "epoch" else step
    t = (at - warm) / max(total - warm, 1)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0)))
    if cfg.schedule == "linear":
        return max(1.0 - t, 0.0)
    if cfg.schedule == "multistep":
        epoch = step // steps_per_epoch
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    if cfg.schedule == "constant":
        return 1.0
    raise LTBenchError(f"unknown schedule {cfg.schedule!r}", f"choose one of: {', '.join(SCHEDULES)}")


def training_fields(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as a dict less the fields :func:`lr_factor` ignores under it (``warmup_start`` without a warm-up,
    ``milestones``/``gamma`` outside ``multistep``): two configs that train alike give one shared-stage key."""
    from ltbench.config import to_dict

    d = to_dict(cfg)
    if not cfg.warmup_epochs:
        d.pop("warmup_start", None)
    if cfg.schedule != "multistep":
        for unused in ("milestones", "gamma"):
            d.pop(unused, None)
    return d


def decays(name: str, p: torch.Tensor, rule: str) -> bool:
    """Whether parameter ``name`` gets weight decay under ``rule``."""
    if rule == "all":
        return True
    if rule == "conv":
        return p.ndim == 4 or "conv" in name
    if rule == "no_norm_bias":
        return p.ndim > 1 and not name.endswith("bias")
    raise LTBenchError(
        f"unknown weight_decay_rule {rule!r}", f"choose one of: {', '.join(WEIGHT_DECAY_RULES)}"
    )


def param_groups(params: Iterable[Any], modules: dict[str, nn.Module], cfg: TrainConfig) -> list[Any]:
    """Split plain parameter tensors into decay / no-decay groups by ``cfg.weight_decay_rule``; param-group
    dicts pass through unchanged."""
    params = list(params)
    rule = getattr(cfg, "weight_decay_rule", "all")
    if rule == "all" or not cfg.weight_decay or any(isinstance(p, dict) for p in params):
        return params
    names = {id(p): f"{k}.{n}" for k, m in modules.items() for n, p in m.named_parameters()}
    decay = [p for p in params if decays(names.get(id(p), ""), p, rule)]
    rest = [p for p in params if not decays(names.get(id(p), ""), p, rule)]
    return [{"params": decay}, {"params": rest, "weight_decay": 0.0}]


def _epoch_seed(seed: int, stage: str, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + zlib.crc32(stage.encode()) * 7919 + epoch * 101 + rank) % 2**31


def reseed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class EMA:
    """Exponential moving average of modules' floating parameters and buffers (``decay`` per step)."""

    def __init__(self, modules: dict[str, nn.Module], decay: float):
        self.decay = decay
        self.shadow = {k: copy.deepcopy(m.state_dict()) for k, m in modules.items()}

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module]) -> None:
        for k, m in modules.items():
            for name, v in m.state_dict().items():
                s = self.shadow[k][name]
                if v.dtype.is_floating_point:
                    s.mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
                else:
                    s.copy_(v)

    def copy_to(self, modules: dict[str, nn.Module]) -> None:
        for k, m in modules.items():
            m.load_state_dict(self.shadow[k])


def amp_active(cfg: Any, device: torch.device) -> bool:
    """Whether ``cfg.amp`` really runs: bf16 autocast on CUDA only (elsewhere training stays fp32)."""
    return bool(cfg.amp) and device.type == "cuda"


class Trainer:
    def __init__(self, task: Task, cfg: TrainConfig, stage: str, share_key: str | None = None):
        """``share_key`` (:func:`ltbench.stage_store.stage_key`): the stage is one that other runs train
        identically; it is loaded from the task's stage store when there, else trained and put there."""
        self.task, self.cfg, self.stage = task, cfg, stage
        self.ckpt = Path(task.run_dir) / f"{stage}.ckpt"
        self.shared = stage_store.shared_path(task, share_key) if dist.world_size() == 1 else None
        self.log_file = Path(task.run_dir).parent / f"{Path(task.run_dir).name}.log"
        self.history: list[dict[str, float]] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.ema: EMA | None = None

    def loader(self, dataset: Dataset, sampler: str | None = None, shuffle_seed: int = 0) -> DataLoader:
        labels = dataset.labels
        bs = self.cfg.batch_size
        s = make_sampler(sampler or self.cfg.sampler, labels, self.task.seed + shuffle_seed, bs)
        batches = dist.ShardedBatches(s, bs, len(s) >= 2 * bs, dist.rank(), dist.world_size())
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=num_workers(),
            pin_memory=self.task.device.type == "cuda",
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
        with stage_store.claim(self.shared):
            return self._fit(modules, params, step, dataset, sampler, on_epoch_end)

    def _fit(self, modules, params, step, dataset, sampler, on_epoch_end) -> list[dict[str, float]]:
        cfg, device = self.cfg, self.task.device
        self._sync_bn(modules)
        dist.broadcast_parameters(modules.values())
        loader = self.loader(dataset, sampler)
        steps_per_epoch = max(len(loader), 1)
        opt = self.optimizer = make_optimizer(param_groups(params, modules, cfg), cfg)
        sched = self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: lr_factor(cfg, s, steps_per_epoch)
        )
        ema_decay = getattr(cfg, "ema", 0.0) or 0.0
        self.ema = EMA(modules, ema_decay) if ema_decay else None
        start = 0
        if self.shared is not None and self.shared.exists():
            start = self._load(modules, opt, sched, self.shared)
            stage_store.copy_atomic(self.shared, self.ckpt)  # the run dir holds its stages either way
        elif self.task.resume and self.ckpt.exists():
            start = self._load(modules, opt, sched, self.ckpt)
        trained = [p for g in opt.param_groups for p in g["params"]]
        amp = self._autocast()
        writer = self._tensorboard()
        sync_buffers = dist.world_size() > 1 and not getattr(cfg, "sync_bn", False)
        main = dist.is_main()
        last_save = time.monotonic()
        with make_progress() as prog:
            bar = prog.add_task(self.stage, total=cfg.epochs * steps_per_epoch, info="", visible=main)
            prog.advance(bar, start * steps_per_epoch)
            for epoch in range(start, cfg.epochs):
                reseed(_epoch_seed(self.task.seed, self.stage, epoch, dist.rank()))
                for m in modules.values():
                    m.train()
                for obj in (loader.batch_sampler, loader.sampler):
                    if hasattr(obj, "set_epoch"):
                        obj.set_epoch(epoch)
                t0, total, n = time.perf_counter(), 0.0, 0
                for images, labels in loader:
                    images = images.to(device, non_blocking=True)
                    labels = labels.to(device, non_blocking=True)
                    if sync_buffers:
                        dist.broadcast_buffers(modules.values())
                    with amp:
                        loss = step(images, labels)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    dist.all_reduce_grads(trained)
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
                    opt.step()
                    sched.step()
                    if self.ema is not None:
                        self.ema.update(modules)
                    total += float(loss.detach()) * len(labels)
                    n += len(labels)
                    if main:
                        rate = n / max(time.perf_counter() - t0, 1e-9)
                        prog.update(
                            bar,
                            advance=1,
                            info=f"epoch {epoch + 1}/{cfg.epochs} loss {total / n:.3f} "
                            f"lr {opt.param_groups[0]['lr']:.3g} {rate:.0f} img/s",
                        )
                total, n = dist.all_reduce_sum([total, float(n)], device)
                elapsed = max(time.perf_counter() - t0, 1e-9)
                rec = {"epoch": epoch + 1, "loss": total / max(n, 1), "lr": opt.param_groups[0]["lr"]}
                rec["images_per_s"] = n / elapsed
                if on_epoch_end is not None:
                    rec.update(on_epoch_end(epoch) or {})
                self.history.append(rec)
                if main:
                    report(prog, bar, epoch_summary(rec, cfg.epochs))
                self._log(rec, writer)
                due = time.monotonic() - last_save >= cfg.checkpoint_every_s
                if due or epoch + 1 == cfg.epochs:
                    self._save(modules, opt, sched, epoch + 1)
                    last_save = time.monotonic()
            if self.shared is not None and start < cfg.epochs:
                stage_store.copy_atomic(self.ckpt, self.shared)
        if writer is not None:
            writer.close()
        # what runs after this stage sees the same RNG state whether or not the stage was resumed
        reseed(_epoch_seed(self.task.seed, self.stage, cfg.epochs, dist.rank()))
        if self.ema is not None:
            self.ema.copy_to(modules)
        return self.history

    # -- helpers -------------------------------------------------------------------------------------

    def _autocast(self):
        if not self.cfg.amp:
            return nullcontext()
        if not amp_active(self.cfg, self.task.device):
            console.log(
                f"{self.stage}: amp is bf16 autocast on CUDA only; training in fp32 on {self.task.device}"
            )
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16)

    def _sync_bn(self, modules: dict[str, nn.Module]) -> None:
        if not getattr(self.cfg, "sync_bn", False) or dist.world_size() == 1:
            return
        if self.task.device.type != "cuda":
            raise LTBenchError("sync_bn needs CUDA devices", "drop --set sync_bn=true for CPU (gloo) runs")
        for k, m in modules.items():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                raise LTBenchError(f"module {k!r} is a bare BatchNorm", "wrap it in a container for sync_bn")
            nn.SyncBatchNorm.convert_sync_batchnorm(m)  # in place for containers; same parameter objects

    def _tensorboard(self):
        if not getattr(self.cfg, "tensorboard", False) or not dist.is_main():
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LTBenchError(
                "tensorboard=true but the tensorboard package is not installed", "pip install tensorboard"
            ) from None
        run = Path(self.task.run_dir)
        return SummaryWriter(str(run.parent / "tensorboard" / run.name / self.stage))

    def _log(self, rec: dict[str, float], writer) -> None:
        if not dist.is_main():
            return
        line = f"{self.stage} " + " ".join(f"{k}={v:.4g}" for k, v in rec.items())
        if self.cfg.log_every and rec["epoch"] % self.cfg.log_every == 0:
            console.log(line)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as f:
            f.write(json.dumps({"stage": self.stage, **rec}) + "\n")
        trackers.epoch(self.stage, rec)  # --log jsonl|tensorboard|wandb
        if writer is not None:
            for k, v in rec.items():
                if k != "epoch":
                    writer.add_scalar(f"{self.stage}/{k}", v, rec["epoch"])

    def _save(self, modules, opt, sched, epoch: int) -> None:
        if dist.is_main():
            state = {
                "epoch": epoch,
                "modules": {k: m.state_dict() for k, m in modules.items()},
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "ema": None if self.ema is None else self.ema.shadow,
                "history": self.history,
            }
            stage_store.save_atomic(state, self.ckpt)
        dist.barrier()

    def _load(self, modules, opt, sched, path: Path) -> int:
        state = torch.load(path, map_location=self.task.device, weights_only=True)
        for k, m in modules.items():
            m.load_state_dict(state["modules"][k])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.shadow = state["ema"]
        self.history = list(state["history"])
        if dist.is_main():
            how = "reused the shared" if path == self.shared else "resumed"
            console.log(f"{how} {self.stage} from {path} at epoch {state['epoch']}")
        return int(state["epoch"])
