"""Bit-packing (pure torch, no kernel needed): bit 1 ⇔ −1, computed as ``x < 0`` so −0.0 and NaN give +1.

Activations are NHWC with each pixel's channels packed LSB-first into ``ceil(C/64)`` 64-bit words (stored as
``torch.int64``). Weights are OHWI-packed once (``taps × ceil(Cin/64)`` words per output channel), with the
per-output-channel scale α = mean|W| and the per-(channel, tap) sums of sign(W) that make spatial zero-padding
exact, and re-laid into panels of 32 output channels for the CPU microkernel (``[P][K words][32]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

WORD = 64
PANEL = 32


def n_words(c: int, word: int = WORD) -> int:
    return (c + word - 1) // word


def pack_bits(x: torch.Tensor, word: int = WORD) -> torch.Tensor:
    """Pack the last dim of ``x`` into words (bit j of word i = ``x[..., word*i + j] < 0``); int64 or int32."""
    c = x.shape[-1]
    nw = n_words(c, word)
    bits = (x < 0).to(torch.int64)
    bits = torch.nn.functional.pad(bits, (0, nw * word - c)).reshape(*x.shape[:-1], nw, word)
    weights = torch.ones(word, dtype=torch.int64).bitwise_left_shift(torch.arange(word))
    packed = (bits * weights).sum(-1)  # distinct powers of two: no carries, wraps to the sign bit at 2**63
    if word == 32:
        packed = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
    return packed


def unpack_bits(words: torch.Tensor, c: int, word: int = WORD) -> torch.Tensor:
    """Inverse of :func:`pack_bits` as ±1 float32 (bit 1 → −1)."""
    shifts = torch.arange(word, dtype=torch.int64)
    bits = (words.to(torch.int64).unsqueeze(-1).bitwise_right_shift(shifts)) & 1
    bits = bits.reshape(*words.shape[:-1], -1)[..., :c]
    return 1.0 - 2.0 * bits.to(torch.float32)


def sign_pm1(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1 (and NaN, −0.0 → +1), matching the packed bit."""
    return torch.where(x < 0, -1.0, 1.0).to(x.dtype if x.is_floating_point() else torch.float32)


@dataclass
class PackedConv:
    """A binary convolution's weights, packed once. ``panels``: ``[ceil(N/32), taps*cw, 32]`` int64 words;
    ``rows``: ``[N, taps*cw]`` OHWI words (GPU layout source); ``tapsum``: ``[N, taps]`` int32 = Σ_c sign(w);
    ``alpha``: ``[N]`` float32 = mean|W| per output channel."""

    panels: torch.Tensor
    rows: torch.Tensor
    tapsum: torch.Tensor
    alpha: torch.Tensor
    n: int
    c: int
    kh: int
    kw: int
    stride: int = 1
    pad: int = 0

    @property
    def k(self) -> int:
        return self.c * self.kh * self.kw

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        return (
            (h + 2 * self.pad - self.kh) // self.stride + 1,
            (w + 2 * self.pad - self.kw) // self.stride + 1,
        )

    def state(self) -> dict[str, torch.Tensor | int]:
        return {
            "panels": self.panels,
            "rows": self.rows,
            "tapsum": self.tapsum,
            "alpha": self.alpha,
            **{k: getattr(self, k) for k in ("n", "c", "kh", "kw", "stride", "pad")},
        }


def panelize(rows: torch.Tensor, panel: int = PANEL) -> torch.Tensor:
    """``[N, K words]`` → ``[ceil(N/panel), K words, panel]`` (missing output channels are zero words)."""
    n, kwords = rows.shape
    p = (n + panel - 1) // panel
    padded = torch.zeros(p * panel, kwords, dtype=rows.dtype)
    padded[:n] = rows
    return padded.reshape(p, panel, kwords).transpose(1, 2).contiguous()


def pack_conv(weight: torch.Tensor, stride: int = 1, pad: int = 0) -> PackedConv:
    """Pack a float conv weight ``[N, Cin, kh, kw]`` (sign(0) = +1) with α = mean|W| per output channel."""
    w = weight.detach().float().cpu()
    n, c, kh, kw = w.shape
    ohwi = w.permute(0, 2, 3, 1).contiguous()  # [N, kh, kw, Cin]
    rows = pack_bits(ohwi).reshape(n, kh * kw * n_words(c))
    tapsum = (c - 2 * (ohwi < 0).sum(-1)).reshape(n, kh * kw).to(torch.int32)
    alpha = w.abs().mean(dim=(1, 2, 3))
    return PackedConv(panelize(rows), rows, tapsum.contiguous(), alpha, n, c, kh, kw, stride, pad)


def pack_linear(weight: torch.Tensor) -> PackedConv:
    """A ``[N, K]`` binary GEMM weight as a 1×1 convolution."""
    return pack_conv(weight[:, :, None, None])
