"""One autograd node per ReActNet-A block for training: XNOR-popcount forward, hand-written backward.

The eager block is ~25 autograd ops (RSign, α·sign(W) with its STE, conv, BN, add, RPReLU, … twice), each with
its own forward and backward dispatch and temporaries. :func:`block_forward` computes the same function in one
:class:`torch.autograd.Function`:

- forward: the two binary convolutions on the XNOR CPU kernel (their inputs are ±1 and their weights
  α·sign(W), so the integer dot products are exact and ``α·dot`` is the float conv's value up to its summation
  rounding); BatchNorm in training mode (batch statistics, running statistics updated as ``nn.BatchNorm2d``
  does) with the residual and RPReLU after it in one C call per conv (:func:`ops.bn_act_train_direct`);
- backward: the gradients of the eager graph written out (RPReLU, BN, the float conv gradients by
  :func:`binary_conv_backward` — on AMX-BF16 where the CPU has it, else ``aten.convolution_backward`` on the
  ±1 inputs and α·sign(W) (``kernels.cpu.grad_route``) — the clipped STE ``1[|W| ≤ 1]`` for the latent
  weights, ApproxSign ``max(0, 2 − 2|u|)`` for the RSign inputs, the 2×2 average pool of the shortcut).

It is used where it is exact: training mode with gradients on, float32 on CPU, binary weights, plain affine
BatchNorms with running statistics (not SyncBatchNorm), the XNOR CPU kernel available. Everywhere else :class:`~ltbench.binary.reactnet.ReActBlock` runs its eager ops.
``tests/test_fused.py`` checks outputs, every parameter's gradient and the BN running statistics against the
eager path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ltbench.binary import ops
from ltbench.binary.kernels import cpu as _cpu

_available: bool | None = None
_CL = torch.channels_last


def kernel_available() -> bool:
    """Whether the XNOR CPU kernel builds and loads here (checked once)."""
    global _available
    if _available is None:
        _available = _cpu.available()
    return _available


def can_fuse(block: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`block_forward` computes ``block(x)`` exactly (see the module docstring)."""
    return (
        getattr(block, "fused", False)
        and block.training
        and torch.is_grad_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and block.conv3x3.binary_weights
        and all(
            cv.scaled for cv in (block.conv3x3, *block.conv1x1)
        )  # α = mean |W|, computed with the packing
        and all(_plain_bn(bn) for bn in (block.bn1, *block.bn2))
        and not torch.compiler.is_compiling()
        and kernel_available()
    )


def _plain_bn(bn: nn.Module) -> bool:
    """A plain affine ``nn.BatchNorm2d`` with running statistics (not SyncBatchNorm, whose statistics span
    processes)."""
    return type(bn) is nn.BatchNorm2d and bn.affine and bn.track_running_stats


def set_fused(model: nn.Module, enabled: bool) -> int:
    """Switch every ReActNet-A block inside ``model`` to the fused (``True``) or op-by-op path; the count."""
    n = 0
    for m in model.modules():
        if hasattr(m, "fused") and hasattr(m, "conv1x1"):
            m.fused = enabled
            n += 1
    return n


@dataclass
class _Spec:
    c: int
    co: int
    stride: int
    n: int  # 1×1 convs (1, or 2 for the down-sampling block)
    eps1: float
    eps2: float
    mom1: float
    mom2: float
    route: str  # how the backward computes the float conv gradients (kernels.cpu.grad_route)


def _xnor_conv(bits, panels, tapsum, alpha, c, n, k, stride, pad) -> torch.Tensor:
    """``α·Σ ±1·±1`` as float32 channels_last NCHW (the kernel writes NHWC) from W's panels (packed per step,
    :func:`ops.pack_weights`), calling the kernel directly (:class:`ops.ConvPlan`)."""
    plan = ops.ConvPlan(panels, tapsum, c, n, k, k, stride, pad, alpha)
    b, h, ww, _ = bits.shape
    ho, wo = plan.out_hw(h, ww)
    y = torch.empty(b, ho, wo, n)
    plan(bits, None, y, None)
    return y.permute(0, 3, 1, 2)


def _momentum(bn: nn.BatchNorm2d) -> float:
    """The running-average factor ``nn.BatchNorm2d`` uses this step (after counting the batch)."""
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    if bn.momentum is None:
        return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum


def _nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1)


