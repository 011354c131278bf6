"""CUDA XNOR kernel: host-compiled checks of its device-independent math (g++ and nvcc), the SASS check that
nvcc emits the b1 AND-popc tensor-core MMA for sm_90, and exactness on a GPU (``gpu`` marker)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ltbench.binary import pack
from ltbench.binary.kernels import cuda as kcuda

KDIR = Path(kcuda.HERE)

SELFTEST = r"""
#include <stdio.h>
#include <stdlib.h>
#include "xnor_math.h"

static int popc(uint32_t v) { return __builtin_popcount(v); }
static uint32_t rnd(uint32_t *s) { *s ^= *s << 13; *s ^= *s >> 17; *s ^= *s << 5; return *s; }

int main(void) {
  int bad = 0;
  /* 1. Fragment maps equal the PTX ISA formulas (element i of a lane's fragment -> row/col), bit by bit. */
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane >> 2, t = lane % 4;
    for (int i = 0; i < 128; i++) {            /* A: 4 regs x 32 bits */
      const int row_doc = (i < 32 || (i >= 64 && i < 96)) ? g : g + 8;
      const int k_doc = (i < 64) ? t * 32 + (i & 31) : t * 32 + (i & 31) + 128;
      int row, kw; xnor_frag_a(lane, i / 32, &row, &kw);
      bad += (row != row_doc) || (kw * 32 + (i & 31) != k_doc);
    }
    for (int i = 0; i < 64; i++) {             /* B: 2 regs x 32 bits */
      const int k_doc = (i < 32) ? t * 32 + (i & 31) : t * 32 + (i & 31) + 128;
      int col, kw; xnor_frag_b(lane, i / 32, &col, &kw);
      bad += (col != g) || (kw * 32 + (i & 31) != k_doc);
    }
    for (int i = 0; i < 4; i++) {              /* C/D */
      int row, col; xnor_frag_c(lane, i, &row, &col);
      bad += (row != (i < 2 ? g : g + 8)) || (col != t * 2 + (i & 1));
    }
  }
  if (bad) { printf("fragment maps differ from the PTX layout: %d\n", bad); return 1; }
  /* 2. Emulate one m16n8k256 AND.popc through the maps and check every output against the +-1 sum. */
  uint32_t s = 12345u, A[16][8], B[8][8];
  for (int r = 0; r < 16; r++) for (int w = 0; w < 8; w++) A[r][w] = rnd(&s);
  for (int c = 0; c < 8; c++) for (int w = 0; w < 8; w++) B[c][w] = rnd(&s);
  /* rebuild the matrices the hardware sees from the registers each lane loads (PTX semantics) */
  uint32_t Ahw[16][8] = {{0}}, Bhw[8][8] = {{0}};
  for (int lane = 0; lane < 32; lane++) {
    const int g = lane >> 2, t = lane % 4;
    for (int r = 0; r < 4; r++) {
      int row, kw; xnor_frag_a(lane, r, &row, &kw);
      const uint32_t reg = A[row][kw];
      for (int bit = 0; bit < 32; bit++) {
        const int i = r * 32 + bit, row_doc = (i < 32 || (i >= 64 && i < 96)) ? g : g + 8;
        const int k_doc = (i < 64) ? t * 32 + (i & 31) : t * 32 + (i & 31) + 128;
        Ahw[row_doc][k_doc / 32] |= ((reg >> bit) & 1u) << (k_doc % 32);
      }
    }
    for (int r = 0; r < 2; r++) {
      int col, kw; xnor_frag_b(lane, r, &col, &kw);
      const uint32_t reg = B[col][kw];
      for (int bit = 0; bit < 32; bit++) {
        const int j = r * 32 + bit, k_doc = (j < 32) ? t * 32 + (j & 31) : t * 32 + (j & 31) + 128;
        Bhw[g][k_doc / 32] |= ((reg >> bit) & 1u) << (k_doc % 32);
      }
    }
  }
  for (int r = 0; r < 16; r++) for (int w = 0; w < 8; w++) bad += Ahw[r][w] != A[r][w];
  for (int c = 0; c < 8; c++) for (int w = 0; w < 8; w++) bad += Bhw[c][w] != B[c][w];
  int D[16][8] = {{0}};
  for (int r = 0; r < 16; r++) for (int c = 0; c < 8; c++) {
    int pa = 0, pb = 0, pand = 0, sum = 0;
    for (int w = 0; w < 8; w++) { pa += popc(A[r][w]); pb += popc(B[c][w]); pand += popc(A[r][w] & B[c][w]); }
    for (int k = 0; k < 256; k++) {
      const int x = ((A[r][k / 32] >> (k % 32)) & 1) ? -1 : 1, y = ((B[c][k / 32] >> (k % 32)) & 1) ? -1 : 1;
      sum += x * y;
    }
    int pxor = 0; for (int w = 0; w < 8; w++) pxor += popc(A[r][w] ^ B[c][w]);
    D[r][c] = xnor_dot_and(256, pa, pb, pand);
    bad += D[r][c] != sum;
    bad += xnor_dot_xor(256, pxor) != sum;
  }
  /* K not a multiple of the word size: pad bits are 0 on both sides, K is the real count */
  {
    const uint32_t a = 0x0000ABCDu & 0x1FFFFu, b = 0x00012345u & 0x1FFFFu; /* K = 17 */
    int sum = 0;
    for (int k = 0; k < 17; k++) sum += (((a >> k) & 1) ? -1 : 1) * (((b >> k) & 1) ? -1 : 1);
    bad += xnor_dot_and(17, popc(a), popc(b), popc(a & b)) != sum;
  }
  if (bad) { printf("dot identities wrong: %d\n", bad); return 1; }
  /* 3. Epilogue steps. */
  bad += xnor_affine(7, 0.5f, -1.0f) != 2.5f;
  bad += xnor_pool4(1.0f, 2.0f, 3.0f, 6.0f) != 3.0f;
  bad += xnor_rprelu(-2.0f, 1.0f, 0.25f, 0.5f) != 0.25f;
  bad += xnor_rprelu(2.0f, 1.0f, 0.25f, 0.5f) != 3.5f;
  bad += xnor_bit(-0.0f) != 0u || xnor_bit(0.0f) != 0u || xnor_bit(-1e-30f) != 1u;
  bad += xnor_bit(__builtin_nanf("")) != 0u;
  if (bad) { printf("epilogue wrong: %d\n", bad); return 1; }
  printf("OK\n");
  return 0;
}
"""


def _nvcc() -> str | None:
    return shutil.which("nvcc")


def _run_selftest(tmp_path: Path, compiler: list[str]) -> None:
    src = tmp_path / "selftest.cu"
    src.write_text(SELFTEST)
    exe = tmp_path / "selftest"
    proc = subprocess.run([*compiler, f"-I{KDIR}", str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stdout


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_device_math_on_host_gcc(tmp_path):
    _run_selftest(tmp_path, ["g++", "-O1", "-x", "c++"])


@pytest.mark.skipif(_nvcc() is None, reason="no nvcc")
def test_device_math_on_host_nvcc(tmp_path):
    """The same checks with nvcc compiling the header as CUDA (__host__ __device__ functions, host side)."""
    _run_selftest(tmp_path, [_nvcc(), "-x", "cu", "-O1"])


@pytest.mark.skipif(_nvcc() is None, reason="no nvcc")
def test_cuda_kernel_sass_has_bmma_and_popc(tmp_path):
    tool = kcuda.sass_tool()
    if tool is None:
        pytest.skip("no cuobjdump/nvdisasm (pip install nvidia-cuda-cuobjdump, or triton's bundled copy)")
    cubin = tmp_path / "xnor.cubin"
    cmd = [_nvcc(), "-std=c++17", *kcuda.nvcc_flags((9, 0)), "-cubin"]  # the loader's flags for Hopper
    proc = subprocess.run(
        [*cmd, str(KDIR / "xnor_cuda_kernels.cu"), "-o", str(cubin)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sass = subprocess.run([*tool, str(cubin)], capture_output=True, text=True, check=True).stdout
    assert "BMMA.168256.AND.POPC" in sass
    assert "XOR.POPC" not in sass  # Hopper emulates the XOR form with two AND MMAs: never used
    # G0's peak kernel keeps its 8 independent MMA chains in registers (no local-memory spills in the loop)
    peak = sass[sass.index("xnor_bmma_peak_kernel") :]
    peak = peak[: peak.index("Function :")] if "Function :" in peak else peak
    assert peak.count("BMMA.168256.AND.POPC") >= 8 and "STL" not in peak


def test_loader_targets_sm_90a_on_hopper():
    """Hopper builds use the arch-specific sm_90a target (the issue's -gencode); Ampere keeps plain sm_80/86."""
    assert "-gencode=arch=compute_90a,code=sm_90a" in kcuda.nvcc_flags((9, 0))
    assert "-gencode=arch=compute_80,code=sm_80" in kcuda.nvcc_flags((8, 0))
    assert "-gencode=arch=compute_86,code=sm_86" in kcuda.nvcc_flags((8, 6))


gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def _ops():
    ok, why = kcuda.status()
    if not ok:
        pytest.fail(f"CUDA kernel unavailable on a CUDA machine: {why}")
    from ltbench.binary import ops

    return ops


@gpu
@needs_cuda
@pytest.mark.parametrize(
    ("b", "c", "n", "h", "w", "k", "stride", "pad"),
    [
        (1, 32, 32, 9, 9, 3, 1, 1),
        (2, 64, 70, 8, 6, 3, 2, 1),
        (1, 512, 40, 5, 5, 3, 1, 1),
        (1, 1024, 33, 3, 3, 3, 1, 1),
        (2, 65, 31, 7, 7, 3, 2, 1),
        (3, 1000, 130, 4, 4, 1, 1, 0),
        (1, 128, 256, 4, 4, 1, 1, 0),  # 1×1 (direct GEMM on the NHWC input)
        (1, 40, 8, 6, 6, 1, 2, 0),  # 1×1 strided
        (1, 7, 5, 6, 5, 5, 1, 2),
        (3, 256, 200, 14, 13, 3, 1, 1),  # M = 546 (not a multiple of 64 rows), 4 column blocks, last partial
        (2, 128, 64, 28, 28, 3, 2, 1),  # stride 2 over many row blocks
    ],
)
def test_cuda_conv_exact(b, c, n, h, w, k, stride, pad):
    ops = _ops()
    g = torch.Generator().manual_seed(c + n)
    x, wt = torch.randn(b, c, h, w, generator=g), torch.randn(n, c, k, k, generator=g)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, float("nan")])
    pw = pack.pack_conv(wt, stride, pad)
    xb = ops.sign_pack(x.permute(0, 2, 3, 1).contiguous().cuda())
    assert torch.equal(xb.cpu(), pack.pack_bits(x.permute(0, 2, 3, 1)))
    out = ops.xnor_conv(xb, pw.rows.cuda(), pw.tapsum.cuda(), c, n, k, k, stride, pad).cpu()
    assert_exact(out, ref_conv(x, wt, stride, pad))


