/* XNOR-popcount CPU kernels: one translation unit, three instruction sets chosen at run time.
 * Built without -march=native: each ISA body is compiled under its own `#pragma GCC target`. */
#include "xnor_cpu.h"
#include "xnor_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define XNOR_X86 1
#else
#define XNOR_X86 0
#endif

/* Per-thread scratch (im2col rows, padding masks, dot tiles), grown on demand and kept for the thread's next
 * call: a small layer would otherwise spend a visible part of its time in malloc/free on every call. Returns
 * NULL when the allocation fails. The buffer lives as long as the (pooled) thread. */
static _Thread_local struct {
  void *p;
  size_t n;
} xnor_tl_scratch;

static void *xnor_scratch(size_t bytes) {
  if (xnor_tl_scratch.n < bytes) {
    const size_t n = (bytes + 4095) / 4096 * 4096;
    void *q = aligned_alloc(64, n);
    if (!q) return NULL;
    free(xnor_tl_scratch.p);
    xnor_tl_scratch.p = q;
    xnor_tl_scratch.n = n;
  }
  return xnor_tl_scratch.p;
}

#define XNOR_RB 64 /* rows per block of the backward helpers' channel sums */

/* Before an elementwise loop over channels (no loop-carried dependence): in the bodies OpenMP outlines, GCC
 * drops the pointers' restrict and left such loops scalar, with a branch per select (bn_act and prelu_bn_bwd1
 * ran at ~6 ns an element). `omp simd` / `GCC ivdep` let it vectorise them as written: the same operations per
 * element in the same order, so the results do not change. */
#ifdef _OPENMP
#define XNOR_VEC _Pragma("omp simd")
#else
#define XNOR_VEC _Pragma("GCC ivdep")
#endif

#define SFX(name) name##_scalar
#define XNOR_ISA_NOW 0
#include "xnor_impl.h"
#undef SFX
#undef XNOR_ISA_NOW

#if XNOR_X86
#pragma GCC push_options
#pragma GCC target("avx2,popcnt,fma")
#define SFX(name) name##_avx2
#define XNOR_ISA_NOW 1
#include "xnor_impl.h"
/* Throughput probe for the benchmark, the AVX2 kernel's instruction mix: `iters` blocks of 31 rounds of 4
 * independent 256-bit XOR + nibble-table popcount (2 VPSHUFB) + byte ADD chains, each block closed by the
 * VPSADBW + 64-bit ADD that empties the byte counters; returns a checksum. Binary MACs = iters * 31 * 4 * 256. */
#define XNOR_PEAK_AVX2_ROUNDS 31
static int64_t peak_avx2(int64_t iters) {
  const __m256i w = _mm256_set1_epi64x(0x5555555555555555LL), m4 = _mm256_set1_epi8(0x0f);
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                       2, 2, 3, 2, 3, 3, 4);
  const __m256i zero = _mm256_setzero_si256();
  __m256i x0 = _mm256_set1_epi64x(1), x1 = _mm256_set1_epi64x(2), x2 = _mm256_set1_epi64x(3);
  __m256i x3 = _mm256_set1_epi64x(4), acc = zero;
  for (int64_t it = 0; it < iters; it++) {
    __m256i b0 = zero, b1 = zero, b2 = zero, b3 = zero;
    for (int r = 0; r < XNOR_PEAK_AVX2_ROUNDS; r++) {
#define XNOR_PK(i)                                                                                             \
  x##i = _mm256_xor_si256(x##i, w);                                                                            \
  b##i = _mm256_add_epi8(b##i, _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x##i, m4)),            \
                                               _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x##i, 4), m4))));
      XNOR_PK(0) XNOR_PK(1) XNOR_PK(2) XNOR_PK(3)
#undef XNOR_PK
      /* keep the compiler from folding x ^ w ^ w across rounds */
      __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3));
    }
    acc = _mm256_add_epi64(acc, _mm256_add_epi64(_mm256_add_epi64(_mm256_sad_epu8(b0, zero), _mm256_sad_epu8(b1, zero)),
                                                 _mm256_add_epi64(_mm256_sad_epu8(b2, zero), _mm256_sad_epu8(b3, zero))));
  }
  int64_t t[4];
  _mm256_storeu_si256((__m256i *)t, acc);
  return t[0] + t[1] + t[2] + t[3];
}
#undef SFX
#undef XNOR_ISA_NOW
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,popcnt,fma")
#define SFX(name) name##_avx512
#define XNOR_ISA_NOW 2
#include "xnor_impl.h"
/* Throughput probe for the benchmark: `iters` rounds of 12 independent 512-bit XOR + POPCNT + ADD chains;
 * returns a checksum. Binary MACs done = iters * 12 * 512. */