# On small output maps the gradient convolutions run as one pair of matrix products per kernel tap, over the
# output pixels whose input pixel lies inside the map (:func:`conv_backward_taps`): no zero-padded im2col
# columns, so a 3×3 conv on 2×2 outputs does 16 of the 36 tap-pixel products. Measured against oneDNN's
# convolution backward (AMD EPYC AVX2 VM, 1 thread, batch 64, best of 15, ms oneDNN → taps): 3×3 256 ch 2×2
# 20.2 → 4.0 (the im2col route this replaced: 8.3), 128 ch 4×4 8.2 → 6.4, 128 ch 4×4 stride 2 4.1 → 1.9, 64 ch
# 8×8 stride 2 3.3 → 2.5, 64 ch 8×8 7.8 → 8.4 and 32 ch 8×8 2.2 → 2.8 (kept on oneDNN); 1×1 256 ch 2×2
# 1.5 → 1.0, 128 ch 4×4 1.05 → 0.81, 64 ch 8×8 1.01 → 1.04.
TAPS_MAX_PIXELS = 16


def taps_pay(k: int, stride: int, ho: int, wo: int) -> bool:
    """Whether a ``k``×``k`` conv with ``ho``×``wo`` outputs takes :func:`conv_backward_taps` (see
    :data:`TAPS_MAX_PIXELS`): small output maps, and every strided 3×3."""
    return ho * wo <= TAPS_MAX_PIXELS or (k == 3 and stride == 2)


