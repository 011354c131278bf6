"""BALMS — Balanced Meta-Softmax (Ren et al., NeurIPS 2020), decoupled: stage-1 CE, stage-2 balanced softmax +
meta sampler on a frozen backbone, raw logits at test.

Follows jiawei-ren/BalancedMetaSoftmax-Classification: ``data/MetaSampler.py``, ``run_networks.py``
(``meta_forward``), ``main.py``, ``loss/BalancedSoftmaxLoss.py``, ``config/CIFAR*_LT/{softmax,balms}_imba200.yaml``,
``config/ImageNet_LT/balms_resnet10.yaml``.

- **Stage 1**: plain softmax CE, instance sampling (the README's "base model"). On CIFAR-style (``small``)
  sets the training view is the official ``data/ImbalanceCIFAR.py`` one: crop with padding + flip +
  AutoAugment (CIFAR-10 policy) + Cutout(size/2 = 16 px at 32) before normalisation; other families keep
  their own augmentation (the official ImageNet/Places loaders have no AutoAugment).
- **Stage 2**: backbone frozen (BN policy ``cls_bn``, default ``train`` = the official ``.train()``, so BN
  statistics are re-estimated), classifier **re-initialised** (``load_model`` skips ``DotProductClassifier``),
  loss = balanced softmax CE(z + log π, y) with the LT train counts.
- **Meta sampler** (``cls_meta_sampler``): one logit w_c per class; instance i has weight σ(w_{y_i}); each of the B
  slots of a batch draws one instance (with replacement) by hard Gumbel-softmax over all N instances; w is
  initialised to logit((1/π_c^p)/(min+max)) (p = ``meta_init_pow``; 0 ⇒ uniform over instances). Each step:
  (i) one differentiable step of the classifier — the *real* optimiser's update rule, lr and state (SGD momentum
  buffer / Adam moments), as ``higher.innerloop_ctx`` copies them — on the BS loss of the sampled batch weighted
  by the straight-through sample, computed with ``torch.func.functional_call``; (ii) CE of the stepped copy on a
  class-balanced meta batch (class-aware sampler with **1 image per class visit** — ``ClassAwareSampler``'s
  default ``num_samples_cls=1``, which ``main.py`` does not override — over the train split, the CIFAR rule,
  or over the ``val`` split when the dataset has one, the ImageNet/Places rule; BALMS#6), back-propagated to
  w only, Adam (lr
  ``meta_lr``) — its moments live in the sampler module, so checkpoints resume exactly; (iii) the real classifier
  steps on the plain BS loss of the sampled batch. Features are detached throughout.
- **Test**: raw logits (no prior at test; BALMS#13).

Choices: an epoch of the meta sampler is max(⌊N/B⌋, 1) batches (the official ⌊N/B⌋ gives none when N < B);
iteration-based official lengths (``iterations``, ``warmup_iterations``, ``cls_iterations``) are turned into
epochs as ``main.py`` does (⌈iterations / steps per epoch⌉); the official warm-up from 0.05 to 0.1 is the
Trainer's linear warm-up from ``warmup_start`` 0.5 of lr 0.1 (the official first step is 0.05 exactly, ours
0.05 + 0.05/W, W the warm-up's steps); each batch is forwarded once (the official code forwards it twice, once in
``meta_forward``, so BN statistics move twice per step under ``cls_bn=train``). ``cls_meta_sampler=false`` gives
the decoupled balanced-softmax baseline (instance sampling, ``sampler: null`` per BALMS#11).
Recipes: ``official`` = CIFAR-10/100-LT ResNet-32 (dataclass defaults); ``official/large`` = ImageNet-LT
ResNet-10; ``binary`` = the ``official`` schedule under Adam, lr 0.01, no weight decay (:mod:`ltbench.recipes`);
``equal-budget`` = CANDLE's 400 epochs of batch 256. Values and sources: ``docs/methods.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from ltbench import distributed as dist
from ltbench.data import ImageSplit, num_workers
from ltbench.errors import LTBenchError
from ltbench.families import get_family
from ltbench.method import BNPolicy, Method, Optimizer, SamplerName, Schedule, Task
from ltbench.registry import METHODS
from ltbench.samplers import make_sampler
from ltbench.stage_records import add_stage
from ltbench.trainer import Trainer
from ltbench.transforms import train_transform

from .decoupling import (
    ClassifierStageConfig,
    check_bn,
    classifier_stage_config,
    freeze_all_but,
    frozen_features,
    train_stage1,
)
from .losses import balanced_softmax_loss, sample_weighted_loss, straight_through_gumbel


@dataclass
class BALMSConfig(ClassifierStageConfig):
    """Defaults: the CIFAR-LT ResNet-32 configs (``softmax_imba200.yaml``, ``balms_imba200.yaml``)."""

    epochs: int = 200  # used when iterations = 0
    iterations: int = 13000  # stage-1 length in optimiser steps (0: use epochs)
    warmup_iterations: int = 800
    warmup_start: float = 0.5  # base_lr 0.05 → warmup_lr 0.1 (softmax_imba200.yaml, CosineAnnealingLRWarmup)
    batch_size: int = 512
    optimizer: Optimizer = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    schedule: Schedule = "cosine"
    cls_iterations: int = 2000  # stage-2 length in steps (0: use cls_epochs)
    cls_epochs: int = 20
    cls_batch_size: int = 512
    cls_optimizer: Optimizer = "sgd"
    cls_lr: float = 0.1
    cls_weight_decay: float = 5e-4
    cls_schedule: Schedule = "cosine"
    cls_sampler: SamplerName = "instance"  # used only without the meta sampler
    cls_bn: BNPolicy = "train"
    cls_meta_sampler: bool = True
    meta_lr: float = 0.01
    meta_batch_size: int = 0  # 0: cls_batch_size
    meta_init_pow: float = 0.0
    meta_split: str = "auto"  # auto: 'val' if the dataset has it, else 'train' | any split name


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps in one epoch of the Trainer's loader (drop_last when N ≥ 2B)."""
    return n // batch_size if n >= 2 * batch_size else math.ceil(n / batch_size)


