"""ReActNet-A (Liu et al., ECCV 2020): the binary MobileNet-V1 layout of the official ``reactnet.py``.

Layout (``width=1``, 224 input): FP stem (3×3 conv 3→32, stride 2, BN, no activation) → 13 :class:`ReActBlock`
with output widths 64, 128, 128, 256, 256, 512×6, 1024, 1024 and stride 2 in blocks 2, 4, 6, 12 (1-based)
→ global average pool (the 1024-d ``forward_features``) → FP ``nn.Linear`` classifier. 7×7 final map at 224.
OPs as the paper counts them (binary MACs / 64 + FP MACs of stem and classifier): 0.87e8 at 224 (:meth:`ops`).

Differences from the official code, all deliberate and documented:
- sign(0) = +1 (the official uses ``torch.sign``, 0 at 0) — the packed kernels have no zero.
- Module names are our own (``stem``, ``blocks.i.rsign1`` …); :func:`convert_official_state_dict` maps an
  official checkpoint (step 1 4-D ``weight`` or step 2 flat ``weights``) onto them, strictly.
- Train and eval compute the same function (the official multiplies α after the conv only in eval).

``reactnet-a-tiny`` is this same code at ``width=0.25`` (channels 8 … 256) with ``stem_stride=1`` and stride 2
only in blocks 6 and 12, so digits' 8×8 one-channel images run natively: blocks 1–5 at 8×8, 6–11 at 4×4,
12–13 at 2×2 → 256-d feature. (Keeping the official stride-2 blocks 2 and 4 leaves 2×2 maps from block 4
on and learns far worse on digits: 55 % vs 94 % avg in a 30-epoch probe.)
"""

from __future__ import annotations

import torch

from ltbench.binary.reactnet import (  # noqa: F401 (re-exported: the model lives below binary and backbones)
    OFFICIAL_STRIDE2,
    STAGE_CHANNELS,
    TINY_STRIDE2,
    ReActBlock,
    ReActNetA,
    Stem,
)
from ltbench.registry import BACKBONES

_OFFICIAL_NAMES = {
    "move11.bias": "rsign1.bias",
    "move12.bias": "rprelu1.bias_in",
    "prelu1.weight": "rprelu1.prelu.weight",
    "move13.bias": "rprelu1.bias_out",
    "move21.bias": "rsign2.bias",
    "move22.bias": "rprelu2.bias_in",
    "prelu2.weight": "rprelu2.prelu.weight",
    "move23.bias": "rprelu2.bias_out",
}
_OFFICIAL_CONVS = {
    "binary_3x3": "conv3x3",
    "binary_pw": "conv1x1.0",
    "binary_pw_down1": "conv1x1.0",
    "binary_pw_down2": "conv1x1.1",
}
_OFFICIAL_BNS = {"bn1": "bn1", "bn2": "bn2.0", "bn2_1": "bn2.0", "bn2_2": "bn2.1"}


def convert_official_state_dict(
    official: dict[str, torch.Tensor], model: ReActNetA
) -> dict[str, torch.Tensor]:
    """Map an official ``reactnet`` state dict (``module.`` prefix optional; step 1's 4-D ``weight`` or
    step 2's flat ``weights``) onto our names and shapes. Load the result with ``strict=True``."""
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in official.items():
        key = key.removeprefix("module.")
        parts = key.split(".")
        if parts[0] == "fc":
            name = "classifier." + parts[1]
        elif parts[0] == "feature" and parts[1] == "0":
            sub = {"conv1": "stem.conv", "bn1": "stem.bn"}[parts[2]]
            name = f"{sub}.{'.'.join(parts[3:])}"
        elif parts[0] == "feature":
            i, rest = int(parts[1]) - 1, ".".join(parts[2:])
            if rest in _OFFICIAL_NAMES:
                name = _OFFICIAL_NAMES[rest]
            elif parts[2] in _OFFICIAL_CONVS:
                name = _OFFICIAL_CONVS[parts[2]] + ".weight"
            elif parts[2] in _OFFICIAL_BNS:
                name = f"{_OFFICIAL_BNS[parts[2]]}.{'.'.join(parts[3:])}"
            else:
                raise KeyError(f"unexpected key in an official ReActNet state dict: {key}")
            name = f"blocks.{i}.{name}"
        else:
            raise KeyError(f"unexpected key in an official ReActNet state dict: {key}")
        if name not in own:
            raise KeyError(f"{key} maps to {name}, which this model does not have")
        if value.numel() != own[name].numel():
            raise ValueError(f"{key}: {tuple(value.shape)} does not fit {name} {tuple(own[name].shape)}")
        out[name] = value.reshape(own[name].shape)
    return out


@BACKBONES.register(
    "reactnet-a",
    binary=True,
    input_size=224,
    description="ReActNet-A, binary MobileNet-V1 layout (Liu et al. 2020); 0.87e8 OPs at 224",
)
def reactnet_a(
    num_classes: int,
    in_chans: int = 3,
    width: float = 1.0,
    stem_stride: int = 2,
    binary_weights: bool = True,
) -> ReActNetA:
    return ReActNetA(num_classes, in_chans, width, stem_stride, OFFICIAL_STRIDE2, binary_weights)


@BACKBONES.register(
    "reactnet-a-tiny",
    binary=True,
    input_size=8,
    description="ReActNet-A at width 0.25, stem stride 1, stride 2 in blocks 6, 12: 8x8 digits natively",
)
def reactnet_a_tiny(
    num_classes: int,
    in_chans: int = 1,
    width: float = 0.25,
    stem_stride: int = 1,
    binary_weights: bool = True,
) -> ReActNetA:
    return ReActNetA(num_classes, in_chans, width, stem_stride, TINY_STRIDE2, binary_weights)
