"""CANDLE's calibration stage (§3.1, §3.3, App. D): train the 1×1 convs and c^T of a ``MultiResTeacher``
on the LT train split, the pretrained encoder frozen (eval mode, no gradient, no BN re-estimation).

Recipe (A9, MiSLAS stage 2): class-aware sampling (4 per class, ⌊N/B⌋ batches), label-aware smoothing
(concave, MiSLAS's ε for the nearest dataset, default 0.3/0.0), SGD momentum 0.9, lr 0.1, cosine, 10 epochs.
No LWS, no BN shift, no mixup; c^T is new and randomly initialised (the pretrained model has none for the
target classes).

``cache_teacher=true``: a stage that runs without augmentation reads the frozen layers' pooled features
(``MultiResTeacher.pooled_maps``, R × C_enc floats per image) from a file under ``$LTBENCH_CACHE``
(default ``~/.cache/ltbench``)/``candle``, computed once per (split content, encoder, resolutions). The head
is linear, so training on the cache gives the same gradients as training on the maps.

``fit_calibrated_teacher(task, cfg)`` is also DiVE*'s teacher (the paper's protocol: the same calibrated
teacher), reached through ``ltbench.method_teacher.fit_teacher("candle", ...)`` and ``Candle.teacher``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from ltbench.candle.config import CandleConfig, las_epsilons_for
from ltbench.candle.teacher import (
    MultiResTeacher,
    default_teacher,
    encoder_channels,
    load_encoder,
    resolve_resolutions,
)
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ltbench.errors import LTBenchError
from ltbench.families import get_family
from ltbench.losses import las_epsilons, las_loss
from ltbench.method import Task, TrainConfig
from ltbench.metrics import summarize
from ltbench.progress import console
from ltbench.stage_records import add_stage
from ltbench.stage_store import save_atomic
from ltbench.trainer import Trainer
from ltbench.transforms import in_chans, mean_std


class FeatureSet(Dataset):
    """Cached pooled teacher features (N, R, C_enc) with labels, shaped like an image dataset."""

    def __init__(self, features: torch.Tensor, labels):
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.features[i], int(self.labels[i])


def teacher_name(cfg: CandleConfig, family: str) -> str:
    return default_teacher(family) if cfg.teacher == "auto" else cfg.teacher


def teacher_record(cfg: CandleConfig, family: str) -> dict[str, str]:
    """Which encoder and weights the teacher uses (``records["teacher"]``; the overlap flag reads it)."""
    rec = {"encoder": teacher_name(cfg, family)}
    return {**rec, "weights": cfg.teacher_weights} if cfg.teacher_weights else rec


def teacher_id(cfg: CandleConfig, family: str) -> str:
    """The encoder and its weights as one string (the feature cache's key): a checkpoint file by content."""
    from ltbench.backbones.pretrained import is_weights_file

    w = cfg.teacher_weights
    if w and is_weights_file(w):
        w = "sha256:" + hashlib.sha256(Path(w).read_bytes()).hexdigest()[:16]
    return teacher_name(cfg, family) + (f"@{w}" if w else "")


def base_resolution(task: Task) -> int:
    return int(task.input_size or 224)


def teacher_resolutions(cfg: CandleConfig, task: Task) -> tuple[int, ...]:
    """Multi-resolution for the ``cd+alb+mr`` variant, except on large sets unless ``multires_large``."""
    multires = cfg.multires and (get_family(task.family).multires or cfg.multires_large)
    return resolve_resolutions(task.family, base_resolution(task), cfg.resolutions, multires)


def build_teacher(
    task: Task, cfg: CandleConfig, width: int, encoder: nn.Module | None = None
) -> MultiResTeacher:
    """An uncalibrated teacher: the frozen encoder with fresh 1×1 convs and classifier (seeded by the run)."""
    res = teacher_resolutions(cfg, task)
    if encoder is None:
        encoder = load_encoder(teacher_name(cfg, task.family), task.device, task.info, cfg.teacher_weights)
    enc = encoder.to(task.device).eval()
    channels = encoder_channels(enc, in_chans(task.family), min(res), task.device)
    pre = getattr(enc, "preprocess", None)
    renorm = (*mean_std(task.family, task.input_size), pre.mean, pre.std) if pre is not None else None
    return MultiResTeacher(enc, channels, width, task.num_classes, res, base_resolution(task), renorm).to(
        task.device
    )


def fit_calibrated_teacher(
    task: Task,
    cfg: CandleConfig,
    width: int | None = None,
    encoder: nn.Module | None = None,
) -> MultiResTeacher:
    """Calibrate CANDLE's teacher on ``task``'s LT train split; returns it in eval mode.

    ``forward(x)`` gives logits for the student's input ``x``; ``forward_distill(x)`` gives (logits, e^T_B).
    ``width`` is the student's feature width (default: that of ``task.create_model()``); ``encoder``
    replaces the pretrained encoder (tests). Records ``teacher`` and ``teacher_calibration`` in
    ``task.records``.
    """
    cfg.check()
    if width is None:
        width = int(task.create_model().num_features)
    teacher = build_teacher(task, cfg, width, encoder)
    eps_head, eps_tail = las_epsilons_for(
        cfg, task.info.manifest.get("source", ""), task.info.manifest.get("profile", {}).get("ir")
    )
    eps = las_epsilons(task.class_counts, eps_head, eps_tail, cfg.las_kind).to(task.device)
    tcfg = TrainConfig(
        epochs=cfg.calib_epochs,
        batch_size=cfg.calib_batch_size,
        optimizer=cfg.calib_optimizer,
        lr=cfg.calib_lr,
        momentum=0.9,
        weight_decay=cfg.calib_weight_decay,
        schedule="cosine",
        sampler=cfg.calib_sampler,
        augment=cfg.calib_augment,
        log_every=cfg.log_every,
    )
    cached = cfg.cache_teacher and not cfg.calib_augment
    if cached:
        features = cached_pooled_features(teacher, task, teacher_id(cfg, task.family))
        dataset: Dataset = FeatureSet(features, task.train_set(augment=False).labels)

        def step(pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return las_loss(teacher.head_pooled(pooled)[0], labels, eps)
    else:
        dataset = task.train_set(augment=cfg.calib_augment)

        def step(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return las_loss(teacher.head(teacher.encoder_maps(images))[0], labels, eps)

    add_stage(
        task.records,
        "calibrate",
        dataset,
        tcfg,
        loss="LAS",
        frozen="teacher encoder",
        las_eps=[eps_head, eps_tail],
    )
    Trainer(task, tcfg, "calibrate").fit(
        {"proj": teacher.proj, "classifier": teacher.classifier}, teacher.head_parameters(), step, dataset
    )
    teacher.eval()
    task.records["teacher"] = {
        **(teacher_record(cfg, task.family) if encoder is None else {"encoder": type(encoder).__name__}),
        "resolutions": list(teacher.resolutions),
        "base": teacher.base,
        "las_eps": [eps_head, eps_tail],
        "cached_features": cached,
    }
    task.records["teacher_calibration"] = teacher_accuracy(teacher, task)
    return teacher


@torch.no_grad()
def teacher_logits(teacher: nn.Module, task: Task, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    teacher.eval()
    outs, labels = [], []
    for images, y in DataLoader(task.eval_set(split), batch_size=256, shuffle=False):
        outs.append(teacher(images.to(task.device)).float().cpu())
        labels.append(y)
    return torch.cat(outs), torch.cat(labels)


def teacher_accuracy(teacher: nn.Module, task: Task) -> dict[str, Any]:
    """The calibrated teacher's reference metrics (avg, top1, top5, macro_f1, head, medium, tail) on the test
    split, with the evaluator's grouping."""
    from ltbench.result_extras import REFERENCE_METRICS

    logits, labels = teacher_logits(teacher, task)
    m = summarize(labels.numpy(), logits.numpy(), task.class_counts, task.info.groups)
    return {k: m[k] for k in REFERENCE_METRICS}


def cache_dir() -> Path:
    return Path(os.environ.get("LTBENCH_CACHE", Path.home() / ".cache" / "ltbench")) / "candle"


def cache_key(task: Task, teacher: MultiResTeacher, encoder: str, split: str = "train") -> str:
    files = task.info.manifest.get("files", {})
    ident = {
        "split": task.info.name,
        "which": split,
        "files": {k: v for k, v in sorted(files.items()) if k.startswith(split)},
        "encoder": encoder,
        "resolutions": list(teacher.resolutions),
        "base": teacher.base,
        "input_size": task.input_size,
        "family": task.family,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


@torch.no_grad()
def cached_pooled_features(
    teacher: MultiResTeacher, task: Task, encoder: str, split: str = "train"
) -> torch.Tensor:
    """(N, R, C_enc) pooled frozen-layer features of the un-augmented ``split``, computed once and cached."""
    path = cache_dir() / f"{cache_key(task, teacher, encoder, split)}.pt"
    if path.exists():
        feats = torch.load(path, map_location=task.device, weights_only=True)
        console.log(f"teacher features from cache {path}")
        return feats
    dataset = task.train_set(augment=False, split=split)
    chunks = [
        teacher.pooled_maps(teacher.encoder_maps(images.to(task.device))).float()
        for images, _ in DataLoader(dataset, batch_size=128, shuffle=False)
    ]
    feats = torch.cat(chunks)
    try:
        save_atomic(feats.cpu(), path)
    except OSError as e:
        raise LTBenchError(
            f"cannot write the teacher cache {path}: {e}", "set LTBENCH_CACHE to a writable dir"
        ) from e
    return feats
