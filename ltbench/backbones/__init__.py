"""Backbones (registry ``BACKBONES``) with one interface.

Every backbone is an ``nn.Module`` with ``num_features``, ``forward_features(x) -> (B, num_features)`` (the
pooled feature that distillation and decoupled classifiers use), ``classifier`` (the final ``nn.Linear``, or a
module with the same call signature) and ``forward(x) = classifier(forward_features(x))``.
Registered factories take ``(num_classes, in_chans, **kwargs)``; the entry's meta says ``binary`` and the
native ``input_size``.
"""

from __future__ import annotations

from typing import Any

from ltbench.registry import BACKBONES


def create_backbone(name: str, num_classes: int, in_chans: int = 3, **kwargs: Any):
    """timm-style factory; ``None`` kwargs are dropped so unset options keep the builder's defaults."""
    factory = BACKBONES.get(name)
    return factory(
        num_classes=num_classes, in_chans=in_chans, **{k: v for k, v in kwargs.items() if v is not None}
    )


def is_binary(name: str) -> bool:
    return bool(BACKBONES.entry(name).meta.get("binary", False))
