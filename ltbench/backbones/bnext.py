"""BNext-Tiny (Guo et al., "Join the High Accuracy Club on ImageNet with a Binary Neural Network Ticket",
2022), after the official ``hpi-xnor/BNext`` ``src/bnext.py`` (size "tiny", ELM-Attention and
Information-Recoupling on).

Layout: FP stem (3×3 conv 3→32, stride 2, BN) → 13 :class:`BNextBlock` with ReActNet-A's widths and stride-2
blocks (2, 4, 6, 12; 1-based) → PReLU → global pool → FP linear. Block i's 3×3 part is an
:class:`ELMAttention` when i is even, a :class:`FFN3x3` when odd (block 1 always FFN3x3); its 1×1 part is one
:class:`FFN1x1` (Cin→Cin) or two concatenated (Cin→2·Cin).

Gaps from the official code, stated honestly:
- **Weights binary from the start.** The official ``HardBinaryConv``/``HardSign`` use ``clamp(w / T, −1, 1)``
  with a temperature T annealed by ×0.9 per epoch from 1 (weights only reach ±1 late in training). Here the
  forward is always ``sign`` (T → 0; the packed kernels need ±1); :func:`set_temperature` exists for a method
  that wants the official anneal (T > 0 gives the soft clamp in training, sign in eval).
- sign(0) = +1 (official: ``torch.sign``); no α scaling (as official: the following BN absorbs it).
- Parameters the official code registers but never uses (the stem's PReLU, the FFNs' ``activation1``) are
  left out; the official ImageNet recipe (multi-teacher KD, AdamW, RandAugment) is not reproduced here.
- Gradients: activations pass ``1[|x| ≤ 1.5]`` (gradient of clamp to ±1.5); weights are clamped in place to
  ±1.5 each training forward and pass the gradient unchanged, as the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.backbones.reactnet import OFFICIAL_STRIDE2, STAGE_CHANNELS, Stem
from ltbench.binary.layers import BinaryConv2d, sign
from ltbench.registry import BACKBONES


class _HardSignFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, t: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return sign(x) if t <= 1e-7 else (x / t).clamp(-1, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1.5).to(grad.dtype), None


class HardSign(nn.Module):
    """``sign(x + bias)`` (learnable per-channel bias, BNext's ``move`` + ``HardSign``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.temperature = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.temperature if self.training else 0.0
        return _HardSignFn.apply(x + self.bias, t)


class _IdentitySTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w: torch.Tensor, t: float) -> torch.Tensor:
        return sign(w) if t <= 1e-7 else (w / t).clamp(-1, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


class BNextBinaryConv(BinaryConv2d):
    """Binary conv without α (``scaled=False``): ``conv(x, sign(W))``; weights clamped to ±1.5 in training."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride, kernel_size // 2, True, False)
        nn.init.normal_(self.weight, std=1e-3)
        self.temperature = 0.0

    def effective_weight(self) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.weight.clamp_(-1.5, 1.5)
        return _IdentitySTE.apply(self.weight, self.temperature if self.training else 0.0)


class SqueezeExpand(nn.Module):
    """``sigmoid(conv1x1(relu(conv1x1(avgpool(x)))))`` with reduction 8 (biases on)."""

    def __init__(self, channels: int, planes: int, ratio: int = 8):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // ratio, 1)
        self.expand = nn.Conv2d(channels // ratio, planes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.expand(F.relu(self.reduce(F.adaptive_avg_pool2d(x, 1)))))


class _Recoupled(nn.Module):
    """Shared parts: ``x = prelu2(norm1(conv(hardsign(input))))``, then information recoupling
    ``x = se(scale·input' + (1−scale)·x) · x`` (``input'`` pooled when strided, ``scale`` clamped to [0, 1])."""

    def __init__(self, cin: int, cout: int, k: int, stride: int):
        super().__init__()
        self.stride = stride
        self.hardsign = HardSign(cin)
        self.conv = BNextBinaryConv(cin, cout, k, stride)
        self.norm1 = nn.BatchNorm2d(cout)
        self.norm2 = nn.BatchNorm2d(cout)
        self.prelu2 = nn.PReLU(cout)
        self.pool = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.se = SqueezeExpand(cin, cout)
        self.scale = nn.Parameter(torch.full((1, cout, 1, 1), 0.5))

    def binary_branch(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.prelu2(self.norm1(self.conv(self.hardsign(inp))))
        if self.training:
            with torch.no_grad():
                self.scale.clamp_(0, 1)
        mix = self.scale * self.pool(inp) + (1 - self.scale) * x
        return self.se(mix) * x


class ELMAttention(_Recoupled):
    """ELM-Attention (3×3): ``r = pool(prelu1(input)); out = norm2(recoupled(input) · r) + r``."""

    def __init__(self, cin: int, stride: int):
        super().__init__(cin, cin, 3, stride)
        self.prelu1 = nn.PReLU(cin)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        r = self.pool(self.prelu1(inp))
        return self.norm2(self.binary_branch(inp) * r) + r


class FFN3x3(_Recoupled):
    """3×3 FFN: ``out = norm2(recoupled(input)) + pool(input)``."""

    def __init__(self, cin: int, stride: int):
        super().__init__(cin, cin, 3, stride)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.binary_branch(inp)) + self.pool(inp)


class FFN1x1(_Recoupled):
    """1×1 FFN (Cin→Cin): ``out = norm2(recoupled(input)) + input``."""

    def __init__(self, cin: int):
        super().__init__(cin, cin, 1, 1)

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        return self.norm2(self.binary_branch(inp)) + inp


class BNextBlock(nn.Module):
    """``x = mixer(input)`` (ELMAttention or FFN3x3); ``out = cat([ffn(x) for ffn in ffn1x1])`` (1 or 2)."""

    def __init__(self, cin: int, cout: int, stride: int, attention: bool):
        super().__init__()
        if cout not in (cin, 2 * cin):
            raise ValueError(f"BNextBlock needs cout in (cin, 2·cin), got {cin}→{cout}")
        self.mixer = ELMAttention(cin, stride) if attention else FFN3x3(cin, stride)
        self.ffn1x1 = nn.ModuleList(FFN1x1(cin) for _ in range(cout // cin))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.mixer(inp)
        outs = [f(x) for f in self.ffn1x1]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


class BNext(nn.Module):
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width: float = 1.0, stem_stride: int = 2):
        super().__init__()
        ch = [int(c * width) for c in STAGE_CHANNELS]
        self.stem = Stem(in_chans, ch[0], stem_stride)
        self.blocks = nn.ModuleList(
            BNextBlock(ch[i - 1], ch[i], 2 if i in OFFICIAL_STRIDE2 else 1, i != 1 and i % 2 == 0)
            for i in range(1, len(ch))
        )
        self.prelu = nn.PReLU(ch[-1])
        self.num_features = ch[-1]
        self.classifier = nn.Linear(ch[-1], num_classes)

    def forward_feature_map(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.prelu(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_feature_map(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def set_temperature(model: nn.Module, t: float) -> None:
    """Set the soft-binarisation temperature of every BNext sign and conv (0 = hard sign, the default)."""
    for m in model.modules():
        if isinstance(m, (HardSign, BNextBinaryConv)):
            m.temperature = float(t)


@BACKBONES.register(
    "bnext-tiny",
    binary=True,
    input_size=224,
    description="BNext-Tiny (Guo et al. 2022): ELM-Attention + information recoupling; hard sign from the start",
)
def bnext_tiny(num_classes: int, in_chans: int = 3, width: float = 1.0, stem_stride: int = 2) -> BNext:
    return BNext(num_classes, in_chans, width, stem_stride)
