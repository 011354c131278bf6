"""Data-parallel training under ``torchrun``: one code path for 1 process or N.

``ltbench run`` started by ``torchrun --nproc-per-node N`` sees ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` in the
environment; :func:`init_from_env` then joins the process group (NCCL on CUDA, gloo on CPU) and pins each
rank to ``cuda:LOCAL_RANK``. The trainer keeps every rank's modules identical without wrapping them (methods
call their own modules inside ``step`` closures, so a ``DistributedDataParallel`` wrapper would be
bypassed):

- the global batch (``cfg.batch_size``) is split evenly over ranks, each global batch the same one a single
  process would draw (:class:`ShardedBatches`), so N processes follow the single-process trajectory;
- after ``backward`` the gradients are averaged over ranks (:func:`all_reduce_grads`, coalesced buckets);
- before each step rank 0's buffers (BN running statistics) are broadcast, as DDP's ``broadcast_buffers``
  does, unless SyncBN is on (``cfg.sync_bn``; CUDA only).

Rank 0 alone logs, checkpoints and writes results; checkpoints must live on a file system every rank sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from ltbench.errors import LTBenchError


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); return this rank's device."""
    if env_world_size() <= 1 or is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise LTBenchError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices are visible",
                "use --nproc-per-node <= the number of GPUs",
            )
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return device


def shutdown() -> None:
    if is_initialized():
        dist.destroy_process_group()


class ShardedBatches:
    """Batches of one epoch for this rank: global batches of ``batch_size`` drawn from ``sampler``, each
    split into ``world`` contiguous equal parts (rank r takes part r). The last short batch is dropped
    (``drop_last``) or padded from the epoch's start to a multiple of ``world``, as DistributedSampler pads.
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool, rank: int = 0, world: int = 1):
        if batch_size % world:
            raise LTBenchError(
                f"batch size {batch_size} is not divisible by the {world} processes",
                f"use a batch size that is a multiple of {world} (it is the global batch)",
            )
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        idx = list(iter(self.sampler))
        for start in range(0, len(idx), self.batch_size):
            batch = idx[start : start + self.batch_size]
            if len(batch) < self.batch_size:
                if self.drop_last:
                    return
                pad = -len(batch) % self.world
                batch = batch + (idx * (pad // max(len(idx), 1) + 1))[:pad]
            part = len(batch) // self.world
            yield batch[self.rank * part : (self.rank + 1) * part]


def all_reduce_grads(params: Iterable[nn.Parameter], bucket_bytes: int = 25 * 2**20) -> None:
    """Average ``.grad`` over ranks in coalesced buckets (parameters without a gradient are skipped; every
    rank must have the same set)."""
    if not is_initialized() or world_size() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    buckets: list[list[torch.Tensor]] = []
    size = 0
    for g in grads:
        if not buckets or g.dtype != buckets[-1][0].dtype or size >= bucket_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append(g)
        size += g.numel() * g.element_size()
    w = world_size()
    for bucket in buckets:
        flat = torch.cat([b.reshape(-1) for b in bucket])
        dist.all_reduce(flat)
        flat /= w
        offset = 0
        for b in bucket:
            b.copy_(flat[offset : offset + b.numel()].view_as(b))
            offset += b.numel()


def broadcast_buffers(modules: Iterable[nn.Module]) -> None:
    """Copy rank 0's floating buffers (BN running statistics) to every rank."""
    if not is_initialized() or world_size() == 1:
        return
    for m in modules:
        for b in m.buffers():
            dist.broadcast(b, 0)


def broadcast_parameters(modules: Iterable[nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every rank (at the start of a stage)."""
    if not is_initialized() or world_size() == 1:
        return
    for m in modules:
        for t in [*m.parameters(), *m.buffers()]:
            dist.broadcast(t.data, 0)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not is_initialized() or world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
