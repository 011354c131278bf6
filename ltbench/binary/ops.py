"""``torch.library`` custom ops over the XNOR kernels (opaque to ``torch.compile``, dispatched by device),
and the direct CPU entry points that skip the dispatcher in eager code.

All take and return NHWC tensors; packed words are ``torch.int64`` (the C kernel reads them as uint64).
The CPU implementations call the plain-C kernel (:mod:`ltbench.binary.kernels.cpu`); the CUDA
implementations are registered by :mod:`ltbench.binary.kernels.cuda` when its extension builds.

A custom-op call costs ≈ 20 µs of Python and dispatch, which is most of a small layer's time. Eager CPU code
(packed inference, the fused training block) therefore calls :class:`ConvPlan` — a C argument block built once
per layer, in which only the per-call pointers and sizes change — and :func:`sign_pack_direct`; under
``torch.compile`` (``torch.compiler.is_compiling()``) or on CUDA the custom ops are used.
"""

from __future__ import annotations

import ctypes

import torch

from ltbench.binary.kernels import cpu as _cpu
from ltbench.binary.pack import n_words
from ltbench.errors import LTBenchError


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _threads() -> int:
    return torch.get_num_threads() if _cpu.has_openmp() else 1


def _isa() -> int:
    return _cpu.ISAS[_cpu.current_isa()]


