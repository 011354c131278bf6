"""Shared stages: a training stage that several methods run identically is trained once and loaded by the others.

The official classifier-balancing code trains its joint-CE stage 1 once and starts cRT, LWS and τ-norm from
that one checkpoint; ltbench's decoupled methods (and BALMS where its stage 1 is the same) do the same through a
store of finished stages, ``<results>/.stages/<key>.ckpt``. The key is a digest of everything the stage's weights
depend on: the code (every source file of ltbench, baselines and candle), torch's version, the device and thread
count, the split's manifest, the backbone and its arguments, the seed, the stage name, its full ``TrainConfig``,
its loss and data view, and the python/numpy/torch RNG states when the stage starts (model initialisation draws
from them). Same key, same stage: a run that loads it ends with the weights, optimizer state, history and RNG
state an uninterrupted run would have (the Trainer re-seeds after every stage), so sharing never changes a result.

While one process trains a keyed stage it holds ``<key>.lock`` (``flock``); another process with the same key
waits, then loads. Off under ``torchrun`` (ranks would wait on each other) and with ``--no-share-stages``.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

STORE_DIR = ".stages"  # under the results directory
SOURCE_SUFFIXES = (".py", ".c", ".h", ".cu", ".cuh", ".cpp")
PACKAGES = ("ltbench", "ltbench.baselines", "ltbench.candle")  # whose code a stage runs


@functools.cache
def code_fingerprint() -> str:
    """sha256 over the source files of the packages whose code a stage runs (relative path and bytes)."""
    h = hashlib.sha256()
    for name in PACKAGES:  # located, not imported (the core imports no method code)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        root = Path(list(spec.submodule_search_locations)[0])
        for f in sorted(p for p in root.rglob("*") if p.suffix in SOURCE_SUFFIXES):
            h.update(f"{name}/{f.relative_to(root).as_posix()}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def rng_digest() -> str:
    """sha256 of the python, numpy and torch (CPU and, where initialised, CUDA) RNG states now."""
    h = hashlib.sha256()
    h.update(repr(random.getstate()).encode())
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    h.update(f"{kind}{pos}{has_gauss}{gauss}".encode())
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(torch.random.get_rng_state().numpy().tobytes())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for s in torch.cuda.get_rng_state_all():
            h.update(s.numpy().tobytes())
    return h.hexdigest()


def stage_key(task: Any, stage: str, config: dict[str, Any], **what: Any) -> str:
    """The key of ``stage`` of ``task`` under ``config`` (a ``TrainConfig`` as a dict) and ``what`` (its loss,
    data view, ...): call it just before the stage creates its model, so the RNG states are the stage's own."""
    parts = {
        "code": code_fingerprint(),
        "torch": torch.__version__,
        "device": str(task.device),
        "threads": torch.get_num_threads(),
        "manifest": hashlib.sha256(json.dumps(task.info.manifest, sort_keys=True).encode()).hexdigest(),
        "split": task.info.name,
        "backbone": task.backbone,
        "backbone_kwargs": task.backbone_kwargs,
        "seed": task.seed,
        "stage": stage,
        "config": config,
        "what": what,
        "rng": rng_digest(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()[:32]


def shared_path(task: Any, key: str | None) -> Path | None:
    """Where the finished stage ``key`` lives, or None when the task does not share stages."""
    if key is None or task.stage_store is None:
        return None
    return Path(task.stage_store) / f"{key}.ckpt"


@contextmanager
def claim(path: Path | None) -> Iterator[None]:
    """Hold ``path``'s lock for the block (no-op for None): one process trains a keyed stage, the others wait."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def save_atomic(obj: object, dst: Path) -> None:
    """``torch.save(obj, dst)`` through a temporary file beside it, so that readers see all of it or nothing."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, dst)


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy a checkpoint (into the store, or from it into a run dir) so that readers see all of it or nothing."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
