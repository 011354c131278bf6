// XNOR binary convolution on NVIDIA tensor cores: implicit GEMM with the b1 AND-popcount MMA
// (mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc, sm_80+; Hopper has no native XOR b1 MMA)
// and the rank-1 correction dot = K - 2*popc(A) - 2*popc(W) + 4*popc(A&W) (xnor_math.h), exact zero
// padding (padded taps load +1 words, then subtract tapsum[n][tap]) and the fused ReActNet epilogue.
// No torch headers: xnor_cuda_binding.cpp calls the extern "C" launchers. Words are uint32 here: the same
// bits as the CPU's uint64 words (little-endian), so packed tensors are shared.
#include <cuda_runtime.h>
#include <stdint.h>

#include "xnor_math.h"

extern "C" {
typedef struct {
  const uint32_t *x;  // packed NHWC input, cw32 words per pixel
  int64_t B, H, W, cw32, C;
  const uint32_t *w;  // OHWI weight rows [N][kh*kw*cw32]
  const int32_t *tapsum;  // [N][kh*kw] sum_c sign(w)
  const int32_t *wpop;    // [N] popcount of each weight row
  int64_t N, kh, kw, stride, pad, Ho, Wo;
  const float *scale, *shift, *res;
  int64_t res_c, res_h, res_w, res_pool;
  const float *rp_b1, *rp_slope, *rp_b2, *next_bias;
  int32_t *out_int;
  float *out_f;
  unsigned long long *out_bits;  // [M][ceil(N/64)]
} xnor_cuda_conv_args;
}

#define WARPS 4
#define NT 8  // n8 tiles per warp: 64 output channels = one packed output word

__device__ __forceinline__ void bmma_and_popc(int32_t (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // built only for sm_80+; the loader refuses older devices
#endif
}

struct PixelRow {
  int64_t m, b, h0, w0;
  bool valid;
};

__device__ __forceinline__ uint32_t load_a(const xnor_cuda_conv_args &p, const PixelRow &r, int64_t kword,
                                           int64_t kwords) {
  if (!r.valid || kword >= kwords) return 0u;
  const int64_t tap = kword / p.cw32, word = kword - tap * p.cw32;
  const int64_t hi = r.h0 + tap / p.kw, wi = r.w0 + tap % p.kw;
  if (hi < 0 || hi >= p.H || wi < 0 || wi >= p.W) return 0u;  // zero padding: +1 bits, corrected later
  return __ldg(p.x + ((r.b * p.H + hi) * p.W + wi) * p.cw32 + word);
}

__global__ void __launch_bounds__(WARPS * 32) xnor_conv_bmma_kernel(xnor_cuda_conv_args p) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, g = lane >> 2, tig = lane & 3;
  const int64_t M = p.B * p.Ho * p.Wo, taps = p.kh * p.kw, kwords = taps * p.cw32;
  const int64_t kchunks = (kwords + 7) / 8, n_base = (int64_t)blockIdx.y * 64;
  const int32_t kreal = (int32_t)(taps * p.C);
  PixelRow rows[2];
  for (int r = 0; r < 2; ++r) {
    const int64_t m = ((int64_t)blockIdx.x * WARPS + warp) * 16 + g + 8 * r;
    rows[r].m = m;
    rows[r].valid = m < M;
    const int64_t wo = m % p.Wo, ho = (m / p.Wo) % p.Ho;
    rows[r].b = m / (p.Wo * p.Ho);
    rows[r].h0 = ho * p.stride - p.pad;
    rows[r].w0 = wo * p.stride - p.pad;
  }
  int32_t acc[NT][4];
#pragma unroll
  for (int j = 0; j < NT; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0;
  int32_t pop_a[2] = {0, 0};
  for (int64_t kc = 0; kc < kchunks; ++kc) {
    uint32_t a[4];
#pragma unroll
    for (int reg = 0; reg < 4; ++reg) {
      int row, kw;
      xnor_frag_a(lane, reg, &row, &kw);
      a[reg] = load_a(p, rows[row >= 8], kc * 8 + kw, kwords);
      pop_a[row >= 8] += __popc(a[reg]);
    }
#pragma unroll
    for (int j = 0; j < NT; ++j) {
      uint32_t b[2];
#pragma unroll
      for (int reg = 0; reg < 2; ++reg) {
        int col, kw;
        xnor_frag_b(lane, reg, &col, &kw);
        const int64_t n = n_base + j * 8 + col, k = kc * 8 + kw;
        b[reg] = (n < p.N && k < kwords) ? __ldg(p.w + n * kwords + k) : 0u;
      }
      bmma_and_popc(acc[j], a, b);
    }
  }
  // popc(A row) over the whole K: the four lanes of a group hold disjoint words of rows g and g+8
  for (int r = 0; r < 2; ++r) {
    pop_a[r] += __shfl_xor_sync(0xffffffffu, pop_a[r], 1);
    pop_a[r] += __shfl_xor_sync(0xffffffffu, pop_a[r], 2);
  }
  unsigned long long padmask[2] = {0ull, 0ull};
  for (int r = 0; r < 2; ++r)
    for (int64_t t = 0; t < taps && rows[r].valid; ++t) {
      const int64_t hi = rows[r].h0 + t / p.kw, wi = rows[r].w0 + t % p.kw;
      if (hi < 0 || hi >= p.H || wi < 0 || wi >= p.W) padmask[r] |= 1ull << t;
    }
  const int64_t nw = (p.N + 63) / 64;
  unsigned long long bits[2] = {0ull, 0ull};
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      int row, col;
      xnor_frag_c(lane, i, &row, &col);
      const PixelRow &pr = rows[row >= 8];
      const int64_t n = n_base + j * 8 + col;
      if (!pr.valid || n >= p.N) continue;
      int32_t dot = xnor_dot_and(kreal, pop_a[row >= 8], p.wpop[n], acc[j][i]);
      for (unsigned long long pm = padmask[row >= 8]; pm; pm &= pm - 1) dot -= p.tapsum[n * taps + __ffsll(pm) - 1];
      const int64_t m = pr.m;
      if (p.out_int) p.out_int[m * p.N + n] = dot;
      if (!p.out_f && !p.out_bits) continue;
      float y = xnor_affine(dot, p.scale ? p.scale[n] : 1.0f, p.shift ? p.shift[n] : 0.0f);
      if (p.res) {
        const int64_t wo = m % p.Wo, ho = (m / p.Wo) % p.Ho, rc = n % p.res_c;
        if (p.res_pool) {
          const float *q = p.res + ((pr.b * p.res_h + 2 * ho) * p.res_w + 2 * wo) * p.res_c + rc;
          y += xnor_pool4(q[0], q[p.res_c], q[p.res_w * p.res_c], q[p.res_w * p.res_c + p.res_c]);
        } else {
          y += p.res[((pr.b * p.res_h + ho) * p.res_w + wo) * p.res_c + rc];
        }
      }
      if (p.rp_slope) y = xnor_rprelu(y, p.rp_b1[n], p.rp_slope[n], p.rp_b2[n]);
      if (p.out_f) p.out_f[m * p.N + n] = y;
      const float v = p.next_bias ? y + p.next_bias[n] : y;
      bits[row >= 8] |= (unsigned long long)xnor_bit(v) << (j * 8 + col);
    }
  }
  for (int r = 0; r < 2; ++r) {
    bits[r] |= __shfl_xor_sync(0xffffffffu, bits[r], 1);
    bits[r] |= __shfl_xor_sync(0xffffffffu, bits[r], 2);
    if (p.out_bits && tig == 0 && rows[r].valid) p.out_bits[rows[r].m * nw + blockIdx.y] = bits[r];
  }
}

