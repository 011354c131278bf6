"""The fused training block (ltbench.binary.fused) computes what the eager ReActNet-A block computes.

Per block (every width pattern the tiny and full networks use: n = 1 / 2 pointwise convs, stride 1 / 2, maps
down to 2×2, Cin = 8 … 128): outputs, the input gradient, every parameter's gradient and the BN running
statistics equal the eager float path's to float tolerance. Whole network: the fused path is no further
from float64 than a few times the eager float32 path's own rounding. Both routes of the backward's float conv
gradients (torch's float32 convolution backward; AMX-BF16 where the CPU has it) are checked, and that the
route asked for is the one that ran. Also: when the fused path is used (and when not), and that the switch
restores the eager path.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ltbench.backbones import create_backbone
from ltbench.binary import fused, ops
from ltbench.binary.kernels import cpu
from ltbench.binary.reactnet import ReActBlock

pytestmark = pytest.mark.skipif(not cpu.available(), reason="XNOR CPU kernel unavailable")
_no_amx = pytest.mark.skipif(not cpu.available() or not cpu.amx_available(), reason="no AMX-BF16")
ROUTES = ["float", pytest.param("amx", marks=_no_amx)]  # amx: every conv on AMX (auto: tests/test_amx.py)


@pytest.fixture
def route(request, monkeypatch):
    """Run the test under one gradient route; fail unless the AMX kernel ran exactly when asked for."""
    calls = []
    real = ops.conv_backward_amx_direct
    monkeypatch.setattr(ops, "conv_backward_amx_direct", lambda *a: calls.append(1) or real(*a))
    with cpu.use_grad_route(request.param):
        yield request.param
    assert bool(calls) == (request.param == "amx")


def _randomize(m: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for n, p in m.named_parameters():
        if "bias" in n:
            p.data.copy_(torch.randn(p.shape, generator=g) * 0.1)
        elif "prelu" in n:
            p.data.copy_(torch.rand(p.shape, generator=g) * 0.3 + 0.1)
        elif "conv" in n:
            p.data.copy_(torch.randn(p.shape, generator=g) * 1e-3)
        elif "bn" in n:  # BN weights
            p.data.copy_(torch.rand(p.shape, generator=g) + 0.5)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max() / b.detach().abs().max().clamp_min(1e-30))


@pytest.mark.parametrize(
    "k,stride,c,o,hw",
    [
        (3, 1, 5, 7, 2),  # 2×2 outputs: every tap but the centre reads padding for some pixels
        (3, 1, 4, 6, 1),  # a 1×1 map: only the centre tap reads the map
        (3, 1, 3, 5, 4),
        (3, 2, 6, 4, 5),  # odd input under stride 2: 3×3 outputs, the last row/column's taps clipped
        (3, 2, 4, 3, 4),
        (1, 1, 6, 5, 3),
    ],
)
def test_conv_backward_taps_matches_float64(k, stride, c, o, hw):
    """The per-tap GEMM gradients equal float64 ``aten.convolution_backward`` at padding k // 2 (a tap range one
    pixel off, or padding multiplied in, fails it)."""
    g = torch.Generator().manual_seed(3)
    cl = torch.channels_last
    a = torch.randn(2, c, hw, hw, generator=g).sign().contiguous(memory_format=cl)
    w = torch.randn(o, c, k, k, generator=g).contiguous(memory_format=cl)
    ho = (hw + 2 * (k // 2) - k) // stride + 1
    g_y = torch.randn(2, o, ho, ho, generator=g).contiguous(memory_format=cl)
    ref_a, ref_w, _ = torch.ops.aten.convolution_backward(
        g_y.double(), a.double(), w.double(), None, [stride] * 2, [k // 2] * 2, [1, 1], False, [0, 0], 1,
        [True, True, False],
    )  # fmt: skip
    g_a, g_w = fused.conv_backward_taps(g_y, a, w, stride)
    assert g_a.shape == a.shape and g_w.shape == w.shape
    torch.testing.assert_close(g_a.double(), ref_a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_w.double(), ref_w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "cin,cout,stride,hw,momentum",
    [
        (8, 16, 1, 8, 0.1),
        (32, 32, 1, 8, 0.1),
        (64, 128, 2, 8, 0.1),
        (128, 128, 1, 4, None),
        (128, 256, 2, 4, 0.1),
        (256, 256, 1, 2, 0.1),  # 2×2 / 1×1 outputs: the per-tap GEMM backward (fused.taps_pay)
        (256, 512, 2, 2, 0.1),
    ],
)
@pytest.mark.parametrize("route", ROUTES, indirect=True)
def test_block_equals_eager(cin, cout, stride, hw, momentum, route):
    torch.manual_seed(0)
    ref = ReActBlock(cin, cout, stride).train()
    _randomize(ref)
    for bn in [ref.bn1, *ref.bn2]:
        bn.momentum = momentum
        bn.running_mean.normal_(0, 0.1)
    ref.fused = False
    fb = copy.deepcopy(ref)
    fb.fused = True
    x = torch.randn(16, cin, hw, hw)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    assert fused.can_fuse(fb, xf) and not fused.can_fuse(ref, xr)
    out_r, out_f = ref(xr), fb(xf)
    assert out_f.shape == out_r.shape == (16, cout, hw // stride, hw // stride)
    assert _rel(out_f, out_r) < 2e-6
    w = torch.randn(out_r.shape, generator=torch.Generator().manual_seed(1))
    (out_r * w).sum().backward()
    (out_f * w).sum().backward()
    assert _rel(xf.grad, xr.grad) < 2e-5
    for (name, pr), (_, pf) in zip(ref.named_parameters(), fb.named_parameters(), strict=True):
        assert pf.grad is not None and pf.grad.shape == pr.shape, name
        assert _rel(pf.grad, pr.grad) < 5e-5, name
    for (name, br), (_, bf) in zip(ref.named_buffers(), fb.named_buffers(), strict=True):
        if br.dtype.is_floating_point:
            torch.testing.assert_close(bf, br, rtol=1e-5, atol=1e-6, msg=name)
        else:
            assert torch.equal(bf, br), name  # num_batches_tracked counted once per call


@pytest.mark.parametrize("route", ROUTES, indirect=True)
def test_network_outputs_and_gradients_match_eager_and_float64(route):
    torch.manual_seed(0)
    m = create_backbone("reactnet-a-tiny", 10, 1).train()
    for n, p in m.named_parameters():  # the RSign / RPReLU shifts away from their zero init
        if ".bias" in n and "bn" not in n and "classifier" not in n:
            p.data.normal_(0, 0.1)
    eager = copy.deepcopy(m)
    assert fused.set_fused(eager, False) == 13
    exact = copy.deepcopy(eager).double()
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))

    def grads(model, xx):
        model.zero_grad()
        out = model(xx)
        F.cross_entropy(out, y).backward()
        return out.detach(), [p.grad for p in model.parameters()]

    (of, gf), (oe, ge), (o64, g64) = grads(m, x), grads(eager, x), grads(exact, x.double())
    assert _rel(of, oe) < 1e-5 and _rel(of, o64.float()) < 1e-5
    for (name, _), a, b, c in zip(m.named_parameters(), gf, ge, g64, strict=True):
        assert _rel(a, b) < 1e-3, name  # fused vs eager float32
        assert _rel(a, c.float()) < 1e-3, name  # fused vs float64


def test_fused_only_where_exact():
    blk = ReActBlock(8, 16).train()
    x = torch.randn(2, 8, 4, 4)
    assert fused.can_fuse(blk, x)
    assert not fused.can_fuse(blk, x.double())
    with torch.no_grad():
        assert not fused.can_fuse(blk, x)
    assert not fused.can_fuse(blk.eval(), x)
    step1 = ReActBlock(8, 16, binary_weights=False).train()
    assert not fused.can_fuse(step1, x)
    unscaled = ReActBlock(8, 16).train()
    unscaled.conv1x1[0].scaled = False  # sign weights without α: the eager path runs
    assert not fused.can_fuse(unscaled, x)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(ReActBlock(8, 16)).train()
    assert not fused.can_fuse(synced, x)  # statistics across processes: the eager SyncBatchNorm runs
    blk.fused = False
    assert not fused.can_fuse(blk.train(), x)


def test_eager_switch_runs_the_op_by_op_graph():
    m = create_backbone("reactnet-a-tiny", 10, 1).train()
    x = torch.randn(4, 1, 8, 8)
    names = lambda out: {type(n).__name__ for n in _graph(out.grad_fn)}  # noqa: E731
    assert "_BlockFnBackward" in names(m(x))
    fused.set_fused(m, False)
    assert "_BlockFnBackward" not in names(m(x)) and "_ApproxSignBackward" in names(m(x))


def _graph(fn, seen=None):
    seen = set() if seen is None else seen
    stack = [fn]
    while stack:
        f = stack.pop()
        if f is None or f in seen:
            continue
        seen.add(f)
        stack.extend(nf for nf, _ in f.next_functions)
    return seen


@pytest.mark.parametrize("c,res_c", [(24, 24), (32, 16)])
def test_bn_act_train_matches_float64(c, res_c):
    """One C call: training BatchNorm (batch statistics, running statistics as nn.BatchNorm2d), the shortcut
    (repeated over the groups when it has fewer channels) and RPReLU, against the formulas in float64."""
    g = torch.Generator().manual_seed(5)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    y = (r(6, c, 5, 5) * 3 + 40).contiguous(
        memory_format=torch.channels_last
    )  # a large mean: one-pass var fails
    res = r(6, res_c, 5, 5)
    gamma, beta, b1, slope, b2 = r(c).abs() + 0.5, r(c), r(c) * 0.1, r(c).abs() * 0.3, r(c) * 0.1
    rm, rv = r(c) * 0.1, r(c).abs() + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    t, h, mean, invstd = ops.bn_act_train_direct(y, gamma, beta, rm, rv, 0.1, 1e-5, res, b1, slope, b2)
    yd = y.double()
    n = yd.numel() // c
    m64 = yd.mean((0, 2, 3))
    v64 = yd.var((0, 2, 3), unbiased=False)
    z = (
        (yd - m64.view(1, -1, 1, 1))
        / (v64 + 1e-5).sqrt().view(1, -1, 1, 1)
        * gamma.double().view(1, -1, 1, 1)
    )
    t64 = (
        z
        + beta.double().view(1, -1, 1, 1)
        + res.double().repeat(1, c // res_c, 1, 1)
        + b1.double().view(1, -1, 1, 1)
    )
    h64 = torch.where(t64 > 0, t64, slope.double().view(1, -1, 1, 1) * t64) + b2.double().view(1, -1, 1, 1)
    assert t.is_contiguous(memory_format=torch.channels_last) and h.is_contiguous(
        memory_format=torch.channels_last
    )
    assert _rel(t, t64.float()) < 2e-6 and _rel(h, h64.float()) < 2e-6
    assert _rel(mean, m64.float()) < 5e-7 and _rel(invstd, (v64 + 1e-5).rsqrt().float()) < 1e-6
    torch.testing.assert_close(rm, (0.9 * rm0.double() + 0.1 * m64).float(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(
        rv, (0.9 * rv0.double() + 0.1 * v64 * n / (n - 1)).float(), rtol=1e-6, atol=1e-7
    )
