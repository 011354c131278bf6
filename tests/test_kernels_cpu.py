"""Exactness of the XNOR CPU kernel: integer outputs equal float64 references on ±1 tensors, bit for bit,
with each instruction-set path (AVX-512 VPOPCNTDQ, AVX2, scalar) forced in turn."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbench.binary import pack
from ltbench.binary.kernels import cpu
from ltbench.errors import LTBenchError

pytestmark = pytest.mark.skipif(not cpu.available(), reason="no C compiler: the XNOR CPU kernel cannot build")

ISAS = ["avx512", "avx2", "scalar"]


@pytest.fixture(params=ISAS)
def isa(request):
    if not cpu.supported(request.param):
        pytest.skip(f"this CPU lacks the {request.param} path ({cpu.cpu_features()})")
    with cpu.use_isa(request.param):
        yield request.param


def ops():
    from ltbench.binary import ops as o

    return o


def ref_conv(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """float64 conv of the ±1 tensors (sign(0) = +1, NaN → +1), NHWC."""
    xs, ws = pack.sign_pm1(x).double(), pack.sign_pm1(w).double()
    return F.conv2d(xs, ws, stride=stride, padding=pad).permute(0, 2, 3, 1)


def run_conv(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    pw = pack.pack_conv(w, stride, pad)
    xb = ops().sign_pack(x.permute(0, 2, 3, 1).contiguous())
    n, c, kh, kw = w.shape
    return ops().xnor_conv(xb, pw.panels, pw.tapsum, c, n, kh, kw, stride, pad)


def assert_exact(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert out.dtype == torch.int32
    assert out.shape == ref.shape
    assert torch.equal(out.double(), ref), f"max |diff| {(out.double() - ref).abs().max().item()}"


def test_pack_bits_matches_kernel_and_roundtrips():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 130, generator=g)
    x[0, 0, :4] = torch.tensor([0.0, -0.0, float("nan"), -1e-30])
    words = pack.pack_bits(x)
    assert words.shape == (3, 5, 3)
    assert torch.equal(ops().sign_pack(x), words)
    assert torch.equal(pack.unpack_bits(words, 130), pack.sign_pm1(x))
    assert pack.unpack_bits(words, 130)[0, 0, :4].tolist() == [1.0, 1.0, 1.0, -1.0]
    bias = torch.randn(130, generator=g)
    assert torch.equal(ops().sign_pack(x, bias), pack.pack_bits(x + bias))
    # bit 63 lands in the int64 sign bit; 32-bit words for the GPU hold the same bits
    assert pack.pack_bits(-torch.ones(64)).item() == -1
    w32 = pack.pack_bits(x, word=32)
    assert torch.equal(pack.unpack_bits(w32, 130, word=32), pack.sign_pm1(x))


@pytest.mark.parametrize("k", [288, 576, 4608, 9216, 65, 1000])
def test_gemm_exact(isa, k):
    g = torch.Generator().manual_seed(k)
    m, n = 13, 97  # M not a multiple of the 6-row block, N off the 32-lane panel
    a, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    pw = pack.pack_linear(w)
    out = ops().xnor_gemm(ops().sign_pack(a), pw.panels, k, n)
    assert_exact(out, pack.sign_pm1(a).double() @ pack.sign_pm1(w).double().T)


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_rows_are_dealt_to_threads_once_each(isa, threads):
    """The kernel cuts M into one span per thread and each span into chunks: every row computed, none twice or
    missed, for M around the 6-row block, the spans and the 96-row chunk (fresh inputs per call, so a skipped
    row cannot show an earlier call's result)."""
    g = torch.Generator().manual_seed(threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for m in (1, 5, 6, 7, 13, 97, 193, 785):
            a, w = torch.randn(m, 130, generator=g), torch.randn(33, 130, generator=g)
            out = ops().xnor_gemm(ops().sign_pack(a), pack.pack_linear(w).panels, 130, 33)
            assert_exact(out, pack.sign_pm1(a).double() @ pack.sign_pm1(w).double().T)
        x, wt = torch.randn(3, 40, 7, 5, generator=g), torch.randn(70, 40, 3, 3, generator=g)
        assert_exact(run_conv(x, wt, 1, 1), ref_conv(x, wt, 1, 1))
    finally:
        torch.set_num_threads(before)


def test_empty_batch_is_invalid_arguments():
    """B = 0 with a valid pointer (only a direct C caller can make it) is rejected, not divided by: the row spans
    are ⌈M / threads⌉ rows."""
    import ctypes

    x, w = torch.zeros(4, 1, dtype=torch.int64), pack.pack_linear(torch.ones(32, 64))
    for b, h in ((0, 1), (1, 0)):
        a = cpu.ConvArgs(x=x.data_ptr(), B=b, H=h, W=1, cw=1, C=64, w=w.panels.data_ptr(), N=32, kh=1, kw=1,
                         stride=1, pad=0, Ho=1, Wo=1, out_int=x.data_ptr(), nthreads=2, isa=cpu.ISAS["scalar"])  # fmt: skip
        assert cpu.lib().xnor_conv(ctypes.byref(a)) == -1


def test_gemm_all_equal_and_special_values(isa):
    k, n = 1000, 33
    a = torch.stack([torch.ones(k), -torch.ones(k), torch.zeros(k), torch.full((k,), -0.0)])
    a = torch.cat([a, torch.full((1, k), float("nan"))])
    w = torch.cat([torch.ones(n - 1, k), -torch.ones(1, k)])
    out = ops().xnor_gemm(ops().sign_pack(a), pack.pack_linear(w).panels, k, n)
    # rows: +1, −1, 0 (→ +1), −0.0 (→ +1), NaN (→ +1); the last weight row is all −1
    expect = torch.tensor([k, -k, k, k, k], dtype=torch.int32)
    assert torch.equal(out[:, 0], expect) and torch.equal(out[:, -1], -expect)


@pytest.mark.parametrize(
    ("b", "c", "n", "h", "w", "k", "stride", "pad"),
    [
        (1, 32, 32, 9, 9, 3, 1, 1),  # K = 288 (block 1), padding on every border and corner
        (2, 64, 70, 8, 6, 3, 2, 1),  # K = 576, stride 2, N off-tile
        (1, 512, 40, 5, 5, 3, 1, 1),  # K = 4608
        (1, 1024, 33, 3, 3, 3, 1, 1),  # K = 9216, every output pixel touches the border
        (2, 65, 31, 7, 7, 3, 2, 1),  # odd channels
        (1, 128, 256, 4, 4, 1, 1, 0),  # 1×1 (direct GEMM on the NHWC input)
        (1, 40, 8, 6, 6, 1, 2, 0),  # 1×1 strided
        (1, 7, 5, 6, 5, 5, 1, 2),  # 5×5, pad 2: several padded taps per pixel
    ],
)
def test_conv_exact(isa, b, c, n, h, w, k, stride, pad):
    g = torch.Generator().manual_seed(c * 1000 + n)
    x = torch.randn(b, c, h, w, generator=g)
    wt = torch.randn(n, c, k, k, generator=g)
    assert_exact(run_conv(x, wt, stride, pad), ref_conv(x, wt, stride, pad))


def test_conv_all_equal_inputs_padding_is_zero(isa):
    """All −1 input and weights: an interior pixel sums to +K; border pixels lose their padded taps."""
    x, w = -torch.ones(1, 64, 4, 4), -torch.ones(3, 64, 3, 3)
    out = run_conv(x, w, 1, 1)[0, :, :, 0]
    expect = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=torch.int32) * 64
    assert torch.equal(out, expect)


def test_conv_special_values(isa):
    x = torch.randn(1, 66, 5, 5, generator=torch.Generator().manual_seed(3))
    x[0, ::4] = 0.0
    x[0, 1::4] = -0.0
    x[0, 2::4, 2] = float("nan")
    w = torch.randn(9, 66, 3, 3, generator=torch.Generator().manual_seed(4))
    w[:, :5] = 0.0
    assert_exact(run_conv(x, w, 1, 1), ref_conv(x, w, 1, 1))


@settings(max_examples=25, deadline=None)
@given(
    b=st.integers(1, 2),
    c=st.integers(1, 140),
    n=st.integers(1, 70),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    k=st.sampled_from([1, 3]),
    stride=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_conv_exact_hypothesis(b, c, n, h, w, k, stride, seed):
    pad = k // 2
    g = torch.Generator().manual_seed(seed)
    x, wt = torch.randn(b, c, h, w, generator=g), torch.randn(n, c, k, k, generator=g)
    ref = ref_conv(x, wt, stride, pad)
    for name in ISAS:
        if cpu.supported(name):
            with cpu.use_isa(name):
                assert_exact(run_conv(x, wt, stride, pad), ref)


def fused_reference(x, w, alpha, scale, shift, res, pool, rp, next_bias):
    """The float ops the fused epilogue replaces, in float32 (NCHW in, NHWC out)."""
    dot = ref_conv(x, w, 2 if pool else 1, 1).float()
    y = scale * (dot * alpha) + shift
    r = res.permute(0, 3, 1, 2)
    r = F.avg_pool2d(r, 2) if pool else r
    r = r.permute(0, 2, 3, 1)
    y = y + r.repeat(1, 1, 1, y.shape[-1] // r.shape[-1])
    v = y + rp[0]
    y = torch.where(v > 0, v, rp[1] * v) + rp[2]
    return y, y + next_bias


@pytest.mark.parametrize(("pool", "concat"), [(False, False), (True, False), (False, True)])
def test_fused_epilogue(isa, pool, concat):
    g = torch.Generator().manual_seed(7)
    c, n = 96, 192 if concat else 96
    x = torch.randn(2, c, 8, 8, generator=g)
    w = torch.randn(n, c, 3, 3, generator=g)
    pw = pack.pack_conv(w, 2 if pool else 1, 1)
    bn_scale, shift = torch.rand(n, generator=g) + 0.5, torch.randn(n, generator=g)
    res = torch.randn(2, 8, 8, c, generator=g)
    rp = tuple(torch.randn(n, generator=g) * s for s in (0.1, 0.25, 0.1))
    nb = torch.randn(n, generator=g) * 0.1
    y, bits = ops().xnor_conv_fused(
        ops().sign_pack(x.permute(0, 2, 3, 1).contiguous()), pw.panels, pw.tapsum, bn_scale * pw.alpha,
        shift, res, *rp, nb, c, n, 3, 3, pw.stride, 1, pool, True,
    )  # fmt: skip
    y_ref, pre = fused_reference(x, w, pw.alpha, bn_scale, shift, res, pool, rp, nb)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-4)
    ref_bits = pack.pack_bits(pre)
    far = pre.abs() > 1e-4  # a sign can flip only where the value is within rounding of zero
    mism = pack.unpack_bits(bits, n) != pack.unpack_bits(ref_bits, n)
    assert not (mism & far).any()


def test_custom_ops_opcheck_and_compile():
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(1, 70, 6, 6, generator=g), torch.randn(33, 70, 3, 3, generator=g)
    pw = pack.pack_conv(w, 1, 1)
    xb = ops().sign_pack(x.permute(0, 2, 3, 1).contiguous())
    args = (xb, pw.panels, pw.tapsum, 70, 33, 3, 3, 1, 1)
    torch.library.opcheck(torch.ops.ltbench.xnor_conv.default, args)
    torch.library.opcheck(torch.ops.ltbench.sign_pack.default, (x.permute(0, 2, 3, 1).contiguous(), None))

    def f(xf):
        return ops().xnor_conv(ops().sign_pack(xf), pw.panels, pw.tapsum, 70, 33, 3, 3, 1, 1)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    assert_exact(compiled(x.permute(0, 2, 3, 1).contiguous()), ref_conv(x, w, 1, 1))


def test_forcing_an_unknown_or_missing_path_is_an_error(monkeypatch):
    monkeypatch.setenv("LTBENCH_XNOR_ISA", "sse9")
    with pytest.raises(LTBenchError, match="unknown XNOR path"):
        cpu.current_isa()
    monkeypatch.setenv("LTBENCH_XNOR_ISA", "scalar")
    assert cpu.current_isa() == "scalar"


def test_no_compiler_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "find_compiler", lambda: None)
    monkeypatch.setenv("LTBENCH_KERNEL_CACHE", str(tmp_path))
    with pytest.raises(LTBenchError, match="no C compiler") as e:
        cpu.library_path()
    assert "--packed off" in str(e.value)


def test_build_cache_key_changes_with_source(tmp_path, monkeypatch):
    monkeypatch.setenv("LTBENCH_KERNEL_CACHE", str(tmp_path))
    p = cpu.library_path()
    assert p.exists() and p.parent.parent == tmp_path and len(p.parent.name) == 20
    stamp = p.stat().st_mtime_ns
    assert cpu.library_path() == p and p.stat().st_mtime_ns == stamp  # a cache hit: no rebuild


def test_pack_weights_equals_pack_conv(isa):
    g = torch.Generator().manual_seed(11)
    for shape in [(70, 130, 3, 3), (32, 64, 1, 1), (5, 8, 3, 3)]:
        w = torch.randn(shape, generator=g)
        w[0, 0, 0, 0], w[-1, -1, 0, 0] = 0.0, -0.0  # sign(0) = sign(-0.0) = +1
        panels, tapsum, alpha = ops().pack_weights(w)
        ref = pack.pack_conv(w)
        assert torch.equal(panels, ref.panels) and torch.equal(tapsum, ref.tapsum)
        want = w.double().abs().mean((1, 2, 3)).float()  # α = mean |W| per output channel
        torch.testing.assert_close(alpha, want, rtol=1e-7, atol=0)


def test_conv_plan_equals_the_custom_op(isa):
    """The direct call (no dispatcher) writes what xnor_conv_fused_out writes: 3×3 stride 2 with the pooled
    residual, RPReLU and next bits; 1×1 with N = 2·Cin and the residual repeated; and the integer output."""
    o = ops()
    g = torch.Generator().manual_seed(12)
    c = 70
    x = torch.randn(2, 6, 6, c, generator=g)
    bits = o.sign_pack(x)
    for n, k, s, pad, pool in [(c, 3, 2, 1, True), (2 * c, 1, 1, 0, False)]:
        wt = torch.randn(n, c, k, k, generator=g)
        pw = pack.pack_conv(wt, s, pad)
        vec = [torch.randn(n, generator=g) for _ in range(6)]
        plan = o.ConvPlan(
            pw.panels, pw.tapsum, c, n, k, k, s, pad, vec[0], vec[1], tuple(vec[2:5]), vec[5], pool
        )
        ho, wo = plan.out_hw(6, 6)
        out, ob = torch.empty(2, ho, wo, n), torch.empty(2, ho, wo, pack.n_words(n), dtype=torch.int64)
        ref, rb = torch.empty_like(out), torch.empty_like(ob)
        plan(bits, x, out, ob)
        o.xnor_conv_fused_out(bits, pw.panels, pw.tapsum, vec[0], vec[1], x, vec[2], vec[3], vec[4], vec[5],
                              c, n, k, k, s, pad, pool, ref, rb)  # fmt: skip
        assert torch.equal(out, ref) and torch.equal(ob, rb)
        dots = torch.empty(2, ho, wo, n, dtype=torch.int32)
        o.ConvPlan(pw.panels, pw.tapsum, c, n, k, k, s, pad)(bits, None, None, None, out_int=dots)
        assert torch.equal(dots.double(), ref_conv(x.permute(0, 3, 1, 2), wt, s, pad))
        with pytest.raises(ValueError, match="out_f"):
            plan(bits, x, torch.empty(1, ho, wo, n), ob)


def test_conv_plan_rerun_repeats_the_last_call(isa):
    """``ConvPlan.rerun`` (the benchmark's in-C repeat) runs the kernel again on the last call's tensors: an
    output cleared after the first call is written again, equal to the float64 reference (3×3, padding, N = 40
    so a panel is partial)."""
    o = ops()
    g = torch.Generator().manual_seed(13)
    x, wt = torch.randn(1, 7, 5, 5, generator=g), torch.randn(40, 7, 3, 3, generator=g)
    pw = pack.pack_conv(wt, 1, 1)
    plan = o.ConvPlan(pw.panels, pw.tapsum, 7, 40, 3, 3, 1, 1)
    dots = torch.empty(1, 5, 5, 40, dtype=torch.int32)
    bits = o.sign_pack(x.permute(0, 2, 3, 1).contiguous())  # kept alive: rerun reads it again
    plan(bits, None, None, None, out_int=dots)
    dots.zero_()
    plan.rerun(2)
    assert torch.equal(dots.double(), ref_conv(x, wt, 1, 1))


def test_backward_helpers_equal_their_torch_formulas(isa):
    """The fused block's C backward steps against the torch ops they replace, on channels-last tensors with
    C = 70 (a partial vector) and rows not a multiple of the 64-row sum blocks: sign with sign(0) = +1
    (also −0.0), ApproxSign's gradient ``add + g·clamp(2 − 2|u|, 0)`` and its channel sum, and the backward of
    ``prelu(bn(y) + shortcut + b1, slope) + b2`` (training BatchNorm) against torch autograd in float64: the
    gradients of t and y and of b2, b1, slope, the BN weight and bias."""
    o = ops()
    g = torch.Generator().manual_seed(14)
    shape = (3, 70, 5, 7)  # 105 rows
    x, gr = torch.randn(shape, generator=g) * 0.8, torch.randn(shape, generator=g)
    bias, slope = torch.randn(70, generator=g) * 0.3, torch.rand(70, generator=g)
    x[0, :3, 0, 0] = (
        torch.tensor([0.0, -0.0, 1.0]) - bias[:3]
    )  # u = x + b exactly 0 (and ±) on three channels
    x = x.contiguous(memory_format=torch.channels_last)
    u = x + bias.view(1, -1, 1, 1)
    a = o.pm1_direct(x, bias)
    assert a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, torch.where(u < 0, -1.0, 1.0))
    assert torch.equal(o.pm1_direct(torch.tensor([[[[-0.0]], [[0.0]], [[-1e-30]]]])).flatten(),
                       torch.tensor([1.0, 1.0, -1.0]))  # fmt: skip
    gu, gb = o.approxsign_backward_direct(gr, x, bias)
    ref = gr * (2.0 - 2.0 * u.abs()).clamp(min=0.0)
    assert torch.equal(gu, ref)
    torch.testing.assert_close(gb, ref.double().sum((0, 2, 3)).float(), rtol=2e-5, atol=2e-5)  # float sums
    extra = torch.randn(shape, generator=g)
    gu2, gb2 = o.approxsign_backward_direct(gr, x, bias, add=extra)
    torch.testing.assert_close(gu2, extra + ref, rtol=1e-6, atol=1e-6)  # (the C may fuse the add into an FMA)
    torch.testing.assert_close(gb2, gb, rtol=1e-6, atol=1e-6)
    # RPReLU after training BN: out = prelu(bn(y) + res + b1, slope) + b2
    y, res = torch.randn(shape, generator=g) * 2 + 1, torch.randn(shape, generator=g)
    gamma, beta, b1 = (
        torch.rand(70, generator=g) + 0.5,
        torch.randn(70, generator=g),
        torch.randn(70, generator=g),
    )
    leaves = [v.double().requires_grad_() for v in (y, res, gamma, beta, b1, slope)]
    yd, rd, gd, bd, b1d, sd = leaves
    td = F.batch_norm(yd, None, None, gd, bd, training=True, eps=1e-5) + rd + b1d.view(1, -1, 1, 1)
    td.retain_grad()
    (F.prelu(td, sd) * gr.double()).sum().backward()
    mean, var = y.double().mean((0, 2, 3)), y.double().var((0, 2, 3), unbiased=False)
    invstd = (var + 1e-5).rsqrt().float()
    got = o.prelu_bn_backward_direct(gr, td.detach().float(), slope, y, mean.float(), invstd, gamma)
    g_t, g_y, g_b2, g_b1, g_sl, g_gamma, g_beta = got
    assert g_t.is_contiguous(memory_format=torch.channels_last) and g_y.is_contiguous(
        memory_format=torch.channels_last
    )
    assert torch.equal(g_t, torch.where(td.detach().float() > 0, gr, slope.view(1, -1, 1, 1) * gr))
    assert g_beta.data_ptr() != g_b1.data_ptr()  # each is some parameter's .grad
    for name, mine, want in [
        ("g_t", g_t, td.grad), ("g_y", g_y, yd.grad), ("b2", g_b2, gr.double().sum((0, 2, 3))),
        ("b1", g_b1, b1d.grad), ("slope", g_sl, sd.grad), ("bn weight", g_gamma, gd.grad), ("bn bias", g_beta, bd.grad),
    ]:  # fmt: skip
        torch.testing.assert_close(mine, want.float(), rtol=2e-5, atol=2e-5, msg=name)