static int64_t peak_avx512(int64_t iters) {
  const __m512i w = _mm512_set1_epi64(0x5555555555555555LL);
#define XNOR_PK(i) __m512i x##i = _mm512_set1_epi64(i), a##i = _mm512_setzero_si512();
  XNOR_PK(0) XNOR_PK(1) XNOR_PK(2) XNOR_PK(3) XNOR_PK(4) XNOR_PK(5)
  XNOR_PK(6) XNOR_PK(7) XNOR_PK(8) XNOR_PK(9) XNOR_PK(10) XNOR_PK(11)
#undef XNOR_PK
  for (int64_t it = 0; it < iters; it++) {
#define XNOR_PK(i) x##i = _mm512_xor_si512(x##i, w); a##i = _mm512_add_epi64(a##i, _mm512_popcnt_epi64(x##i));
    XNOR_PK(0) XNOR_PK(1) XNOR_PK(2) XNOR_PK(3) XNOR_PK(4) XNOR_PK(5)
    XNOR_PK(6) XNOR_PK(7) XNOR_PK(8) XNOR_PK(9) XNOR_PK(10) XNOR_PK(11)
#undef XNOR_PK
    /* keep the compiler from folding x ^ w ^ w across iterations */
    __asm__ volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5), "+v"(x6), "+v"(x7),
                     "+v"(x8), "+v"(x9), "+v"(x10), "+v"(x11));
  }
  __m512i t = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)),
                               _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7)));
  t = _mm512_add_epi64(t, _mm512_add_epi64(_mm512_add_epi64(a8, a9), _mm512_add_epi64(a10, a11)));
  return _mm512_reduce_add_epi64(t);
}
#undef SFX
#undef XNOR_ISA_NOW
#pragma GCC pop_options
#endif

