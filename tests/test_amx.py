"""The AMX-BF16 gradients of a binary convolution (``xnor_amx.h``, ``ops.conv_backward_amx_direct``) and the
switch that chooses them (``kernels.cpu.grad_route``).

Against float64 autograd of ``conv2d(sign(x + b), α·sign(W))`` (sign(0) = +1) and the clipped STE
``1[|W| ≤ 1]``: single products bit-exact (the three bf16 pieces of a float32 are the float exactly), whole
gradients within float32 summation rounding and the STE's mask exactly, on shapes whose rows, columns and depth
are not multiples of the 32-wide tiles, stride 2, 1×1 and 3×3, with and without the RSign bias; the same bits
at 1 and 2 threads. The route switch: auto picks AMX only where it runs
and, inside the fused block, only on the shapes where it measured faster; forcing it elsewhere is an error.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ltbench.binary import ops
from ltbench.binary.kernels import cpu
from ltbench.errors import LTBenchError

amx = pytest.mark.skipif(
    not (cpu.available() and cpu.amx_available()), reason="this CPU (or kernel) lacks AMX-BF16"
)
CL = torch.channels_last


def _pm1(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t < 0, -1.0, 1.0).to(torch.float64)


def _reference(g_y, x, bias, w, alpha, stride, pad):
    """float64 autograd: the gradients w.r.t. the ±1 input and w.r.t. the latent W through the clipped STE
    (the α·sign(W) gradient where |W| ≤ 1, else 0)."""
    u = x if bias is None else x + bias.view(1, -1, 1, 1)
    a = _pm1(u).requires_grad_()
    weff = (alpha.double().view(-1, 1, 1, 1) * _pm1(w)).requires_grad_()
    F.conv2d(a, weff, stride=stride, padding=pad).backward(g_y.double())
    return a.grad, weff.grad * (w.abs() <= 1)


def _case(b, c, o, hw, k, stride, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    pad = k // 2
    ho = (hw + 2 * pad - k) // stride + 1
    x = torch.randn(b, c, hw, hw, generator=g).contiguous(memory_format=CL)
    bs = torch.randn(c, generator=g) * 0.1 if bias else None
    w = torch.randn(o, c, k, k, generator=g)
    w.view(-1)[::7] = 1.0  # on the STE's edge: |W| ≤ 1 passes the gradient
    w.view(-1)[3::7] = -1.0
    alpha = torch.rand(o, generator=g) + 0.5
    g_y = torch.randn(b, o, ho, ho, generator=g).contiguous(memory_format=CL)
    return g_y, x, bs, w, alpha, stride, pad


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return float((a.double() - ref).abs().max() / ref.abs().max())


@amx
def test_single_products_are_bit_exact():
    """A 1×1 conv of one pixel: each weight gradient is one product g·(±1), each input gradient one product
    g·α·(±1); the three-piece split must carry every bit of g (two pieces lose the last ≈ 8)."""
    g = torch.Generator().manual_seed(3)
    o, c = 40, 36
    g_y = torch.randn(1, o, 1, 1, generator=g) * 10.0 ** torch.randint(-6, 6, (1, o, 1, 1), generator=g)
    x, w = torch.randn(1, c, 1, 1, generator=g), torch.randn(o, c, 1, 1, generator=g)
    g_x, g_w = ops.conv_backward_amx_direct(g_y, x, None, w, torch.ones(o), 1, 0)
    expect = g_y.view(o, 1) * torch.where(x.view(1, c) < 0, -1.0, 1.0) * (w.view(o, c).abs() <= 1)
    assert torch.equal(g_w.reshape(o, c), expect)
    one_out = ops.conv_backward_amx_direct(g_y[:, :1], x, None, w[:1], torch.full((1,), 0.75), 1, 0)[0]
    assert torch.equal(one_out.view(c), (g_y[0, 0, 0, 0] * 0.75) * torch.where(w[0].view(c) < 0, -1.0, 1.0))


@amx
@pytest.mark.parametrize(
    "b,c,o,hw,k,stride,bias",
    [
        (3, 5, 7, 6, 3, 1, True),  # every dimension below one 32-wide tile
        (5, 33, 70, 5, 3, 2, True),  # odd map, stride 2, rows/columns/depth past a tile edge
        (64, 8, 8, 8, 3, 1, True),  # the tiny network's first block: depth 4096 pixels
        (64, 64, 64, 8, 3, 2, True),
        (64, 128, 128, 4, 3, 1, False),
        (64, 64, 128, 4, 1, 1, True),  # the doubled 1×1 of a down-sampling block
        (64, 256, 256, 2, 3, 1, True),
        (2, 19, 9, 7, 5, 1, True),  # 5×5: the STE's 16-channel gather blocks over 25 taps, a channel tail
        (1, 3, 4, 9, 9, 1, True),  # 9×9 (81 taps): past the gather table, the plain STE loop
    ],
)
def test_gradients_match_float64(b, c, o, hw, k, stride, bias):
    args = _case(b, c, o, hw, k, stride, bias)
    g_x, g_w = ops.conv_backward_amx_direct(*args)
    r_x, r_w = _reference(*args)
    assert g_x.shape == r_x.shape and g_w.shape == r_w.shape
    assert g_x.is_contiguous(memory_format=CL) and g_w.is_contiguous()  # W's own layout, as autograd wants
    # float32 summation rounding; dropping the third bf16 piece gives ≈ 2.5e-6 on every one of these
    assert _rel(g_x, r_x) < 1.2e-6
    assert _rel(g_w, r_w) < 1.2e-6
    assert torch.equal(
        g_w == 0, r_w == 0
    )  # the STE mask exactly (a gradient entry is never 0 by chance here)


@amx
def test_sign_of_zero_is_plus_one():
    """sign(x + b) and sign(W) at exactly 0 are +1, as the packed bit and the eager path take them."""
    g_y, x, bias, w, alpha, s, p = _case(4, 16, 16, 4, 3, 1)
    x = x.clone()
    x[:, :8] = -bias[:8].view(1, -1, 1, 1)  # x + b == 0 exactly on half the channels
    w = w.clone()
    w[:, :8] = 0.0
    g_x, g_w = ops.conv_backward_amx_direct(g_y, x, bias, w, alpha, s, p)
    r_x, r_w = _reference(g_y, x, bias, w, alpha, s, p)
    assert _rel(g_x, r_x) < 1.2e-6 and _rel(g_w, r_w) < 1.2e-6


@amx
@pytest.mark.skipif(not cpu.has_openmp(), reason="built without OpenMP")
def test_same_bits_at_one_and_two_threads():
    args = _case(64, 64, 64, 8, 3, 1)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = ops.conv_backward_amx_direct(*args)
        torch.set_num_threads(2)
        two = ops.conv_backward_amx_direct(*args)
    finally:
        torch.set_num_threads(old)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))


@amx
def test_inconsistent_shapes_are_refused():
    g_y, x, bias, w, alpha, s, p = _case(2, 8, 8, 4, 3, 1)
    with pytest.raises(RuntimeError, match="amx_conv_backward"):
        ops.conv_backward_amx_direct(g_y[:, :, :3], x, bias, w, alpha, s, p)


def test_route_auto_forced_and_unknown(monkeypatch):
    monkeypatch.delenv("LTBENCH_GRAD_GEMM", raising=False)
    monkeypatch.setattr(cpu, "amx_available", lambda: False)
    assert cpu.grad_route() == "float"
    with pytest.raises(LTBenchError, match="lacks AMX-BF16"), cpu.use_grad_route("amx"):
        pass
    monkeypatch.setenv("LTBENCH_GRAD_GEMM", "amx")
    with pytest.raises(LTBenchError, match="lacks AMX-BF16"):
        cpu.grad_route()
    monkeypatch.setenv("LTBENCH_GRAD_GEMM", "bf16")
    with pytest.raises(LTBenchError, match="unknown gradient route"):
        cpu.grad_route()
    monkeypatch.setattr(cpu, "amx_available", lambda: True)
    monkeypatch.setenv("LTBENCH_GRAD_GEMM", "auto")
    assert cpu.grad_route() == "auto"
    with cpu.use_grad_route("float"):
        assert cpu.grad_route() == "float"
    with cpu.use_grad_route("amx"):
        assert cpu.grad_route() == "amx"


@amx
@pytest.mark.parametrize(
    "batch,cin,cout,stride,hw,expect",
    [
        (64, 32, 32, 1, 8, []),  # 64·8·8 = 4096 output rows, stride 1: both convs on the float route
        (32, 32, 32, 1, 8, [(3, 1, 8), (1, 1, 8)]),  # 32·8·8 = 2048 rows: both on AMX
        (33, 32, 32, 1, 8, []),  # 2112 rows: float
        (64, 64, 128, 2, 16, [(3, 2, 8)]),  # 3×3 stride 2 (4096 rows) on AMX, the 1×1 after it on float
        (128, 128, 128, 1, 4, [(3, 1, 4), (1, 1, 4)]),  # 128·4·4 = 2048
        (256, 128, 128, 1, 4, []),
    ],
)
def test_auto_route_uses_amx_where_it_pays(monkeypatch, batch, cin, cout, stride, hw, expect):
    """Under ``auto`` the fused block's backward sends a conv to AMX exactly where ``fused.amx_pays`` says:
    at most 2048 output rows (batch × output pixels) and every 3×3 stride-2 conv."""
    from ltbench.binary.reactnet import ReActBlock

    seen = []
    real = ops.conv_backward_amx_direct

    def spy(g_y, x, bias, w, alpha, stride, pad):
        seen.append((w.shape[-1], stride, g_y.shape[-1]))
        return real(g_y, x, bias, w, alpha, stride, pad)

    monkeypatch.setattr(ops, "conv_backward_amx_direct", spy)
    blk = ReActBlock(cin, cout, stride).train()
    with cpu.use_grad_route("auto"):
        blk(torch.randn(batch, cin, hw, hw, requires_grad=True)).sum().backward()
    assert sorted(seen) == sorted(expect)