def test_weight_helpers_equal_their_torch_formulas(isa):
    """α·sign(W) written channels-last, and the clipped STE ``g·1[|W| ≤ 1]`` written back in W's OIHW layout,
    against the torch formulas (3×3 and 1×1; weights at 0, −0.0 and exactly ±1, where the clip is inclusive)."""
    o = ops()
    g = torch.Generator().manual_seed(15)
    for shape in [(12, 70, 3, 3), (40, 33, 1, 1)]:
        w = torch.randn(shape, generator=g) * 1.2
        w.view(-1)[:4] = torch.tensor([0.0, -0.0, 1.0, -1.0])
        alpha = torch.rand(shape[0], generator=g) + 0.1
        weff = o.weff_direct(w, alpha)
        assert weff.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(weff, torch.where(w < 0, -1.0, 1.0) * alpha.view(-1, 1, 1, 1))
        gw = torch.randn(shape, generator=g).contiguous(memory_format=torch.channels_last)
        out = o.ste_weight_grad_direct(gw, w)
        assert out.is_contiguous() and out.stride() == w.stride()
        assert torch.equal(out, gw * (w.abs() <= 1))
        assert (
            out.view(-1)[:4].tolist() == gw.contiguous().view(-1)[:4].tolist()
        )  # |w| ≤ 1 keeps the gradient