/* fn##_<isa>(...) for a supported `isa`: the instruction-set bodies included above, chosen at run time. */
#if XNOR_X86
#define XNOR_DISPATCH(isa, fn, ...)                                                                            \
  ((isa) == XNOR_ISA_AVX512 ? fn##_avx512(__VA_ARGS__)                                                         \
                            : (isa) == XNOR_ISA_AVX2 ? fn##_avx2(__VA_ARGS__) : fn##_scalar(__VA_ARGS__))
#else
#define XNOR_DISPATCH(isa, fn, ...) fn##_scalar(__VA_ARGS__)
#endif

int64_t xnor_peak(int64_t iters, int64_t isa) {
#if XNOR_X86
  if (isa == XNOR_ISA_AVX512 && xnor_isa_supported(isa)) return peak_avx512(iters);
  if (isa == XNOR_ISA_AVX2 && xnor_isa_supported(isa)) return peak_avx2(iters);
#endif
  (void)iters;
  (void)isa;
  return -1;
}

int64_t xnor_peak_macs(int64_t isa) {
#if XNOR_X86
  if (isa == XNOR_ISA_AVX512) return 12 * 512;
  if (isa == XNOR_ISA_AVX2) return XNOR_PEAK_AVX2_ROUNDS * 4 * 256;
#endif
  (void)isa;
  return 0;
}

int xnor_isa_supported(int64_t isa) {
  if (isa == XNOR_ISA_SCALAR) return 1;
#if XNOR_X86
  __builtin_cpu_init();
  if (isa == XNOR_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
  if (isa == XNOR_ISA_AVX512)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vpopcntdq");
#endif
  return 0;
}

int64_t xnor_best_isa(void) {
  for (int64_t isa = XNOR_ISA_AVX512; isa > XNOR_ISA_SCALAR; isa--)
    if (xnor_isa_supported(isa)) return isa;
  return XNOR_ISA_SCALAR;
}

int xnor_has_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

static int check(const xnor_conv_args *a) {
  if (!a->x || !a->w || a->B <= 0 || a->H <= 0 || a->W <= 0) return -1;
  if (a->cw <= 0 || a->C <= 0 || a->C > 64 * a->cw || a->N <= 0) return -1;
  if (a->kh * a->kw > 64 || a->stride <= 0 || a->pad < 0 || a->Ho <= 0 || a->Wo <= 0) return -1;
  if (a->pad > 0 && !a->tapsum) return -1;
  if (a->res && (a->res_c <= 0 || a->res_h <= 0 || a->res_w <= 0)) return -1;
  if (a->rp_slope && (!a->rp_b1 || !a->rp_b2)) return -1;
  if (!xnor_isa_supported(a->isa)) return -3;
  return 0;
}

int xnor_conv(const xnor_conv_args *a) {
  const int e = check(a);
  if (e) return e;
  return XNOR_DISPATCH(a->isa, conv, a);
}

int xnor_conv_repeat(const xnor_conv_args *a, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const int e = xnor_conv(a);
    if (e) return e;
  }
  return 0;
}

int xnor_pack(const float *x, int64_t rows, int64_t C, const float *bias, uint64_t *out, int64_t cw,
              int64_t nthreads, int64_t isa) {
  if (!x || !out || C <= 0 || cw * 64 < C) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  XNOR_DISPATCH(isa, pack, x, rows, C, bias, out, cw, nthreads);
  return 0;
}

int xnor_pack_weights(const float *w, int64_t N, int64_t C, int64_t taps, uint64_t *panels, int32_t *tapsum,
                      float *alpha) {
  if (!w || !panels || !tapsum || N <= 0 || C <= 0 || taps <= 0) return -1;
  const int64_t cw = (C + 63) / 64, kwords = taps * cw, npan = (N + XNOR_PANEL - 1) / XNOR_PANEL;
  memset(panels, 0, (size_t)(npan * kwords * XNOR_PANEL) * sizeof(uint64_t));
  uint64_t *word = (uint64_t *)malloc((size_t)kwords * sizeof(uint64_t));
  int32_t *neg = (int32_t *)malloc((size_t)taps * sizeof(int32_t));
  if (!word || !neg) {
    free(word);
    free(neg);
    return -2;
  }
  for (int64_t n = 0; n < N; n++) {
    uint64_t *dst = panels + (n / XNOR_PANEL) * kwords * XNOR_PANEL + n % XNOR_PANEL;
    const float *wn = w + n * C * taps;
    memset(word, 0, (size_t)kwords * sizeof(uint64_t));
    memset(neg, 0, (size_t)taps * sizeof(int32_t));
    double asum = 0.0;
    for (int64_t c = 0; c < C; c++) { /* w[n][c][0..taps) is contiguous: read in order, set bit c of each tap */
      const float *wc = wn + c * taps;
      const int64_t q = c >> 6, sh = c & 63;
      for (int64_t t = 0; t < taps; t++) {
        const uint64_t bit = xnor_bit(wc[t]);
        word[t * cw + q] |= bit << sh;
        neg[t] += (int32_t)bit;
        asum += fabs((double)wc[t]);
      }
    }
    for (int64_t k = 0; k < kwords; k++) dst[k * XNOR_PANEL] = word[k];
    for (int64_t t = 0; t < taps; t++) tapsum[n * taps + t] = (int32_t)C - 2 * neg[t];
    if (alpha) alpha[n] = (float)(asum / (double)(C * taps));
  }
  free(word);
  free(neg);
  return 0;
}

int64_t xnor_add_chain(int64_t n) {
  /* n dependent 1-cycle adds (8 per loop iteration, so loop overhead hides under the chain): n cycles. */
  int64_t v = 0;
  for (int64_t i = 0; i < n; i += 8) {
#if XNOR_X86
    __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                     "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
                     : "+r"(v)
                     : "r"(i));
#else
    v += i;
    __asm__ volatile("" : "+r"(v));
#endif
  }
  return v;
}

/* Sum `nb` blocks of `width` floats in block order, in double: out[j] = sum_b part[b*width + j]. */
static void sum_blocks(const float *part, int64_t nb, int64_t width, float *out) {
  for (int64_t j = 0; j < width; j++) {
    double acc = 0.0;
    for (int64_t b = 0; b < nb; b++) acc += (double)part[b * width + j];
    out[j] = (float)acc;
  }
}

int xnor_pm1(const float *x, int64_t rows, int64_t C, const float *bias, float *out, int64_t nthreads, int64_t isa) {
  if (!x || !out || rows < 0 || C <= 0) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  XNOR_DISPATCH(isa, pm1, x, rows, C, bias, out, nthreads);
  return 0;
}

int xnor_approxsign_backward(const float *g, const float *x, int64_t rows, int64_t C, const float *bias,
                             const float *add, float *out, float *csum, int64_t nthreads, int64_t isa) {
  if (!g || !x || !out || !csum || rows <= 0 || C <= 0) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
  float *part = (float *)malloc((size_t)(nb * C) * sizeof(float));
  if (!part) return -2;
  XNOR_DISPATCH(isa, approxsign_bwd, g, x, rows, C, bias, add, out, part, nthreads);
  sum_blocks(part, nb, C, csum);
  free(part);
  return 0;
}

