"""Binary layers for BNNs: the sign binariser, RSign, RPReLU and the binary convolution.

Sign convention (shared with the packed XNOR kernels in ``ltbench.binary.kernels*``):
``sign(x) = +1 if x >= 0 else -1`` — so ``sign(0) = +1`` (also for −0.0 and NaN), and a packed bit is
``1 ⇔ −1`` (bit = ``x < 0``). This differs from ``torch.sign`` (which gives 0 at 0, as the official ReActNet
code uses), on purpose: a binary kernel has no zero.

- :func:`binary_sign` — forward ``sign(x)``; backward the derivative of Bi-Real's ApproxSign, the piecewise
  quadratic ``2 + 2x`` on [−1, 0), ``2 − 2x`` on [0, 1), 0 elsewhere (ReActNet ``BinaryActivation``).
- :class:`RSign` — ReActNet's learnable per-channel threshold: ``sign(x + b)`` (``LearnableBias`` + sign).
- :class:`RPReLU` — ``PReLU(x + γ) + ζ`` with per-channel γ, ζ and slope (PReLU init 0.25).
- :class:`BinaryConv2d` — ReActNet's ``HardBinaryConv``: latent real weight ``W``; forward uses
  ``α ⊙ sign(W)`` with ``α_o = mean|W_o|`` over (Cin, k, k), **detached**; backward is the gradient of
  ``clamp(W, −1, 1)`` (clipped STE). Init ``U(0, 1) · 1e-3`` as the official code.

For packers: a :class:`BinaryConv2d` exposes ``weight`` (latent, (O, I, k, k)), :meth:`sign_weight` (±1),
:meth:`scale` (α, shape (O,)), ``stride``, ``padding``, ``kernel_size``, ``in_channels``, ``out_channels``;
its output equals ``conv2d(input, sign_weight) * α[:, None, None]`` with zero padding. Its input is
produced by an :class:`RSign` (values ±1), so zero-padded borders contribute 0 — a packed kernel must treat
padding as 0, not as ±1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sign(x: torch.Tensor) -> torch.Tensor:
    """``+1`` where ``x >= 0`` (and at NaN), ``-1`` where ``x < 0``; no gradient."""
    return torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))


class _ApproxSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (2.0 - 2.0 * x.abs()).clamp_(min=0.0)


def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) (sign(0)=+1) with the ApproxSign gradient ``max(0, 2 − 2|x|)``."""
    return _ApproxSign.apply(x)


class _WeightSTE(torch.autograd.Function):
    """Forward ``α·sign(W)``; backward the clipped STE: grad · 1[|W| ≤ 1] (the gradient of clamp)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w)
        return sign(w) * alpha

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (w,) = ctx.saved_tensors
        return grad * (w.abs() <= 1).to(grad.dtype), None


class RSign(nn.Module):
    """``sign(x + bias)`` with a learnable per-channel ``bias`` (init 0) and the ApproxSign gradient."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binary_sign(x + self.bias)


class RPReLU(nn.Module):
    """``prelu(x + bias_in) + bias_out``: per-channel shifts (init 0) around a per-channel PReLU (0.25)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias_in = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.prelu = nn.PReLU(channels, init=0.25)
        self.bias_out = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prelu(x + self.bias_in) + self.bias_out


class BinaryConv2d(nn.Module):
    """ReActNet's binary convolution (no bias). See the module docstring for forward/backward.

    ``binary_weights=False`` keeps real weights (ReActNet's step 1: binary activations, FP weights, a plain
    convolution of the same latent tensor), so step 2 can start from step 1's weights without renaming.
    ``scaled=False`` drops α (sign weights only, for backbones whose BN absorbs the scale).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        binary_weights: bool = True,
        scaled: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.binary_weights = binary_weights
        self.scaled = scaled
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.rand(shape) * 1e-3)

    def scale(self) -> torch.Tensor:
        """α: mean |W| per output channel, shape (O,), detached (ones when ``scaled=False``)."""
        w = self.weight.detach()
        if not self.scaled:
            return torch.ones(w.shape[0], dtype=w.dtype, device=w.device)
        return w.abs().mean(dim=(1, 2, 3))

    def sign_weight(self) -> torch.Tensor:
        """The ±1 weights (sign(0) = +1), shape (O, I, k, k)."""
        return sign(self.weight.detach())

    def effective_weight(self) -> torch.Tensor:
        """The weight the convolution uses (α·sign(W) with the clipped-STE gradient, or W itself)."""
        if not self.binary_weights:
            return self.weight
        return _WeightSTE.apply(self.weight, self.scale().view(-1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.effective_weight()
        return F.conv2d(x, w.to(x.dtype), stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, binary_weights={self.binary_weights}, scaled={self.scaled}"
        )


def count_ops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
    """Per-image MACs of one forward of ``model`` on zeros of ``input_shape`` (batch 1), counted as the
    BNN papers do: ``bops`` = MACs of :class:`BinaryConv2d` with binary weights, ``flops`` = MACs of every
    other ``nn.Conv2d``/``nn.Linear`` (BN, activations and pooling are not counted), ``ops = bops/64 + flops``.
    """
    counts = {"bops": 0.0, "flops": 0.0}

    def hook(module: nn.Module, inputs, output) -> None:
        if isinstance(module, BinaryConv2d):
            macs = output.numel() * module.in_channels * module.kernel_size**2
            counts["bops" if module.binary_weights else "flops"] += macs
        elif isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            counts["flops"] += output.numel() * module.in_channels // module.groups * k
        elif isinstance(module, nn.Linear):
            counts["flops"] += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (BinaryConv2d, nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(input_shape, dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {**counts, "ops": counts["bops"] / 64 + counts["flops"]}
