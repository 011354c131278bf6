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

from collections.abc import Sequence

import torch
from torch import nn

from ltbench.binary.layers import BinaryConv2d, RPReLU, RSign, count_ops
from ltbench.registry import BACKBONES

#: Output width of the stem (index 0) and of the 13 blocks, ``width=1``.
STAGE_CHANNELS = (32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
#: 1-based blocks with stride 2 in the official layout (where the width doubles, except 32 → 64).
OFFICIAL_STRIDE2 = (2, 4, 6, 12)
#: 1-based stride-2 blocks of ``reactnet-a-tiny`` (8×8 input, stem stride 1).
TINY_STRIDE2 = (6, 12)


class Stem(nn.Module):
    """Full-precision stem: ``bn(conv3x3(x))`` (no activation; the first block's RSign follows)."""

    def __init__(self, in_chans: int, out_chans: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class ReActBlock(nn.Module):
    """One ReActNet-A block, ``Cin → Cout`` with ``Cout ∈ {Cin, 2·Cin}``. Forward::

        h = rprelu1(bn1(conv3x3(rsign1(x))) + shortcut_pool(x))   # 3×3 binary conv Cin→Cin, stride s;
                                                                  # shortcut_pool = AvgPool2d(2) if s == 2
        g = rsign2(h)
        out = rprelu2(cat([bn2[i](conv1x1[i](g)) + h for i in range(Cout // Cin)], dim=1))

    ``conv1x1`` holds one binary 1×1 conv Cin→Cin, or two (the duplicated down-sampling convs whose outputs
    are concatenated to 2·Cin; a packer may fuse them as one GEMM with N = 2·Cin). Every conv's input is the
    ±1 output of the preceding RSign; all BNs, RPReLUs and the shortcut stay full precision.
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1, binary_weights: bool = True):
        super().__init__()
        if out_chans not in (in_chans, 2 * in_chans):
            raise ValueError(f"ReActBlock needs out_chans in (in, 2·in), got {in_chans}→{out_chans}")
        self.in_chans, self.out_chans, self.stride = in_chans, out_chans, stride
        self.rsign1 = RSign(in_chans)
        self.conv3x3 = BinaryConv2d(in_chans, in_chans, 3, stride, 1, binary_weights)
        self.bn1 = nn.BatchNorm2d(in_chans)
        self.shortcut_pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.rprelu1 = RPReLU(in_chans)
        self.rsign2 = RSign(in_chans)
        n = out_chans // in_chans
        self.conv1x1 = nn.ModuleList(
            BinaryConv2d(in_chans, in_chans, 1, 1, 0, binary_weights) for _ in range(n)
        )
        self.bn2 = nn.ModuleList(nn.BatchNorm2d(in_chans) for _ in range(n))
        self.rprelu2 = RPReLU(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv3x3(self.rsign1(x))) + self.shortcut_pool(x)
        h = self.rprelu1(h)
        g = self.rsign2(h)
        outs = [bn(conv(g)) + h for conv, bn in zip(self.conv1x1, self.bn2, strict=True)]
        return self.rprelu2(outs[0] if len(outs) == 1 else torch.cat(outs, dim=1))


class ReActNetA(nn.Module):
    """ReActNet-A. ``width`` scales every channel count (32·width must be an integer);
    ``stem_stride`` is 2 in the paper; ``stride2_blocks`` lists the 1-based blocks with stride 2;
    ``binary_weights=False`` is ReActNet's step 1 (binary activations, real weights)."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width: float = 1.0,
        stem_stride: int = 2,
        stride2_blocks: Sequence[int] = OFFICIAL_STRIDE2,
        binary_weights: bool = True,
    ):
        super().__init__()
        if not (32 * width).is_integer() or width <= 0:
            raise ValueError(f"width {width} must make 32·width a positive integer")
        ch = [int(c * width) for c in STAGE_CHANNELS]
        self.stem = Stem(in_chans, ch[0], stem_stride)
        self.blocks = nn.ModuleList(
            ReActBlock(ch[i - 1], ch[i], 2 if i in stride2_blocks else 1, binary_weights)
            for i in range(1, len(ch))
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = ch[-1]
        self.classifier = nn.Linear(ch[-1], num_classes)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_feature_map(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def ops(self, input_size: int = 224, in_chans: int | None = None) -> dict[str, float]:
        """``{"bops", "flops", "ops"}`` per image as the paper counts: binary MACs, FP MACs of the stem and
        classifier, and ``bops / 64 + flops``."""
        c = in_chans if in_chans is not None else self.stem.conv.in_channels
        return count_ops(self, (1, c, input_size, input_size))


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
