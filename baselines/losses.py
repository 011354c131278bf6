"""Losses shared by several methods: small pure functions of (logits, targets, class counts).

- Balanced softmax / logit adjustment (BALMS, PaCo centres, TADE experts, DiVE): CE(z + τ·log π, y),
  π_c = n_c / N. Training only: evaluation uses raw logits.
- Label-aware smoothing and soft-target distillation live in :mod:`ltbench.losses` (shared with
  ``ltbench.candle``, so neither part imports the other) and are re-exported here.
- Label-aware smoothing (MiSLAS stage 2, CANDLE calibration): per-class ε_y between ε_head and ε_tail by
  the concave (sin) rule; loss = (1−ε_y)(−log p_y) + ε_y · mean_k(−log p_k) — the ε mass covers all K classes.
- Soft-target distillation (ReActNet, DiVE, CANDLE): KL(p_T ‖ p_S) with temperature, batch mean.
- mixup (MiSLAS stage 1): one λ ~ Beta(α, α) per batch; loss λ·CE(z, y_a) + (1−λ)·CE(z, y_b).
- Meta sampler pieces (BALMS): hard Gumbel-softmax with explicit noise (straight-through sample) and the
  sample-weighted loss mean_b Σ_i ℓ_b·onehot_bi·st_bi of ``data/MetaSampler.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ltbench.losses import kd_kl, las_epsilons, las_loss  # noqa: F401  (shared with candle; defined in core)


def log_prior(counts: Sequence[int], device=None, eps: float = 0.0) -> torch.Tensor:
    """log π_c with π_c = n_c / Σ n (``eps`` added inside the log, as PaCo's 1e-9)."""
    c = torch.as_tensor(list(counts), dtype=torch.float32, device=device)
    return torch.log(c / c.sum() + eps)


def balanced_softmax_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    counts: Sequence[int],
    tau: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Balanced Softmax (Ren et al. 2020) = logit-adjusted CE: CE(z + τ·log π, y)."""
    return F.cross_entropy(logits + tau * log_prior(counts, logits.device), targets, reduction=reduction)


def mixup_batch(
    images: torch.Tensor, targets: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """mixup (Zhang et al. 2018) as MiSLAS's ``mixup_data``: one λ ~ Beta(α, α) per batch (numpy's global RNG,
    λ = 1 when α ≤ 0), a random in-batch permutation; returns (mixed images, y_a, y_b, λ)."""
    lam = float(np.random.beta(alpha, alpha)) if alpha > 0 else 1.0
    index = torch.randperm(images.shape[0], device=images.device)
    return lam * images + (1 - lam) * images[index], targets, targets[index], lam


def mixup_loss(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: float, criterion=None):
    """λ·criterion(z, y_a) + (1 − λ)·criterion(z, y_b) (``criterion`` defaults to cross-entropy)."""
    criterion = criterion or F.cross_entropy
    return lam * criterion(logits, y_a) + (1 - lam) * criterion(logits, y_b)


def straight_through_gumbel(
    log_weights: torch.Tensor, gumbels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard Gumbel-softmax with explicit noise (τ = 1), as ``F.gumbel_softmax(hard=True)``.

    ``log_weights`` (..., N) are unnormalised log-probabilities, ``gumbels`` the Gumbel(0, 1) noise of the same
    shape. Returns the drawn index (argmax of log w + g) and the straight-through sample: one-hot in value,
    with the gradient of the soft sample softmax(log w + g).
    """
    soft = torch.softmax(log_weights + gumbels, dim=-1)
    index = soft.argmax(dim=-1)
    hard = F.one_hot(index, soft.shape[-1]).to(soft.dtype)
    return index, hard - soft.detach() + soft


def sample_weighted_loss(per_sample: torch.Tensor, st_sample: torch.Tensor) -> torch.Tensor:
    """BALMS's meta-sampler loss: mean_b Σ_i ℓ_b · onehot_bi · st_bi — equal in value to mean(ℓ), with
    gradients to the sampler's parameters through the straight-through sample ``st`` (B, N)."""
    x = per_sample.unsqueeze(-1) * st_sample.detach() * st_sample
    return x.sum(-1).mean()