__global__ void xnor_sign_pack_kernel(const float *x, int64_t rows, int64_t C, const float *bias, uint32_t *out,
                                      int64_t cw32) {
  const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= rows * cw32) return;
  const int64_t r = i / cw32, wd = i % cw32, c0 = 32 * wd;
  uint32_t word = 0;
  for (int64_t c = c0; c < C && c < c0 + 32; ++c) word |= xnor_bit(x[r * C + c] + (bias ? bias[c] : 0.0f)) << (c - c0);
  out[i] = word;
}

// G0 microbenchmark: the b1 AND-popc MMA issue rate with no memory traffic in the loop. Each warp loads one
// A and one B fragment (6 words per lane, from `in`), then runs PEAK_CHAINS independent accumulator chains of
// `iters` MMAs each; out[(warp * 32 + lane) * 4 + i] = sum over chains of D[i], so iters MMAs give exactly
// iters times the single-MMA result (the benchmark checks that, proving no MMA was dropped).
#define PEAK_CHAINS 8

__global__ void xnor_bmma_peak_kernel(const uint32_t *in, int32_t *out, int64_t iters) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  uint32_t a[4], b[2];
#pragma unroll
  for (int r = 0; r < 4; ++r) a[r] = __ldg(in + lane * 6 + r);
  b[0] = __ldg(in + lane * 6 + 4);
  b[1] = __ldg(in + lane * 6 + 5);
  int32_t acc[PEAK_CHAINS][4];
#pragma unroll
  for (int c = 0; c < PEAK_CHAINS; ++c) acc[c][0] = acc[c][1] = acc[c][2] = acc[c][3] = 0;
  for (int64_t it = 0; it < iters; ++it) {
#pragma unroll
    for (int c = 0; c < PEAK_CHAINS; ++c) bmma_and_popc(acc[c], a, b);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    int32_t s = 0;
#pragma unroll
    for (int c = 0; c < PEAK_CHAINS; ++c) s += acc[c][i];
    out[(warp * 32 + lane) * 4 + i] = s;
  }
}

extern "C" int xnor_cuda_bmma_peak(const uint32_t *in, int32_t *out, int64_t iters, int64_t blocks,
                                   int64_t threads, cudaStream_t stream) {
  if (blocks <= 0 || threads <= 0 || threads % 32 || threads > 1024 || iters <= 0) return -1;
  xnor_bmma_peak_kernel<<<(unsigned)blocks, (unsigned)threads, 0, stream>>>(in, out, iters);
  return (int)cudaGetLastError();
}

extern "C" int xnor_cuda_bmma_chains(void) { return PEAK_CHAINS; }

extern "C" int xnor_cuda_conv(const xnor_cuda_conv_args *p, cudaStream_t stream) {
  const int64_t M = p->B * p->Ho * p->Wo;
  if (p->kh * p->kw > 64 || M <= 0 || p->N <= 0) return -1;
  const dim3 grid((unsigned)((M + 16 * WARPS - 1) / (16 * WARPS)), (unsigned)((p->N + 63) / 64));
  xnor_conv_bmma_kernel<<<grid, WARPS * 32, 0, stream>>>(*p);
  return (int)cudaGetLastError();
}

extern "C" int xnor_cuda_sign_pack(const float *x, int64_t rows, int64_t C, const float *bias, uint32_t *out,
                                   int64_t cw32, cudaStream_t stream) {
  const int64_t n = rows * cw32;
  if (n == 0) return 0;
  xnor_sign_pack_kernel<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(x, rows, C, bias, out, cw32);
  return (int)cudaGetLastError();
}
