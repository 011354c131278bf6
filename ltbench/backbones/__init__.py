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
    """timm-style factory; ``None`` kwargs are dropped so unset options keep the builder's defaults.
    ``weights=PATH`` (a local file) is loaded after construction for any backbone (``weights_only=True``)."""
    from ltbench.backbones.pretrained import is_weights_file, load_weights_file

    factory = BACKBONES.get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    path = kwargs.pop("weights") if is_weights_file(kwargs.get("weights", "")) else None
    model = factory(num_classes=num_classes, in_chans=in_chans, **kwargs)
    if path is not None:
        load_weights_file(model, path, {"fc.": "classifier."})
    return model


def is_binary(name: str) -> bool:
    return bool(BACKBONES.entry(name).meta.get("binary", False))