def ref_conv(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """float64 conv of the ±1 tensors (sign(0) = +1, NaN → +1), NHWC, on the CPU."""
    xs, ws = pack.sign_pm1(x).double(), pack.sign_pm1(w).double()
    return F.conv2d(xs, ws, stride=stride, padding=pad).permute(0, 2, 3, 1)


def assert_exact(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert out.dtype == torch.int32 and out.shape == ref.shape
    assert torch.equal(out.double(), ref), f"max |diff| {(out.double() - ref).abs().max().item()}"


def cuda_conv(ops, x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    pw = pack.pack_conv(w, stride, pad)
    xb = ops.sign_pack(x.permute(0, 2, 3, 1).contiguous().cuda())
    n, c, kh, kw = w.shape
    return ops.xnor_conv(xb, pw.rows.cuda(), pw.tapsum.cuda(), c, n, kh, kw, stride, pad).cpu()


@gpu
@needs_cuda
@pytest.mark.parametrize("k", [288, 576, 4608, 9216, 65, 1000])
def test_cuda_gemm_exact(k):
    ops = _ops()
    g = torch.Generator().manual_seed(k)
    m, n = 13, 97  # M below one 16-row MMA tile pair, N off the 8-column tile
    a, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    pw = pack.pack_linear(w)
    out = ops.xnor_gemm(ops.sign_pack(a.cuda()), pw.rows.cuda(), k, n).cpu()
    assert_exact(out, pack.sign_pm1(a).double() @ pack.sign_pm1(w).double().T)


@gpu
@needs_cuda
def test_cuda_gemm_all_equal_and_special_values():
    ops = _ops()
    k, n = 1000, 33
    a = torch.stack([torch.ones(k), -torch.ones(k), torch.zeros(k), torch.full((k,), -0.0)])
    a = torch.cat([a, torch.full((1, k), float("nan"))])
    w = torch.cat([torch.ones(n - 1, k), -torch.ones(1, k)])
    out = ops.xnor_gemm(ops.sign_pack(a.cuda()), pack.pack_linear(w).rows.cuda(), k, n).cpu()
    # rows: +1, −1, 0 (→ +1), −0.0 (→ +1), NaN (→ +1); the last weight row is all −1
    expect = torch.tensor([k, -k, k, k, k], dtype=torch.int32)
    assert torch.equal(out[:, 0], expect) and torch.equal(out[:, -1], -expect)


@gpu
@needs_cuda
def test_cuda_conv_all_equal_inputs_padding_is_zero():
    """All −1 input and weights: an interior pixel sums to +K; border pixels lose their padded taps."""
    out = cuda_conv(_ops(), -torch.ones(1, 64, 4, 4), -torch.ones(3, 64, 3, 3), 1, 1)[0, :, :, 0]
    expect = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=torch.int32) * 64
    assert torch.equal(out, expect)


@gpu
@needs_cuda
def test_cuda_conv_special_values():
    x = torch.randn(1, 66, 5, 5, generator=torch.Generator().manual_seed(3))
    x[0, ::4] = 0.0
    x[0, 1::4] = -0.0
    x[0, 2::4, 2] = float("nan")
    w = torch.randn(9, 66, 3, 3, generator=torch.Generator().manual_seed(4))
    w[:, :5] = 0.0
    assert_exact(cuda_conv(_ops(), x, w, 1, 1), ref_conv(x, w, 1, 1))


@gpu
@needs_cuda
def test_cuda_custom_op_under_compile():
    """The CUDA kernel behind ``torch.compile(fullgraph=True)`` (the ops are opaque, fake kernels give shapes)."""
    ops = _ops()
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(1, 70, 6, 6, generator=g), torch.randn(33, 70, 3, 3, generator=g)
    pw = pack.pack_conv(w, 1, 1)
    rows, tapsum = pw.rows.cuda(), pw.tapsum.cuda()

    def f(xf):
        return ops.xnor_conv(ops.sign_pack(xf), rows, tapsum, 70, 33, 3, 3, 1, 1)

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    assert_exact(compiled(x.permute(0, 2, 3, 1).contiguous().cuda()).cpu(), ref_conv(x, w, 1, 1))


@gpu
@needs_cuda
def test_cuda_bmma_peak_runs_every_mma():
    """G0's kernel: ``iters`` MMAs on the same fragments give exactly ``iters`` × the one-MMA result."""
    _ops()
    ext = kcuda.ext()
    words = torch.randint(-(2**31), 2**31, (192,), dtype=torch.int64).to(torch.int32).cuda()
    blocks, threads = 4, 128
    outs = []
    for iters in (1, 37):
        out = torch.full((blocks * threads * 4,), -7, dtype=torch.int32, device="cuda")  # poisoned
        ext.bmma_peak(words, out, iters, blocks, threads)
        outs.append(out.cpu())
    one, many = outs
    chains = ext.BMMA_PEAK_CHAINS
    assert (one % chains == 0).all() and (one >= 0).all() and (one <= chains * 256).all() and one.any()
    assert torch.equal(many, one * 37)


@gpu
@needs_cuda
@pytest.mark.parametrize(("pool", "concat"), [(False, False), (True, False), (False, True), (True, True)])
def test_cuda_fused_matches_cpu_kernel(pool, concat):
    ops = _ops()
    g = torch.Generator().manual_seed(9)
    c = 96
    n = 2 * c if concat else c
    stride = 2 if pool else 1
    x, wt = torch.randn(2, c, 8, 8, generator=g), torch.randn(n, c, 3, 3, generator=g)
    pw = pack.pack_conv(wt, stride, 1)
    xb = ops.sign_pack(x.permute(0, 2, 3, 1).contiguous())
    res = torch.randn(2, 8, 8, c, generator=g)
    vecs = [torch.randn(n, generator=g) for _ in range(6)]
    args = (
        vecs[0],
        vecs[1],
        res,
        vecs[2],
        vecs[3].abs() * 0.2,
        vecs[4],
        vecs[5],
        c,
        n,
        3,
        3,
        stride,
        1,
        pool,
        True,
    )
    y_cpu, b_cpu = ops.xnor_conv_fused(xb, pw.panels, pw.tapsum, *args)
    cuda_args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in args]
    y_gpu, b_gpu = ops.xnor_conv_fused(xb.cuda(), pw.rows.cuda(), pw.tapsum.cuda(), *cuda_args)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-5, atol=1e-4)
    pre = y_cpu + vecs[5]  # the value whose sign is packed
    mism = pack.unpack_bits(b_gpu.cpu(), n) != pack.unpack_bits(b_cpu, n)
    assert not (mism & (pre.abs() > 1e-4)).any()  # a bit may differ only within rounding of zero


@gpu
@needs_cuda
def test_cuda_packed_reactnet_same_predictions():
    _ops()
    from ltbench.binary.packed import PackedReActNet
    from tests.test_packed import randomized

    model = randomized("reactnet-a", num_classes=100)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        ref = model(x).argmax(1)
        out = PackedReActNet(model).cuda()(x.cuda()).argmax(1).cpu()
    assert torch.equal(out, ref)
