"""Pretrained full-precision teachers for distillation methods (CANDLE, DiVE).

- :func:`digits_teacher` — the offline stand-in for ImageNet weights: a :class:`~ltbench.backbones.cnn.SmallCNN`
  trained on the digits ``pretrain`` split (30 images per class, balanced, disjoint from test and LT train).
  Trained once, deterministically, and cached under ``$LTBENCH_CACHE/teachers`` (default
  ``~/.cache/ltbench/teachers``) in a file keyed by a hash of the pretrain pixels, labels and the recipe; callers
  that race for an uncached teacher wait on one lock while the first trains it.
- :func:`pretrained_encoder` — ``resnet152`` (torchvision ImageNet-1K weights) or ``efficientnetv2-m-in21k``
  (timm ImageNet-21k weights), or ``digits``; frozen, in eval mode, with ``forward_feature_map``,
  ``num_features`` and ``preprocess`` (resolution, mean/std the weights expect).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ltbench.backbones.cnn import SmallCNN
from ltbench.backbones.pretrained import Preprocess
from ltbench.data import SplitInfo
from ltbench.stage_store import claim, save_atomic

#: The digits teacher's training recipe (part of the cache key).
DIGITS_TEACHER_RECIPE = {
    "width": 32,
    "epochs": 30,
    "batch_size": 50,
    "lr": 0.005,
    "weight_decay": 5e-4,
    "optimizer": "adam",
    "schedule": "cosine",
    "augment": "affine10-0.1-0.9:1.1",
    "seed": 0,
    # torch's intra-op threads change the summation order, and 30 epochs turn that into different weights
    # (0.1 apart): the teacher trains on one thread whoever calls, so a demo worker and a run on every core
    # cache the same model
    "threads": 1,
}
DIGITS_PREPROCESS = Preprocess(8, 8, (0.5,), (0.5,))


def cache_dir() -> Path:
    """``$LTBENCH_CACHE/teachers``, default ``~/.cache/ltbench/teachers``."""
    return Path(os.environ.get("LTBENCH_CACHE", "~/.cache/ltbench")).expanduser() / "teachers"


def digits_pretrain(info: SplitInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """The digits ``pretrain`` split of a built digits split as (uint8 (N, 1, 8, 8), int64 (N,))."""
    from ltbench.data import ImageSplit

    ds = ImageSplit(info, "pretrain", None, mode="L")
    images = torch.stack([ds[i][0] for i in range(len(ds))])
    return images, torch.as_tensor(ds.labels)


def _key(images: torch.Tensor, labels: torch.Tensor) -> str:
    h = hashlib.sha256(images.numpy().tobytes())
    h.update(labels.numpy().astype(np.int64).tobytes())
    h.update(json.dumps(DIGITS_TEACHER_RECIPE, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _train_digits(images: torch.Tensor, labels: torch.Tensor) -> SmallCNN:
    from ltbench.transforms import train_transform

    r = DIGITS_TEACHER_RECIPE
    gen_state, threads = torch.get_rng_state(), torch.get_num_threads()
    torch.manual_seed(r["seed"])
    torch.set_num_threads(r["threads"])
    try:
        model = SmallCNN(int(labels.max()) + 1, 1, r["width"])
        opt = torch.optim.Adam(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
        steps = r["epochs"] * (len(labels) // r["batch_size"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        tf = train_transform("digits", 8, augment=True)
        model.train()
        for _ in range(r["epochs"]):
            perm = torch.randperm(len(labels))
            for i in range(len(labels) // r["batch_size"]):
                idx = perm[i * r["batch_size"] : (i + 1) * r["batch_size"]]
                x = torch.stack([tf(images[j]) for j in idx.tolist()])
                loss = F.cross_entropy(model(x), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    finally:
        torch.set_rng_state(gen_state)
        torch.set_num_threads(threads)
    return model


def digits_teacher(info: SplitInfo, device: torch.device | str | None = None) -> SmallCNN:
    """A SmallCNN (10-way head) pretrained on the digits ``pretrain`` split; cached after its first training.

    Inputs are digits normalised as ``eval_transform("digits")`` (``preprocess`` says so). Returned in eval
    mode; the caller decides what to freeze."""
    images, labels = digits_pretrain(info)
    path = cache_dir() / f"digits-smallcnn-{_key(images, labels)}.pt"
    model = SmallCNN(int(labels.max()) + 1, 1, DIGITS_TEACHER_RECIPE["width"])
    # concurrent callers (demo workers, parallel runs): one trains, the others wait and load its file
    with claim(path):
        if path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            model = _train_digits(images, labels)
            save_atomic(model.state_dict(), path)
    model.preprocess = DIGITS_PREPROCESS
    model.cache_path = path
    return model.eval().to(device or "cpu")


ENCODERS = ("resnet152", "efficientnetv2-m-in21k", "digits")


def pretrained_encoder(
    name: str,
    device: torch.device | str | None = None,
    weights: str | None = None,
    info: SplitInfo | None = None,
) -> nn.Module:
    """A frozen pretrained encoder with ``forward_feature_map(x) -> (B, C, h, w)``, ``num_features`` and
    ``preprocess``. ``weights``: ``IMAGENET1K_V1`` (default) / ``IMAGENET1K_V2`` for resnet152, ``in21k`` for
    EfficientNetV2-M, or a local file (``weights_only`` load)."""
    from ltbench.backbones import create_backbone
    from ltbench.backbones.pretrained import WEIGHTS, is_weights_file
    from ltbench.errors import LTBenchError

    if name == "digits":
        if weights:
            raise LTBenchError(
                "the digits teacher takes no weights: it is trained here on the digits pretrain split",
                "drop --teacher-weights, or choose teacher=resnet152 or efficientnetv2-m-in21k",
            )
        if info is None:
            raise LTBenchError(
                "the digits teacher needs a built digits split (it trains on its pretrain images)",
                "pass info=open_split('digits-lt10', data_root)",
            )
        model = digits_teacher(info, device)
    elif name == "resnet152":
        w = weights or "IMAGENET1K_V1"
        model = create_backbone(name, 1000, 3, weights=w)
        model.preprocess = WEIGHTS["IMAGENET1K_V1"].preprocess if is_weights_file(w) else model.preprocess
    elif name == "efficientnetv2-m-in21k":
        w = weights or "in21k"
        model = create_backbone(name, 1000, 3, weights=w)
        model.preprocess = WEIGHTS["in21k"].preprocess
    else:
        raise LTBenchError(f"unknown teacher encoder {name!r}", f"choose one of {', '.join(ENCODERS)}")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(device or "cpu")
