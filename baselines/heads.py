"""Classifier heads of the decoupled methods; each replaces ``model.classifier`` so ``model(x)`` keeps working.

- :class:`LearnableWeightScaling`: one scale s_c per class (init 1) multiplying the logits — LWS (Kang et al.,
  ``models/TauNormClassifier.py``, misnamed there) and MiSLAS (``methods.LearnableWeightScaling``).
- :class:`ScaledLinear`: logits = s ⊙ (W x + b), the bias scaled too; ``freeze_linear`` for LWS (the stage-1
  fc is kept and frozen), trainable for MiSLAS (the classifier continues training beside s).
- :class:`TauNormLinear`: τ-normalised weights w_c / ‖w_c‖^τ, **no bias** (Kang et al. ``tau_norm.py``).
"""

from __future__ import annotations

import torch
from torch import nn


class LearnableWeightScaling(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.scales = nn.Parameter(torch.ones(num_classes))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * self.scales


class ScaledLinear(nn.Module):
    """``lws(fc(x))``: a linear classifier followed by per-class scales (bias included in what is scaled)."""

    def __init__(self, fc: nn.Linear, freeze_linear: bool):
        super().__init__()
        self.fc = fc
        self.lws = LearnableWeightScaling(fc.out_features)
        for p in self.fc.parameters():
            p.requires_grad_(not freeze_linear)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.lws(self.fc(features))


def tau_normalize(weight: torch.Tensor, tau: float) -> torch.Tensor:
    """w_c / ‖w_c‖₂^τ per row (class) — τ = 0 leaves W unchanged, τ = 1 gives unit-norm rows."""
    return weight / weight.norm(dim=1, keepdim=True).pow(tau)


class TauNormLinear(nn.Module):
    """Post-hoc τ-normalised classifier: logits = x · (w_c/‖w_c‖^τ)ᵀ; the stage-1 bias is dropped."""

    def __init__(self, weight: torch.Tensor, tau: float):
        super().__init__()
        self.tau = float(tau)
        self.register_buffer("weight", tau_normalize(weight.detach(), self.tau))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight.t()