int xnor_prelu_bn_backward(const float *g, const float *t, const float *slope, const float *y, const float *mean,
                           const float *invstd, const float *gamma, int64_t rows, int64_t C, float *gt, float *gy,
                           float *sums, int64_t nthreads, int64_t isa) {
  if (!g || !t || !slope || !y || !mean || !invstd || !gamma || !gt || !gy || !sums || rows <= 0 || C <= 0)
    return -1;
  if (!xnor_isa_supported(isa)) return -3;
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
  float *part = (float *)malloc((size_t)(nb * 4 * C + 3 * C) * sizeof(float));
  if (!part) return -2;
  float *k = part + nb * 4 * C;
  XNOR_DISPATCH(isa, prelu_bn_bwd1, g, t, slope, y, mean, rows, C, gt, part, nthreads);
  sum_blocks(part, nb, 4 * C, sums); /* sums[0..3][C]: g, gt, slope gradient, gt * (y - mean) */
  for (int64_t c = 0; c < C; c++) {
    const double is = invstd[c], s3 = sums[3 * C + c];
    k[c] = gamma[c] * invstd[c];
    k[C + c] = (float)((double)sums[C + c] / (double)rows);
    k[2 * C + c] = (float)(is * is * s3 / (double)rows);
    sums[3 * C + c] = (float)(s3 * is); /* the BN weight gradient: sum of gt * xhat */
  }
  XNOR_DISPATCH(isa, bn_bwd2, gt, y, mean, k, rows, C, gy, nthreads);
  free(part);
  return 0;
}

int xnor_weff(const float *w, int64_t O, int64_t I, int64_t taps, const float *alpha, float *out, int64_t isa) {
  if (!w || !alpha || !out || O <= 0 || I <= 0 || taps <= 0) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  XNOR_DISPATCH(isa, weff, w, O, I, taps, alpha, out);
  return 0;
}

int xnor_ste_weight_grad(const float *gw, const float *w, int64_t O, int64_t I, int64_t taps, float *out,
                         int64_t isa) {
  if (!gw || !w || !out || O <= 0 || I <= 0 || taps <= 0) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  XNOR_DISPATCH(isa, ste_wgrad, gw, w, O, I, taps, out);
  return 0;
}

#include "xnor_amx.h"

int xnor_bn_act_train(const float *y, int64_t rows, int64_t C, const float *gamma, const float *beta, float *rm,
                      float *rv, double momentum, double eps, const float *res, int64_t res_c, const float *b1,
                      const float *slope, const float *b2, float *mean, float *invstd, float *t, float *h,
                      int64_t nthreads, int64_t isa) {
  if (!y || !gamma || !beta || !rm || !rv || !res || !b1 || !slope || !b2 || !mean || !invstd || !t || !h)
    return -1;
  if (rows <= 0 || C <= 0 || res_c <= 0 || C % res_c) return -1;
  if (!xnor_isa_supported(isa)) return -3;
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
  float *part = (float *)malloc((size_t)(nb * C + 2 * C) * sizeof(float));
  if (!part) return -2;
  float *var = part + nb * C, *scale = var + C;
  XNOR_DISPATCH(isa, bn_sums, y, rows, C, NULL, part, nthreads);
  sum_blocks(part, nb, C, mean);
  for (int64_t c = 0; c < C; c++) mean[c] = (float)((double)mean[c] / (double)rows);
  XNOR_DISPATCH(isa, bn_sums, y, rows, C, mean, part, nthreads);
  sum_blocks(part, nb, C, var);
  const float m = (float)momentum, unbias = (float)((double)rows / (double)(rows > 1 ? rows - 1 : 1));
  for (int64_t c = 0; c < C; c++) {
    var[c] = (float)((double)var[c] / (double)rows);
    invstd[c] = (float)(1.0 / sqrt((double)var[c] + eps));
    scale[c] = invstd[c] * gamma[c];
    rm[c] = (1.0f - m) * rm[c] + m * mean[c];
    rv[c] = (1.0f - m) * rv[c] + m * (var[c] * unbias);
  }
  XNOR_DISPATCH(isa, bn_act, y, rows, C, mean, scale, beta, res, res_c, b1, slope, b2, t, h, nthreads);
  free(part);
  return 0;
}