def epochs_for(iterations: int, steps: int) -> int:
    return max(math.ceil(iterations / max(steps, 1)), 1)


def inverse_sigmoid(p: torch.Tensor) -> torch.Tensor:
    return p.log() - (1 - p).log()


class SampleLearner(nn.Module):
    """The meta sampler's parameters (one logit per class) and its Adam state (betas 0.9/0.999, eps 1e-8)."""

    def __init__(self, labels, counts, init_pow: float = 0.0):
        super().__init__()
        n = torch.as_tensor(list(counts), dtype=torch.float64)
        w = 1.0 / (n / n.sum()).pow(init_pow)
        w = w / (w.min() + w.max())
        self.logits = nn.Parameter(inverse_sigmoid(w).float())
        self.register_buffer("labels", torch.as_tensor(labels, dtype=torch.long), persistent=False)
        self.register_buffer("exp_avg", torch.zeros_like(self.logits))
        self.register_buffer("exp_avg_sq", torch.zeros_like(self.logits))
        self.register_buffer("adam_step", torch.zeros(()))
        self.samples: deque[torch.Tensor] = deque()

    def instance_log_weights(self) -> torch.Tensor:
        """log σ(w_{y_i}) for each of the N instances."""
        return torch.sigmoid(self.logits)[self.labels].log()

    def draw(self, batch_size: int) -> torch.Tensor:
        """Indices of one batch; the straight-through sample (B, N) is queued for :meth:`pop`."""
        log_w = self.instance_log_weights().unsqueeze(0).expand(batch_size, -1)
        gumbels = -torch.empty_like(log_w).exponential_().log()
        index, st = straight_through_gumbel(log_w, gumbels)
        self.samples.append(st)
        return index

    def pop(self) -> torch.Tensor:
        if not self.samples:
            raise RuntimeError("meta sampler: no sample queued for this batch")
        return self.samples.popleft()

    @torch.no_grad()
    def adam_update(self, grad: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.adam_step += 1
        t = float(self.adam_step)
        self.exp_avg.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
        self.exp_avg_sq.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        denom = (self.exp_avg_sq / (1 - betas[1] ** t)).sqrt().add_(eps)
        self.logits.addcdiv_(self.exp_avg, denom, value=-lr / (1 - betas[0] ** t))


class MetaSampler(torch.utils.data.Sampler[int]):
    """Index sampler: max(⌊N/B⌋, 1) batches of B instances, each batch drawn by the learner when reached."""

    def __init__(self, learner: SampleLearner, n: int, batch_size: int):
        self.learner, self.n, self.batch_size = learner, n, batch_size
        self.num_batches = max(n // batch_size, 1)

    def set_epoch(self, epoch: int) -> None:
        """Draws come from the (seeded) torch RNG; nothing to re-seed per epoch."""

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def __iter__(self):
        for _ in range(self.num_batches):
            yield from self.learner.draw(self.batch_size).tolist()


class _MetaTrainer(Trainer):
    """The shared Trainer, with batches drawn by the meta sampler."""

    def __init__(self, task: Task, cfg, stage: str, sampler: MetaSampler):
        super().__init__(task, cfg, stage)
        self.meta_sampler = sampler

    def loader(self, dataset, sampler=None, shuffle_seed: int = 0) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.cfg.batch_size,
            sampler=self.meta_sampler,
            num_workers=num_workers(),
            persistent_workers=num_workers() > 0,
        )


def differentiable_step(
    optimizer: torch.optim.Optimizer, params: list[torch.Tensor], grads: list[torch.Tensor]
) -> list[torch.Tensor]:
    """One update of ``optimizer``'s rule as a differentiable function of ``grads``, from its current lr and
    state (nothing is modified): SGD (momentum, dampening, Nesterov, weight decay), Adam (L2) and AdamW."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    out = []
    for p, g in zip(params, grads, strict=True):
        group, state = group_of[id(p)], optimizer.state.get(p, {})
        lr, wd = group["lr"], group["weight_decay"]
        if type(optimizer) is torch.optim.SGD:
            d = g + wd * p if wd else g
            mom = group["momentum"]
            if mom:
                buf = state.get("momentum_buffer")
                buf = d if buf is None else mom * buf + (1 - group["dampening"]) * d
                d = d + mom * buf if group["nesterov"] else buf
            out.append(p - lr * d)
        elif type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
            (b1, b2), eps = group["betas"], group["eps"]
            base = p
            if type(optimizer) is torch.optim.AdamW:
                base = p * (1 - lr * wd)
            elif wd:
                g = g + wd * p
            t = float(state["step"]) + 1 if "step" in state else 1.0
            m = state["exp_avg"] * b1 + (1 - b1) * g if "exp_avg" in state else (1 - b1) * g
            v = state["exp_avg_sq"] * b2 + (1 - b2) * g * g if "exp_avg_sq" in state else (1 - b2) * g * g
            v_hat = (v / (1 - b2**t)).clamp_min(1e-30)  # no infinite derivative of sqrt at 0
            out.append(base - lr * (m / (1 - b1**t)) / (v_hat.sqrt() + eps))
        else:
            raise LTBenchError(
                f"the meta sampler's inner step has no rule for {type(optimizer).__name__}",
                "use cls_optimizer sgd, adam or adamw",
            )
    return out


def meta_sampler_gradient(
    head: nn.Module,
    optimizer: torch.optim.Optimizer,
    learner: SampleLearner,
    st_sample: torch.Tensor,
    feats: torch.Tensor,
    labels: torch.Tensor,
    meta_feats: torch.Tensor,
    meta_labels: torch.Tensor,
    counts,
) -> torch.Tensor:
    """∂ CE(head_θ'(meta), y_meta) / ∂ w with θ' = one optimiser step on the sample-weighted BS loss."""
    names = [n for n, p in head.named_parameters() if p.requires_grad]
    params = [p for p in head.parameters() if p.requires_grad]
    per_sample = balanced_softmax_loss(
        functional_call(head, dict(zip(names, params, strict=True)), (feats.detach(),)),
        labels,
        counts,
        reduction="none",
    )
    inner = sample_weighted_loss(per_sample, st_sample)
    grads = torch.autograd.grad(inner, params, create_graph=True)
    stepped = differentiable_step(optimizer, params, list(grads))
    meta_logits = functional_call(head, dict(zip(names, stepped, strict=True)), (meta_feats.detach(),))
    (grad,) = torch.autograd.grad(F.cross_entropy(meta_logits, meta_labels), learner.logits)
    return grad


#: images per class visit of the meta set's ClassAwareSampler (official default ``num_samples_cls=1``)
META_PER_CLASS = 1


#: BALMS's own stage-1 view on CIFAR-style families (the name it is shared under, :mod:`ltbench.stage_store`)
CIFAR_VIEW = "train + AutoAugment(CIFAR10) + Cutout(side/2)"


def stage1_view(task: Task, augment: bool) -> str | None:
    """:data:`CIFAR_VIEW` where BALMS trains stage 1 on it, else None (the task's train split, as the others)."""
    return CIFAR_VIEW if augment and get_family(task.family).views == "cifar" else None


def stage1_train_set(task: Task, augment: bool) -> ImageSplit:
    """BALMS's stage-1 training view: on CIFAR-style families (``small``) the official CIFAR one (+ AutoAugment CIFAR-10 policy
    and Cutout of half the input side), elsewhere the family's own."""
    if stage1_view(task, augment) is None:
        return task.train_set(augment=augment)
    size = task.input_size or 224
    tf = train_transform(task.family, size, augment, auto_augment="cifar10", cutout=size // 2)
    return ImageSplit(task.info, "train", tf, mode=get_family(task.family).mode)


class _Endless:
    """An endless class-aware loader over the meta set (the official ``is_infinite`` ClassAwareSampler)."""

    def __init__(self, dataset, batch_size: int, seed: int):
        self.sampler = make_sampler("class_aware", dataset.labels, seed, batch_size, META_PER_CLASS)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler)
        self.epoch, self.it = 0, None

    def __next__(self):
        while True:
            if self.it is None:
                self.sampler.set_epoch(self.epoch)
                self.it = iter(self.loader)
            try:
                return next(self.it)
            except StopIteration:
                self.epoch, self.it = self.epoch + 1, None


@METHODS.register("balms")
class BALMS(Method):
    Config = BALMSConfig
    stages = "1: joint CE · 2: frozen backbone, re-initialised classifier, balanced softmax + meta sampler"
    sampler = "instance → meta sampler (Gumbel, learnt per-class rates; class-aware meta set)"
    test_time = "raw logits"
    follows = "Ren et al. NeurIPS'20, jiawei-ren/BalancedMetaSoftmax-Classification"

    def fit(self, task: Task) -> nn.Module:
        cfg = self.config
        bn = check_bn(cfg.cls_bn)
        if cfg.cls_meta_sampler and dist.world_size() > 1:
            raise LTBenchError(
                "balms's meta sampler runs in a single process (its draws and updates are not sharded)",
                "run balms without torchrun, or set --set cls_meta_sampler=false",
            )
        train = stage1_train_set(task, cfg.augment)
        s1 = cfg
        if cfg.iterations:
            steps = steps_per_epoch(len(train), cfg.batch_size)
            warm = cfg.warmup_iterations / steps
            s1 = dataclasses.replace(cfg, epochs=epochs_for(cfg.iterations, steps), warmup_epochs=warm)
        view = stage1_view(task, cfg.augment)
        model = train_stage1(task, s1, train if view else None, view=view)

        # stage 2: fresh classifier on the frozen backbone
        model.classifier = nn.Linear(model.num_features, task.num_classes).to(task.device)
        head = model.classifier
        params = freeze_all_but(model, head.parameters())
        c2 = classifier_stage_config(cfg)
        counts = task.class_counts
        train2 = task.train_set(augment=c2.augment)
        if cfg.cls_meta_sampler:
            learner = SampleLearner(train2.labels, counts, cfg.meta_init_pow).to(task.device)
            sampler = MetaSampler(learner, len(train2), c2.batch_size)
            steps = sampler.num_batches
        else:
            steps = steps_per_epoch(len(train2), c2.batch_size)
        if cfg.cls_iterations:
            c2.epochs = epochs_for(cfg.cls_iterations, steps)
        task.records["balms"] = {"stage1_epochs": s1.epochs, "stage2_epochs": c2.epochs}

        if not cfg.cls_meta_sampler:

            def plain_step(x, y):
                return balanced_softmax_loss(head(frozen_features(model, x, bn)), y, counts)

            add_stage(task.records, "balms", train2, c2, loss="balanced softmax", frozen="backbone", bn=bn)
            Trainer(task, c2, "balms").fit({"model": model}, params, plain_step, train2)
            return model

        split = cfg.meta_split
        if split == "auto":
            split = "val" if "val" in task.info.splits else "train"
        meta_set = task.train_set(augment=True) if split == "train" else task.eval_set(split)
        meta = _Endless(meta_set, cfg.meta_batch_size or c2.batch_size, task.seed + 1)
        trainer = _MetaTrainer(task, c2, "balms", sampler)

        def meta_step(x, y):
            st = learner.pop()
            feats = frozen_features(model, x, bn)
            mx, my = next(meta)
            meta_feats = frozen_features(model, mx.to(task.device), bn)
            grad = meta_sampler_gradient(
                head, trainer.optimizer, learner, st, feats, y, meta_feats, my.to(task.device), counts
            )
            learner.adam_update(grad, cfg.meta_lr)
            return balanced_softmax_loss(head(feats), y, counts)

        add_stage(
            task.records,
            "balms",
            train2,
            c2,
            sampler="meta",
            loss="balanced softmax",
            frozen="backbone",
            bn=bn,
            meta_set={"split": split, "images": len(meta_set), "per_class": META_PER_CLASS},
        )
        trainer.fit({"model": model, "meta_sampler": learner}, params, meta_step, train2)
        rates = torch.sigmoid(learner.logits.detach()).cpu()
        task.records["balms"].update(
            meta_split=split, sample_rates=[round(float(r), 6) for r in rates]
        )  # unnormalised per-class sampling rates σ(w_c), as the official log
        return model
