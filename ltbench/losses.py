"""Losses that both ``ltbench.baselines`` and ``ltbench.candle`` use, in the core so that neither part imports
the other (``ltbench.baselines.losses`` re-exports them with the rest).

- Label-aware smoothing (MiSLAS stage 2, CANDLE calibration): per-class ε_y between ε_head and ε_tail by the
  concave (sin) rule (dvlab-research/MiSLAS ``methods.py``); loss = (1−ε_y)(−log p_y) + ε_y · mean_k(−log p_k).
- Soft-target distillation (ReActNet, DiVE, CANDLE): KL(p_T ‖ p_S) with temperature, batch mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def las_epsilons(
    counts: Sequence[int], eps_head: float, eps_tail: float, kind: str = "concave"
) -> torch.Tensor:
    """MiSLAS's per-class smoothing ε_c from train counts (``concave`` default; ``linear``, ``convex``)."""
    n = torch.as_tensor(list(counts), dtype=torch.float64)
    n_min, n_max = n.min(), n.max()
    r = (n - n_min) / (n_max - n_min) if n_max > n_min else torch.ones_like(n)
    if kind == "concave":
        f = torch.sin(r * math.pi / 2)
    elif kind == "linear":
        f = r
    elif kind == "convex":
        f = 1 - torch.cos(r * math.pi / 2)
    else:
        raise ValueError(f"unknown LAS kind {kind!r}")
    return (eps_tail + (eps_head - eps_tail) * f).float()


def las_loss(logits: torch.Tensor, targets: torch.Tensor, epsilons: torch.Tensor) -> torch.Tensor:
    """Label-aware smoothing CE with per-class ε (``las_epsilons``), batch mean."""
    logp = F.log_softmax(logits, dim=1)
    eps = epsilons.to(logits.device)[targets]
    nll = -logp.gather(1, targets[:, None]).squeeze(1)
    smooth = -logp.mean(dim=1)
    return ((1 - eps) * nll + eps * smooth).mean()


def kd_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)); teacher detached. ``reduction='none'`` gives one value per sample."""
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    pt = F.softmax(teacher_logits.detach() / temperature, dim=1)
    kl = F.kl_div(log_ps, pt, reduction="none").sum(1)
    return kl.mean() if reduction == "batchmean" else kl
