"""Samplers used by LT methods; all seeded and deterministic, with one epoch's worth of indices per pass.

- ``instance``: every image once per epoch, shuffled.
- ``class_aware``: classifier-balancing's ClassAwareSampler — cycle over a reshuffled class list; each class
  visit emits ``per_class`` (4) consecutive items from that class's own reshuffled cycle. An epoch is
  ⌊N/B⌋ batches, N the LT train size, as the official training loops stop it.
- ``sqrt``: classes drawn with probability ∝ sqrt(n_c), an image uniformly within the class.
Each sampler re-seeds from (seed, epoch), so epoch e draws the same indices whether or not the run resumed.
Distributed variants: every rank draws the same epoch order and :class:`ltbench.distributed.ShardedBatches`
gives rank r its equal contiguous part of each global batch (the Trainer does this for every sampler).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

SAMPLERS = ("instance", "class_aware", "sqrt")


class _Seeded(Sampler[int]):
    def __init__(self, labels: np.ndarray, seed: int, length: int):
        self.labels = np.asarray(labels, dtype=np.int64)
        self.seed = seed
        self.length = length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self) -> np.random.RandomState:
        return np.random.RandomState((self.seed * 100_003 + self.epoch) % 2**32)

    def __len__(self) -> int:
        return self.length

    def indices(self) -> np.ndarray:
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())


class InstanceSampler(_Seeded):
    def __init__(self, labels, seed: int):
        super().__init__(labels, seed, len(labels))

    def indices(self) -> np.ndarray:
        return self.rng().permutation(len(self.labels))


class ClassAwareSampler(_Seeded):
    def __init__(self, labels, seed: int, length: int, per_class: int = 4):
        super().__init__(labels, seed, length)
        self.per_class = per_class
        self.by_class = [np.where(self.labels == c)[0] for c in range(int(self.labels.max()) + 1)]
        self.classes = np.array([c for c, idx in enumerate(self.by_class) if len(idx)])

    def indices(self) -> np.ndarray:
        rng = self.rng()
        class_cycle, ci = rng.permutation(self.classes), 0
        item_cycles = {c: rng.permutation(self.by_class[c]) for c in self.classes}
        pos = dict.fromkeys(self.classes.tolist(), 0)
        out = []
        while len(out) < self.length:
            if ci == len(class_cycle):
                class_cycle, ci = rng.permutation(self.classes), 0
            c = int(class_cycle[ci])
            ci += 1
            for _ in range(self.per_class):
                if pos[c] == len(item_cycles[c]):
                    item_cycles[c], pos[c] = rng.permutation(self.by_class[c]), 0
                out.append(item_cycles[c][pos[c]])
                pos[c] += 1
        return np.asarray(out[: self.length])


class SqrtSampler(_Seeded):
    def __init__(self, labels, seed: int, length: int | None = None):
        super().__init__(labels, seed, length or len(labels))
        counts = np.bincount(self.labels)
        self.by_class = [np.where(self.labels == c)[0] for c in range(len(counts))]
        p = np.sqrt(counts.astype(np.float64))
        self.p = p / p.sum()

    def indices(self) -> np.ndarray:
        rng = self.rng()
        classes = rng.choice(len(self.p), size=self.length, p=self.p)
        return np.array([rng.choice(self.by_class[c]) for c in classes], dtype=np.int64)


def make_sampler(name: str, labels, seed: int, batch_size: int, per_class: int = 4) -> _Seeded:
    n = len(labels)
    if name == "instance":
        return InstanceSampler(labels, seed)
    if name == "class_aware":
        return ClassAwareSampler(labels, seed, max(n // batch_size, 1) * batch_size, per_class)
    if name == "sqrt":
        return SqrtSampler(labels, seed)
    raise ValueError(f"unknown sampler {name!r}; choose from {SAMPLERS}")