def _out_hw(h: int, w: int, kh: int, kw: int, stride: int, pad: int) -> tuple[int, int]:
    return (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1


@torch.library.custom_op("ltbench::sign_pack", mutates_args=())
def sign_pack(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Pack the last dim of float32 ``x`` (+ ``bias`` per channel) into int64 words: bit = value < 0."""
    return sign_pack_direct(x, bias)


def sign_pack_direct(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`sign_pack` without the dispatcher (CPU, eager)."""
    x = x.contiguous().float()
    c = x.shape[-1]
    out = torch.empty(*x.shape[:-1], n_words(c), dtype=torch.int64)
    b = None if bias is None else bias.contiguous().float()
    rc = _cpu.lib().xnor_pack(_ptr(x), x.numel() // c, c, _ptr(b), _ptr(out), n_words(c), _threads(), _isa())
    _cpu.check_rc(rc, "sign_pack")
    return out


def _cl(t: torch.Tensor) -> torch.Tensor:
    """Float32 NCHW ``t`` in channels-last memory (a no-op when it already is)."""
    return t.float().contiguous(memory_format=torch.channels_last)


def pm1_direct(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``sign(x + bias)`` as ±1 float32 (sign(0) = +1, as the packed bit), for NCHW ``x``; the result is
    channels-last. One C pass (``torch.where`` on a bool mask costs ~10× more on CPU)."""
    x = _cl(x)
    out = torch.empty_like(x)
    b, c = _c(bias), x.shape[1]  # kept in a local: a copy must outlive the call
    rc = _cpu.lib().xnor_pm1(_ptr(x), x.numel() // c, c, _ptr(b), _ptr(out), _threads(), _isa())
    _cpu.check_rc(rc, "pm1")
    return out


def approxsign_backward_direct(
    g: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None = None, add: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ApproxSign gradient at ``u = x + bias`` (NCHW): ``add + g · clamp(2 − 2|u|, min=0)`` (channels-last;
    ``add`` is the gradient already flowing into ``x`` by another path, or none) and the per-channel sum of the
    ApproxSign term (the gradient of ``bias``), in one C pass."""
    g, x = _cl(g), _cl(x)
    c = x.shape[1]
    out, csum, b = torch.empty_like(x), torch.empty(c), _c(bias)
    ad = None if add is None else _cl(add)
    rc = _cpu.lib().xnor_approxsign_backward(
        _ptr(g), _ptr(x), x.numel() // c, c, _ptr(b), _ptr(ad), _ptr(out), _ptr(csum), _threads(), _isa()
    )
    _cpu.check_rc(rc, "approxsign_backward")
    return out, csum


def prelu_bn_backward_direct(
    g: torch.Tensor,
    t: torch.Tensor,
    slope: torch.Tensor,
    y: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    gamma: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The backward of ``out = prelu(t, slope) + b2`` with ``t = bn(y) + shortcut + b1`` (training BatchNorm with
    batch ``mean`` and ``invstd``), for NCHW ``g``/``t``/``y``, in two C passes: the gradient of ``t`` (which is
    also the shortcut's), the BN input gradient (``native_batch_norm_backward``'s training formula), both
    channels-last, and the gradients of ``b2``, ``b1``, ``slope``, the BN weight and the BN bias."""
    g, t, y = _cl(g), _cl(t), _cl(y)
    c = t.shape[1]
    gt, gy, sums = torch.empty_like(t), torch.empty_like(t), torch.empty(4, c)
    vecs = [_c(v.reshape(-1)) for v in (slope, mean, invstd, gamma)]  # kept: copies must outlive the call
    sl, mu, inv, ga = vecs
    rc = _cpu.lib().xnor_prelu_bn_backward(
        _ptr(g), _ptr(t), _ptr(sl), _ptr(y), _ptr(mu), _ptr(inv), _ptr(ga), t.numel() // c, c, _ptr(gt), _ptr(gy),
        _ptr(sums), _threads(), _isa(),
    )  # fmt: skip
    _cpu.check_rc(rc, "prelu_bn_backward")
    return gt, gy, sums[0], sums[1], sums[2], sums[3], sums[1].clone()  # own tensors: each becomes a .grad


def weff_direct(w: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``α_o · sign(W)`` (sign(0) = +1) of latent OIHW ``w``, channels-last (the float conv's weight in the
    fused backward), in one C pass."""
    w = w.detach().contiguous().float()
    o, i, kh, kw = w.shape
    out = torch.empty(o, kh, kw, i).permute(0, 3, 1, 2)  # OIHW shape, channels-last memory
    a = _c(alpha)
    _cpu.check_rc(_cpu.lib().xnor_weff(_ptr(w), o, i, kh * kw, _ptr(a), _ptr(out), _isa()), "weff")
    return out


def ste_weight_grad_direct(g_weff: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The latent weights' clipped STE: ``g_weff · 1[|W| ≤ 1]``, from the float conv's weight gradient
    (channels-last) into ``w``'s contiguous OIHW layout (what autograd accumulates without a copy)."""
    g_weff = g_weff.float().contiguous(memory_format=torch.channels_last)
    w = w.detach().contiguous().float()
    o, i, kh, kw = w.shape
    out = torch.empty_like(w)
    rc = _cpu.lib().xnor_ste_weight_grad(_ptr(g_weff), _ptr(w), o, i, kh * kw, _ptr(out), _isa())
    _cpu.check_rc(rc, "ste_weight_grad")
    return out


def bn_act_train_direct(
    y: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    momentum: float,
    eps: float,
    res: torch.Tensor,
    b1: torch.Tensor,
    slope: torch.Tensor,
    b2: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training-mode BatchNorm of NCHW ``y`` followed by the block's residual and RPReLU, in one C call (three
    passes over the channels-last ``[pixels, C]`` view): ``t = bn(y) + res + b1`` (``res`` has ``C`` or
    ``C/n`` channels; channel ``c`` adds ``res[c % res_c]``, the concatenated shortcut) and
    ``h = prelu(t, slope) + b2``, both channels-last, with the batch mean and ``1/sqrt(var + eps)``; the
    running statistics (contiguous float32, updated in place) as ``nn.BatchNorm2d`` updates them."""
    y, res = _cl(y), _cl(res)
    c, res_c = y.shape[1], res.shape[1]
    if res.shape[0] != y.shape[0] or res.shape[2:] != y.shape[2:] or c % res_c:
        raise ValueError(
            f"bn_act_train_direct: residual {tuple(res.shape)} does not fit output {tuple(y.shape)}"
        )
    if (
        running_mean.dtype != torch.float32
        or not running_mean.is_contiguous()
        or not running_var.is_contiguous()
    ):
        raise ValueError("bn_act_train_direct updates contiguous float32 running statistics in place")
    t, h, mean, invstd = torch.empty_like(y), torch.empty_like(y), torch.empty(c), torch.empty(c)
    vecs = [_c(v.reshape(-1)) for v in (gamma, beta, b1, slope, b2)]  # kept: copies must outlive the call
    g, be, bb1, sl, bb2 = vecs
    rc = _cpu.lib().xnor_bn_act_train(
        _ptr(y), y.numel() // c, c, _ptr(g), _ptr(be), _ptr(running_mean), _ptr(running_var), momentum, eps,
        _ptr(res), res_c, _ptr(bb1), _ptr(sl), _ptr(bb2), _ptr(mean), _ptr(invstd), _ptr(t), _ptr(h),
        _threads(), _isa(),
    )  # fmt: skip
    _cpu.check_rc(rc, "bn_act_train")
    return t, h, mean, invstd


def conv_backward_amx_direct(
    g_y: torch.Tensor,
    x: torch.Tensor,
    bias: torch.Tensor | None,
    w: torch.Tensor,
    alpha: torch.Tensor,
    stride: int,
    pad: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float gradients of ``y = conv2d(sign(x + bias), α_o·sign(W), stride, pad)`` (sign(0) = +1) at
    ``g_y``, on AMX-BF16 (``xnor_amx.h``; call where :func:`~ltbench.binary.kernels.cpu.amx_available`): the
    gradient w.r.t. the ±1 input (NCHW shape, channels-last memory) — what ``aten.convolution_backward`` gives
    on the ±1 tensors, to float32 rounding — and the latent weights' clipped-STE gradient in ``w``'s contiguous
    OIHW layout (the gradient w.r.t. ``α·sign(W)`` where ``|W| ≤ 1``, else 0; as
    :func:`ste_weight_grad_direct` gives it)."""
    g_y, x = _cl(g_y), _cl(x)
    w = w.detach().contiguous().float()
    o, c, k, _ = w.shape
    b, _, h, wd = x.shape
    ho, wo = g_y.shape[2], g_y.shape[3]
    g_x, g_w = torch.empty_like(x), torch.empty_like(w)
    bs, a = _c(bias), _c(alpha)
    rc = _cpu.lib().xnor_amx_conv_backward(
        _ptr(g_y), _ptr(x), _ptr(bs), _ptr(w), _ptr(a), b, h, wd, c, o, k, stride, pad, ho, wo,
        _ptr(g_x), _ptr(g_w), _threads(),
    )  # fmt: skip
    if rc == -3:
        raise LTBenchError(
            "conv_backward_amx_direct: this CPU (or kernel) lacks AMX-BF16", "use the float route"
        )
    if rc == -2:
        raise MemoryError("conv_backward_amx_direct: the AMX scratch buffers could not be allocated")
    _cpu.check_rc(rc, "amx_conv_backward")
    return g_x, g_w


def pack_weights(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float OIHW ``w`` → CPU panels ``[ceil(N/32), taps·cw, 32]`` int64, ``tapsum`` ``[N, taps]`` int32 and
    α = mean |W| per output channel ``[N]`` (summed in double) in one C pass (the same words as
    :func:`ltbench.binary.pack.pack_conv`; for training, where W changes per step)."""
    w = w.detach().contiguous().float()
    n, c, kh, kw = w.shape
    taps = kh * kw
    panels = torch.empty((n + _cpu.PANEL - 1) // _cpu.PANEL, taps * n_words(c), _cpu.PANEL, dtype=torch.int64)
    tapsum, alpha = torch.empty(n, taps, dtype=torch.int32), torch.empty(n)
    rc = _cpu.lib().xnor_pack_weights(_ptr(w), n, c, taps, _ptr(panels), _ptr(tapsum), _ptr(alpha))
    _cpu.check_rc(rc, "pack_weights")
    return panels, tapsum, alpha


@sign_pack.register_fake
def _(x, bias=None):
    return x.new_empty(*x.shape[:-1], n_words(x.shape[-1]), dtype=torch.int64)


def _conv_call(
    x_bits: torch.Tensor,
    panels: torch.Tensor,
    tapsum: torch.Tensor | None,
    c: int,
    n: int,
    kh: int,
    kw: int,
    stride: int,
    pad: int,
    *,
    out_int: torch.Tensor | None = None,
    out_f: torch.Tensor | None = None,
    out_bits: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    shift: torch.Tensor | None = None,
    res: torch.Tensor | None = None,
    res_pool: bool = False,
    rp: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    next_bias: torch.Tensor | None = None,
) -> None:
    b, h, w, cw = x_bits.shape
    ho, wo = _out_hw(h, w, kh, kw, stride, pad)
    if panels.shape[1] != kh * kw * cw or cw != n_words(c):
        raise ValueError(f"packed weight has {panels.shape[1]} words per row, input needs {kh * kw * cw}")
    keep = [x_bits, panels, tapsum, scale, shift, res, next_bias, *(rp or ())]
    a = _cpu.ConvArgs(
        x=_ptr(x_bits), B=b, H=h, W=w, cw=cw, C=c, w=_ptr(panels), tapsum=_ptr(tapsum),
        N=n, kh=kh, kw=kw, stride=stride, pad=pad, Ho=ho, Wo=wo, scale=_ptr(scale), shift=_ptr(shift),
        res=_ptr(res), res_c=0 if res is None else res.shape[-1], res_h=0 if res is None else res.shape[1],
        res_w=0 if res is None else res.shape[2], res_pool=int(res_pool),
        rp_b1=_ptr(rp[0]) if rp else None, rp_slope=_ptr(rp[1]) if rp else None,
        rp_b2=_ptr(rp[2]) if rp else None, next_bias=_ptr(next_bias), out_int=_ptr(out_int),
        out_f=_ptr(out_f), out_bits=_ptr(out_bits), nthreads=_threads(), isa=_isa(),
    )  # fmt: skip
    rc = _cpu.lib().xnor_conv(ctypes.byref(a))
    del keep
    _cpu.check_rc(rc, "xnor_conv")


def _c(t: torch.Tensor | None, dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
    return None if t is None else t.contiguous().to(dtype)


@torch.library.custom_op("ltbench::xnor_conv", mutates_args=())
def xnor_conv(
    x_bits: torch.Tensor,
    panels: torch.Tensor,
    tapsum: torch.Tensor,
    c: int,
    n: int,
    kh: int,
    kw: int,
    stride: int,
    pad: int,
) -> torch.Tensor:
    """Integer binary convolution: packed NHWC input → int32 ``[B, Ho, Wo, N]`` of Σ ±1·±1 (zero padding)."""
    b, h, w, _ = x_bits.shape
    ho, wo = _out_hw(h, w, kh, kw, stride, pad)
    out = torch.empty(b, ho, wo, n, dtype=torch.int32)
    _conv_call(
        x_bits.contiguous(), panels.contiguous(), _c(tapsum, torch.int32), c, n, kh, kw, stride, pad,
        out_int=out,
    )  # fmt: skip
    return out


@xnor_conv.register_fake
def _(x_bits, panels, tapsum, c, n, kh, kw, stride, pad):
    b, h, w, _ = x_bits.shape
    ho, wo = _out_hw(h, w, kh, kw, stride, pad)
    return x_bits.new_empty(b, ho, wo, n, dtype=torch.int32)


@torch.library.custom_op("ltbench::xnor_gemm", mutates_args=())
def xnor_gemm(a_bits: torch.Tensor, panels: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Integer binary GEMM: ``a_bits`` ``[M, ceil(K/64)]`` × panelled weight → int32 ``[M, N]``."""
    m = a_bits.shape[0]
    out = torch.empty(m, n, dtype=torch.int32)
    x = a_bits.contiguous().reshape(1, m, 1, -1)
    _conv_call(x, panels.contiguous(), None, k, n, 1, 1, 1, 0, out_int=out)
    return out


@xnor_gemm.register_fake
def _(a_bits, panels, k, n):
    return a_bits.new_empty(a_bits.shape[0], n, dtype=torch.int32)


def _fused_into(x_bits, panels, tapsum, scale, shift, res, rp_b1, rp_slope, rp_b2, next_bias, c, n, kh, kw,
                stride, pad, res_pool, out, bits) -> None:  # fmt: skip
    """The fused conv of both ops, written into ``out`` and ``bits`` (no bits when ``bits`` has 0 words)."""
    rp = None if rp_slope is None else (_c(rp_b1), _c(rp_slope), _c(rp_b2))
    _conv_call(
        x_bits.contiguous(), panels.contiguous(), _c(tapsum, torch.int32), c, n, kh, kw, stride, pad,
        out_f=out, out_bits=bits if bits.shape[-1] else None, scale=_c(scale), shift=_c(shift), res=_c(res),
        res_pool=res_pool, rp=rp, next_bias=_c(next_bias),
    )  # fmt: skip


@torch.library.custom_op("ltbench::xnor_conv_fused", mutates_args=())
def xnor_conv_fused(
    x_bits: torch.Tensor,
    panels: torch.Tensor,
    tapsum: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    res: torch.Tensor | None,
    rp_b1: torch.Tensor | None,
    rp_slope: torch.Tensor | None,
    rp_b2: torch.Tensor | None,
    next_bias: torch.Tensor | None,
    c: int,
    n: int,
    kh: int,
    kw: int,
    stride: int,
    pad: int,
    res_pool: bool,
    want_bits: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary conv + fused epilogue: ``y = scale·dot + shift (+ residual, 2×2-pooled if res_pool)``, then
    RPReLU (``rp_*``) ; returns float32 ``y`` NHWC and the packed bits of ``y + next_bias`` (empty if not
    ``want_bits``)."""
    b, h, w, _ = x_bits.shape
    ho, wo = _out_hw(h, w, kh, kw, stride, pad)
    out = torch.empty(b, ho, wo, n, dtype=torch.float32)
    bits = torch.empty(b, ho, wo, n_words(n) if want_bits else 0, dtype=torch.int64)
    _fused_into(x_bits, panels, tapsum, scale, shift, res, rp_b1, rp_slope, rp_b2, next_bias, c, n, kh, kw,
                stride, pad, res_pool, out, bits)  # fmt: skip
    return out, bits


@xnor_conv_fused.register_fake
def _(x_bits, panels, tapsum, scale, shift, res, rp_b1, rp_slope, rp_b2, next_bias, c, n, kh, kw, stride, pad,
      res_pool, want_bits):  # fmt: skip
    b, h, w, _ = x_bits.shape
    ho, wo = _out_hw(h, w, kh, kw, stride, pad)
    nb = n_words(n) if want_bits else 0
    return x_bits.new_empty(b, ho, wo, n, dtype=torch.float32), x_bits.new_empty(
        b, ho, wo, nb, dtype=torch.int64
    )


@torch.library.custom_op("ltbench::xnor_conv_fused_out", mutates_args=("out", "bits"))
def xnor_conv_fused_out(
    x_bits: torch.Tensor,
    panels: torch.Tensor,
    tapsum: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    res: torch.Tensor | None,
    rp_b1: torch.Tensor | None,
    rp_slope: torch.Tensor | None,
    rp_b2: torch.Tensor | None,
    next_bias: torch.Tensor | None,
    c: int,
    n: int,
    kh: int,
    kw: int,
    stride: int,
    pad: int,
    res_pool: bool,
    out: torch.Tensor,
    bits: torch.Tensor,
) -> None:
    """:func:`xnor_conv_fused` writing into preallocated ``out`` and ``bits`` (``bits`` with 0 words per
    pixel: not wanted). Lets a caller reuse buffers: fresh multi-MB allocations page-fault on every call."""
    if not (out.is_contiguous() and bits.is_contiguous()):
        raise ValueError("out and bits must be contiguous")
    _fused_into(x_bits, panels, tapsum, scale, shift, res, rp_b1, rp_slope, rp_b2, next_bias, c, n, kh, kw,
                stride, pad, res_pool, out, bits)  # fmt: skip


class ConvPlan:
    """One fused binary conv layer on the CPU kernel, called without the dispatcher: the C argument block is
    built once (weights, epilogue vectors, shape checks) and each call sets only the input, residual and output
    pointers and the spatial size. Same arguments and result as :func:`xnor_conv_fused_out`."""

    def __init__(
        self,
        panels: torch.Tensor,
        tapsum: torch.Tensor,
        c: int,
        n: int,
        kh: int,
        kw: int,
        stride: int,
        pad: int,
        scale: torch.Tensor | None = None,
        shift: torch.Tensor | None = None,
        rp: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
        next_bias: torch.Tensor | None = None,
        res_pool: bool = False,
    ):
        if panels.shape[1] != kh * kw * n_words(c):
            raise ValueError(
                f"packed weight has {panels.shape[1]} words per row, input needs {kh * kw * n_words(c)}"
            )
        f32 = [None if t is None else t.detach().contiguous().float() for t in (scale, shift, next_bias)]
        rpc = None if rp is None else tuple(t.detach().contiguous().float() for t in rp)
        self.tensors = (panels.contiguous(), _c(tapsum, torch.int32), *f32, *(rpc or ()))
        self.kh, self.kw, self.stride, self.pad, self.c, self.n = kh, kw, stride, pad, c, n
        self.args = _cpu.ConvArgs(
            w=_ptr(self.tensors[0]), tapsum=_ptr(self.tensors[1]), cw=n_words(c), C=c, N=n, kh=kh, kw=kw,
            stride=stride, pad=pad, scale=_ptr(f32[0]), shift=_ptr(f32[1]), next_bias=_ptr(f32[2]),
            rp_b1=_ptr(rpc[0]) if rpc else None, rp_slope=_ptr(rpc[1]) if rpc else None,
            rp_b2=_ptr(rpc[2]) if rpc else None, res_pool=int(res_pool),
        )  # fmt: skip
        self._ref = ctypes.byref(self.args)
        self._fn = _cpu.lib().xnor_conv

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        return _out_hw(h, w, self.kh, self.kw, self.stride, self.pad)

    def __call__(
        self,
        x_bits: torch.Tensor,
        res: torch.Tensor | None,
        out_f: torch.Tensor | None,
        out_bits: torch.Tensor | None,
        out_int: torch.Tensor | None = None,
    ) -> None:
        """Run on contiguous CPU tensors: ``x_bits`` ``[B, H, W, cw]`` int64, ``res`` NHWC float32 (or None);
        writes ``out_f`` ``[B, Ho, Wo, N]`` float32, ``out_bits`` (None or 0 words: not wanted), ``out_int``."""
        a = self.args
        b, h, w, cw = x_bits.shape
        if cw != a.cw or not x_bits.is_contiguous():
            raise ValueError(
                f"input has {cw} words per pixel (contiguous: {x_bits.is_contiguous()}), need {a.cw}"
            )
        a.x, a.B, a.H, a.W = x_bits.data_ptr(), b, h, w
        a.Ho, a.Wo = self.out_hw(h, w)
        if res is None:
            a.res, a.res_c, a.res_h, a.res_w = None, 0, 0, 0
        else:
            a.res, a.res_h, a.res_w, a.res_c = res.data_ptr(), res.shape[1], res.shape[2], res.shape[3]
        if out_f is not None and (out_f.numel() != b * a.Ho * a.Wo * a.N or not out_f.is_contiguous()):
            raise ValueError(f"out_f must be a contiguous [{b}, {a.Ho}, {a.Wo}, {a.N}] tensor")
        if res is not None and not res.is_contiguous():
            raise ValueError("res must be contiguous NHWC")
        a.out_f = None if out_f is None else out_f.data_ptr()
        a.out_bits = None if out_bits is None or out_bits.shape[-1] == 0 else out_bits.data_ptr()
        a.out_int = None if out_int is None else out_int.data_ptr()
        a.nthreads, a.isa = _threads(), _isa()
        _cpu.check_rc(self._fn(self._ref), "xnor_conv")

    def rerun(self, n: int) -> None:
        """Run the last call's arguments ``n`` more times inside C (benchmarks: the kernel's time without the
        per-call Python cost). The tensors of that call must still be alive."""
        _cpu.check_rc(_cpu.lib().xnor_conv_repeat(self._ref, n), "xnor_conv")