def _probe_checksum(rounds: int, starts: range, lanes: int) -> int:
    """``xnor_peak``'s checksum by hand: stream ``s`` holds ``s`` in every 64-bit lane and is XORed with
    0x5555… each round, so odd rounds count popcount(s ^ w), even rounds popcount(s)."""
    w = 0x5555555555555555
    odd, even = (rounds + 1) // 2, rounds // 2
    return lanes * sum(odd * bin(s ^ w).count("1") + even * bin(s).count("1") for s in starts)


@pytest.mark.parametrize(
    ("name", "macs", "rounds_per_iter", "starts", "lanes"),
    [("avx512", 12 * 512, 1, range(12), 8), ("avx2", 31 * 4 * 256, 31, range(1, 5), 4)],
)
def test_peak_probe_does_every_round(name, macs, rounds_per_iter, starts, lanes):
    """The benchmark's XOR+POPCNT+ADD limit probe: the checksum proves every round ran (none folded away) and
    the MAC count the benchmark divides by is the one the loop does."""
    if not cpu.supported(name):
        pytest.skip(f"this CPU lacks the {name} path")
    lib, iters = cpu.lib(), 7
    assert lib.xnor_peak_macs(cpu.ISAS[name]) == macs
    assert lib.xnor_peak(iters, cpu.ISAS[name]) == _probe_checksum(iters * rounds_per_iter, starts, lanes)
    assert lib.xnor_peak(iters, cpu.ISAS["scalar"]) == -1