def _tap_range(i: int, stride: int, pad: int, n_in: int, n_out: int) -> tuple[int, int]:
    """The outputs ``[lo, hi)`` along one axis whose input ``o·stride − pad + i`` for tap ``i`` is in the map."""
    return max(0, -((i - pad) // stride)), min(n_out, (n_in - 1 + pad - i) // stride + 1)


def conv_backward_taps(
    g_y: torch.Tensor, a: torch.Tensor, weff: torch.Tensor, stride: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and weight gradients of ``conv2d(a, weff, stride, padding=k // 2)`` (channels-last tensors), as
    ``aten.convolution_backward`` gives them to float32 rounding, as per-tap matrix products: for tap
    ``(i, j)``, ``g_w[:, i, j] = g_yᵀ · a`` and ``g_a += g_y · weff[:, :, i, j]`` over the output pixels whose
    input pixel is inside the map (padding contributes nothing, so it is never multiplied)."""
    b, o, ho, wo = g_y.shape
    c, h, w = a.shape[1], a.shape[2], a.shape[3]
    k = weff.shape[-1]
    pad = k // 2
    an, gn, wn = _nhwc(a), _nhwc(g_y), _nhwc(weff)  # weff as [O, kh, kw, C]
    if k == 1 and stride == 1:  # one tap over the whole map
        g2, a2 = gn.reshape(-1, o), an.reshape(-1, c)
        g_a = (g2 @ wn.reshape(o, c)).view(b, h, w, c)
        return g_a.permute(0, 3, 1, 2), (g2.t() @ a2).view(o, 1, 1, c).permute(0, 3, 1, 2)
    g_w = torch.zeros(o, k, k, c)
    g_a = torch.zeros(b, h, w, c)
    for i in range(k):
        h0, h1 = _tap_range(i, stride, pad, h, ho)
        for j in range(k):
            w0, w1 = _tap_range(j, stride, pad, w, wo)
            if h1 <= h0 or w1 <= w0:
                continue  # this tap only ever reads padding
            hi = slice(h0 * stride - pad + i, (h1 - 1) * stride - pad + i + 1, stride)
            wi = slice(w0 * stride - pad + j, (w1 - 1) * stride - pad + j + 1, stride)
            gt = gn[:, h0:h1, w0:w1].reshape(-1, o)
            g_w[:, i, j] = gt.t() @ an[:, hi, wi].reshape(-1, c)
            g_a[:, hi, wi] += (gt @ wn[:, i, j]).view(b, h1 - h0, w1 - w0, c)
    return g_a.permute(0, 3, 1, 2), g_w.permute(0, 3, 1, 2)  # NCHW / OIHW shapes, channels-last memory


# Where the AMX route beats torch's float32 conv backward (Intel Xeon VM, 1 thread, medians of 9–15 alternated
# calls, float / AMX time): it depends on the GEMMs' row count M = batch × output pixels. M ≤ 2048 at stride 1:
# 1.2–3.1× on 4×4 and 2×2 maps at batch 64, 1.03–1.84× at batch 32 on 8×8, 128 on 4×4 and 8 on 16×16; M = 4096
# (batch 64 on 8×8, 256 on 4×4, 16 on 16×16): 0.83–1.31×, a tie (median 1.04), so those stay on torch's path.
# 3×3 stride-2 convs win at any M (1.25–3.0×).
AMX_MAX_ROWS = 2048


def amx_pays(rows: int, k: int, stride: int) -> bool:
    """Whether the ``auto`` gradient route puts a conv whose output has ``rows`` = batch × output pixels on AMX
    (see :data:`AMX_MAX_ROWS`)."""
    return rows <= AMX_MAX_ROWS or (k == 3 and stride == 2)


def binary_conv_backward(
    g_y: torch.Tensor,
    x: torch.Tensor,
    bias: torch.Tensor,
    w: torch.Tensor,
    alpha: torch.Tensor,
    stride: int,
    route: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of ``conv2d(sign(x + bias), α·sign(W), stride, padding=k // 2)`` w.r.t. its ±1 input
    (channels-last) and w.r.t. the latent ``W`` through the clipped STE (``W``'s OIHW layout): on AMX-BF16
    (:func:`ops.conv_backward_amx_direct`) for ``route == "amx"`` and, for ``"auto"``, where :func:`amx_pays`;
    else float32 products on the materialised ±1 tensors (:func:`conv_backward_taps` where :func:`taps_pay`,
    else torch's convolution backward), then the STE."""
    g_y = g_y.contiguous(memory_format=_CL)
    k = w.shape[-1]
    rows = g_y.shape[0] * g_y.shape[2] * g_y.shape[3]
    if route == "amx" or (route == "auto" and amx_pays(rows, k, stride)):
        return ops.conv_backward_amx_direct(g_y, x, bias, w, alpha, stride, k // 2)
    a, weff = ops.pm1_direct(x, bias), ops.weff_direct(w, alpha)
    if taps_pay(k, stride, g_y.shape[2], g_y.shape[3]):
        g_a, g_weff = conv_backward_taps(g_y, a, weff, stride)
    else:
        g_a, g_weff, _ = torch.ops.aten.convolution_backward(
            g_y, a, weff, None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], 1, [True, True, False]
        )
    return g_a, ops.ste_weight_grad_direct(g_weff, w)


class _BlockFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: _Spec, bufs: list[torch.Tensor], x: torch.Tensor, *p: torch.Tensor):
        c, co, s, n = spec.c, spec.co, spec.stride, spec.n
        b1, w3, g1, be1, bi1, sl1, bo1, b2 = p[:8]
        w1s, g2s, be2s = p[8 : 8 + n], p[8 + n : 8 + 2 * n], p[8 + 2 * n : 8 + 3 * n]
        bi2, sl2, bo2 = p[8 + 3 * n :]
        rm1, rv1, rm2, rv2 = bufs
        xl = x.contiguous(memory_format=_CL)
        bits1 = ops.sign_pack_direct(_nhwc(xl), b1.reshape(-1))
        panels3, tapsum3, alpha3 = ops.pack_weights(w3)  # α = mean |W| per output channel, as conv.scale()
        y3 = _xnor_conv(bits1, panels3, tapsum3, alpha3, c, c, 3, s, 1)
        res = F.avg_pool2d(xl, 2) if s == 2 else xl
        t1, h, sm3, si3 = ops.bn_act_train_direct(
            y3, g1, be1, rm1, rv1, spec.mom1, spec.eps1, res, bi1, sl1, bo1
        )
        bits2 = ops.sign_pack_direct(_nhwc(h), b2.reshape(-1))
        w1 = w1s[0] if n == 1 else torch.cat(w1s)
        panels1, tapsum1, alpha1 = ops.pack_weights(w1)
        y1 = _xnor_conv(bits2, panels1, tapsum1, alpha1, c, co, 1, 1, 0)
        g2 = g2s[0] if n == 1 else torch.cat(g2s)
        be2 = be2s[0] if n == 1 else torch.cat(be2s)
        # the shortcut h is repeated over the n output groups (channel j adds h[j % c])
        t2, out, sm1, si1 = ops.bn_act_train_direct(
            y1, g2, be2, rm2, rv2, spec.mom2, spec.eps2, h, bi2, sl2, bo2
        )
        ctx.spec = spec
        ctx.save_for_backward(xl, h, y3, sm3, si3, t1, y1, sm1, si1, t2, alpha3, alpha1, *p)
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        spec = ctx.spec
        c, s, n = spec.c, spec.stride, spec.n
        xl, h, y3, sm3, si3, t1, y1, sm1, si1, t2, alpha3, alpha1, *p = ctx.saved_tensors
        b1, w3, g1, be1, bi1, sl1, bo1, b2 = p[:8]
        w1s, g2s = p[8 : 8 + n], p[8 + n : 8 + 2 * n]
        bi2, sl2, bo2 = p[8 + 3 * n :]
        g = g.contiguous(memory_format=_CL)
        g2 = g2s[0] if n == 1 else torch.cat(g2s)
        # out = prelu(t2, sl2) + bo2, t2 = bn2(y1) + h (h repeated over the n halves): RPReLU and BN in 2 C passes
        g_t2, g_y1, g_bo2, g_bi2, g_sl2, g_g2, g_be2 = ops.prelu_bn_backward_direct(
            g, t2, sl2, y1, sm1, si1, g2
        )
        g_h = g_t2 if n == 1 else g_t2[:, :c] + g_t2[:, c:]
        # y1 = conv1x1(sign(h + b2), α1·sign(W1))
        w1 = w1s[0] if n == 1 else torch.cat(w1s)
        g_a2, g_w1 = binary_conv_backward(g_y1, h, b2.reshape(-1), w1, alpha1, 1, spec.route)
        g_h, g_b2 = ops.approxsign_backward_direct(g_a2, h, b2.reshape(-1), add=g_h)
        # h = prelu(t1, sl1) + bo1, t1 = bn1(y3) + pool(x)
        g_t1, g_y3, g_bo1, g_bi1, g_sl1, g_g1, g_be1 = ops.prelu_bn_backward_direct(
            g_h, t1, sl1, y3, sm3, si3, g1
        )
        # y3 = conv3x3(sign(x + b1), α3·sign(W3))
        g_a1, g_w3 = binary_conv_backward(g_y3, xl, b1.reshape(-1), w3, alpha3, s, spec.route)
        g_res = g_t1 if s == 1 else torch.ops.aten.avg_pool2d_backward(
            g_t1, xl, [2, 2], [2, 2], [0, 0], False, True, None
        )  # fmt: skip
        g_x, g_b1 = ops.approxsign_backward_direct(g_a1, xl, b1.reshape(-1), add=g_res)
        vec = lambda t, ref: t.view_as(ref)  # noqa: E731
        grads = [
            vec(g_b1, b1),
            g_w3,
            g_g1,
            g_be1,
            vec(g_bi1, bi1),
            vec(g_sl1, sl1),
            vec(g_bo1, bo1),
            vec(g_b2, b2),
        ]
        grads += list(g_w1.split(c)) if n > 1 else [g_w1]
        grads += list(g_g2.split(c)) if n > 1 else [g_g2]
        grads += list(g_be2.split(c)) if n > 1 else [g_be2]
        grads += [vec(g_bi2, bi2), vec(g_sl2, sl2), vec(g_bo2, bo2)]
        return None, None, g_x, *grads


def block_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` for a training-mode :class:`~ltbench.binary.reactnet.ReActBlock` as one autograd node
    (call only where :func:`can_fuse` holds)."""
    n = len(block.conv1x1)
    bn1, bn2 = block.bn1, list(block.bn2)
    if len({bn.eps for bn in bn2}) != 1 or len({bn.momentum for bn in bn2}) != 1:
        raise ValueError("the fused block needs the same eps and momentum on its 1×1 BatchNorms")
    spec = _Spec(
        block.in_chans,
        block.out_chans,
        block.stride,
        n,
        bn1.eps,
        bn2[0].eps,
        _momentum(bn1),
        0.0,
        _cpu.grad_route(),
    )
    for bn in bn2:
        spec.mom2 = _momentum(bn)
    rm2 = bn2[0].running_mean if n == 1 else torch.cat([bn.running_mean for bn in bn2])
    rv2 = bn2[0].running_var if n == 1 else torch.cat([bn.running_var for bn in bn2])
    bufs = [bn1.running_mean, bn1.running_var, rm2, rv2]
    p = [block.rsign1.bias, block.conv3x3.weight, bn1.weight, bn1.bias, block.rprelu1.bias_in]
    p += [block.rprelu1.prelu.weight, block.rprelu1.bias_out, block.rsign2.bias]
    p += [cv.weight for cv in block.conv1x1] + [bn.weight for bn in bn2] + [bn.bias for bn in bn2]
    p += [block.rprelu2.bias_in, block.rprelu2.prelu.weight, block.rprelu2.bias_out]
    out = _BlockFn.apply(spec, bufs, x, *p)
    if n > 1:  # the concatenated running statistics were updated in a copy: write them back
        with torch.no_grad():
            for i, bn in enumerate(bn2):
                bn.running_mean.copy_(rm2[i * block.in_chans : (i + 1) * block.in_chans])
                bn.running_var.copy_(rv2[i * block.in_chans : (i + 1) * block.in_chans])
    return out
