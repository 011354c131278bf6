"""ReActNet-A's modules (stem, block, network): the model that both the backbone registry
(:mod:`ltbench.backbones.reactnet`, which registers ``reactnet-a`` and ``reactnet-a-tiny``) and the packer
(:mod:`ltbench.binary.packed`) use. It lives here, below both, so ``binary`` never imports ``backbones``.
See :mod:`ltbench.backbones.reactnet` for the layout and the deliberate differences from the official code.

In training mode on CPU each :class:`ReActBlock` runs as one fused autograd node
(:mod:`ltbench.binary.fused`: XNOR-popcount forward, hand-written backward) where that is exact; set
``fused = False`` on a block, or call :func:`ltbench.binary.fused.set_fused`, for the op-by-op float path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ltbench.binary import fused as _fused
from ltbench.binary.layers import BinaryConv2d, RPReLU, RSign, count_ops

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
        #: training on CPU runs the block as one fused autograd node where exact (ltbench.binary.fused)
        self.fused = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _fused.can_fuse(self, x):
            return _fused.block_forward(self, x)
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
