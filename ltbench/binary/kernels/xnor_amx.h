/* The float gradients of a binary convolution on Intel AMX (AMX-BF16), exact to float32 rounding.
 *
 * Both gradients of y = conv(a, α·sign(W)) with a = sign(x + bias) = ±1 are products of a float matrix with a
 * ±1 matrix: the weight gradient g_yᵀ · im2col(a), the input gradient fold((g_y·α) · sign(W)). ±1 is exact in
 * bfloat16, and a float32 f is exactly hi + mid + lo with three bfloat16 pieces (round to nearest each time; each
 * captures 8 bits and the remainder of a 24-bit mantissa fits the next). A bf16 × bf16 product is exact in float32,
 * and TDPBF16PS accumulates in float32, so the three piece products summed are the float GEMM up to its summation
 * rounding, at up to 512 MACs per cycle against 32 for AVX-512 FMA.
 *
 * Layouts: A [Mp][3·Kp] bf16 (the three pieces side by side along K), B in VNNI order [Kp/2][Np][2] (pairs of K
 * interleaved), C [Mp][Np] float32; Mp, Np, Kp multiples of 32, padding zero, each row 64 bytes longer than its
 * data. The input gradient is the GEMM's [pixels][taps·C] columns folded back onto the map (col2im).
 * Used only where xnor_amx_available(); elsewhere the fused backward keeps torch's float convolution backward.
 * Included once by xnor_cpu.c; -DXNOR_NO_AMX builds without it. */

#if !defined(XNOR_NO_AMX) && XNOR_X86 && ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && __GNUC__ >= 11))
#define XNOR_HAS_AMX 1
#include <cpuid.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <sys/syscall.h>
#include <unistd.h>
#else
#define XNOR_HAS_AMX 0
#endif

#define AMX_T 32 /* rows and columns of one C block (2 x 2 tiles of 16 x 16) */

int xnor_amx_available(void) {
#if XNOR_HAS_AMX
  static int state = -1; /* -1 unknown, 0 no, 1 yes: the CPUID bits and the kernel's grant of the tile state */
  if (state < 0) {
    unsigned a, b, c, d, a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    int ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 1u) && (d >> 22 & 1u); /* AMX-TILE, -BF16 */
    ok = ok && (b >> 16 & 1u) && (b >> 17 & 1u) && (b >> 30 & 1u) && (b >> 31 & 1u); /* AVX512 F, DQ, BW, VL */
    ok = ok && __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && (a1 >> 5 & 1u); /* AVX512-BF16 */
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): Linux grants the tile registers per process */
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    state = ok;
  }
  return state;
#else
  return 0;
#endif
}

#if XNOR_HAS_AMX
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")

static int64_t amx_up(int64_t v) { return (v + AMX_T - 1) / AMX_T * AMX_T; }
/* Row strides (elements) of A, of B's VNNI rows and of C, each 64 bytes past the packed width: a tile's 16 rows
 * at a multiple of 4 KiB apart would share one set of the L1 cache. */
static int64_t amx_lda(int64_t Kp) { return 3 * Kp + 32; }
static int64_t amx_ldb(int64_t Np) { return 2 * Np + 32; }
static int64_t amx_ldc(int64_t Np) { return Np + 16; }

#define AMX_ONE 0x3f80 /* +1.0 in bf16 */
#define AMX_NEG 0xbf80 /* -1.0 */

static inline __m512 amx_widen(__m256bh h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
}

/* The three bf16 pieces of 16 floats (round to nearest even each time: f = hi + mid + lo exactly). */
static inline void amx_split16(__m512 f, uint16_t *hi, int64_t step, __mmask16 m) {
  const __m256bh h = _mm512_cvtneps_pbh(f);
  const __m512 r1 = _mm512_sub_ps(f, amx_widen(h));
  const __m256bh md = _mm512_cvtneps_pbh(r1);
  const __m256bh lo = _mm512_cvtneps_pbh(_mm512_sub_ps(r1, amx_widen(md)));
  _mm256_mask_storeu_epi16(hi, m, (__m256i)h);
  _mm256_mask_storeu_epi16(hi + step, m, (__m256i)md);
  _mm256_mask_storeu_epi16(hi + 2 * step, m, (__m256i)lo);
}

/* A = the three bf16 pieces of F[m][k] = src[m*sm + k*sk] (times kscale[k] when given), side by side along K
 * ([Mp][3*Kp]), zero-padded. sk == 1 reads rows; otherwise 16 x 16 blocks are transposed through the stack. */
static void amx_pack_a(const float *src, int64_t M, int64_t K, int64_t sm, int64_t sk, const float *kscale,
                       uint16_t *out, int64_t Mp, int64_t Kp, int64_t nt) {
  const int64_t ld = amx_lda(Kp);
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t m0 = 0; m0 < Mp; m0 += 16) {
    float tb[16][16];
    for (int64_t k0 = 0; k0 < Kp; k0 += 16) {
      const int64_t nk = K - k0 < 16 ? (K - k0 > 0 ? K - k0 : 0) : 16;
      const __mmask16 km = (__mmask16)((1u << nk) - 1u);
      const __m512 sc = kscale && nk ? _mm512_maskz_loadu_ps(km, kscale + k0) : _mm512_set1_ps(1.0f);
      if (sk != 1 && sm == 1 && m0 + 16 <= M && nk == 16) { /* a full block of a transposed read: rows of 16 */
        for (int64_t kk = 0; kk < 16; kk++) {
          const float *r = src + m0 + (k0 + kk) * sk;
          for (int64_t mm = 0; mm < 16; mm++) tb[mm][kk] = r[mm];
        }
      } else if (sk != 1) {
        for (int64_t mm = 0; mm < 16; mm++)
          for (int64_t kk = 0; kk < 16; kk++)
            tb[mm][kk] = (m0 + mm < M && kk < nk) ? src[(m0 + mm) * sm + (k0 + kk) * sk] : 0.0f;
      }
      for (int64_t mm = 0; mm < 16; mm++) {
        const int64_t m = m0 + mm;
        __m512 f = _mm512_setzero_ps();
        if (m < M && nk) f = sk == 1 ? _mm512_maskz_loadu_ps(km, src + m * sm + k0) : _mm512_loadu_ps(tb[mm]);
        amx_split16(_mm512_mul_ps(f, sc), out + m * ld + k0, Kp, 0xffff);
      }
    }
  }
}

/* Interleave two rows of 16 bf16 values into VNNI pairs (a0 b0 a1 b1 ...), 32 values, masked to 2 * nc. */
static inline void amx_store_pairs(uint16_t *dst, __m256i a, __m256i b, int64_t nc) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i ab = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  const __mmask32 m = nc >= 16 ? 0xffffffffu : (__mmask32)((1ull << (2 * nc)) - 1u);
  _mm512_mask_storeu_epi16(dst, m, _mm512_permutexvar_epi16(idx, ab));
}

/* ±1 bf16 values of sign(x[c] + bias[c]) for 16 channels (sign(0) = +1), zero past nc or where x is NULL. */
static inline __m256i amx_signs16(const float *x, const float *bias, int64_t nc) {
  if (!x) return _mm256_setzero_si256();
  const __mmask16 m = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1u);
  __m512 v = _mm512_maskz_loadu_ps(m, x);
  if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias));
  const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m256i one = _mm256_set1_epi16((short)AMX_ONE), minus = _mm256_set1_epi16((short)AMX_NEG);
  return _mm256_maskz_mov_epi16(m, _mm256_mask_mov_epi16(one, neg, minus));
}

/* B (VNNI) = im2col of sign(x + bias) (zero outside the map), x NHWC [Bn][H][W][C]:
 * K index = output pixel p = (b, ho, wo), N index = tap * C + c. */
static void amx_pack_im2col(const float *x, const float *bias, int64_t Bn, int64_t H, int64_t W, int64_t C,
                            int64_t k, int64_t stride, int64_t pad, int64_t Ho, int64_t Wo, uint16_t *out,
                            int64_t Kp, int64_t Np, int64_t nt) {
  const int64_t P = Bn * Ho * Wo, N = k * k * C;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t kp = 0; kp < Kp / 2; kp++) {
    uint16_t *row = out + kp * amx_ldb(Np);
    memset(row + 2 * N, 0, (size_t)(Np - N) * 4);
    const float *px[2];
    int64_t ho[2], wo[2], ok[2];
    for (int h = 0; h < 2; h++) {
      const int64_t p = 2 * kp + h;
      ok[h] = p < P;
      const int64_t b = ok[h] ? p / (Ho * Wo) : 0;
      ho[h] = ok[h] ? p / Wo % Ho : 0, wo[h] = ok[h] ? p % Wo : 0;
      px[h] = x + b * H * W * C;
    }
    for (int64_t t = 0; t < k * k; t++) {
      const float *src[2];
      for (int h = 0; h < 2; h++) {
        const int64_t ih = ho[h] * stride + t / k - pad, iw = wo[h] * stride + t % k - pad;
        src[h] = ok[h] && ih >= 0 && ih < H && iw >= 0 && iw < W ? px[h] + (ih * W + iw) * C : NULL;
      }
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t nc = C - c0 < 16 ? C - c0 : 16;
        const __m256i a = amx_signs16(src[0] ? src[0] + c0 : NULL, bias ? bias + c0 : NULL, nc);
        const __m256i b = amx_signs16(src[1] ? src[1] + c0 : NULL, bias ? bias + c0 : NULL, nc);
        amx_store_pairs(row + 2 * (t * C + c0), a, b, nc);
      }
    }
  }
}

/* B (VNNI) = sign(w) of latent OIHW w [O][I][taps] (sign(0) = +1): K index = o, N index = tap * I + i. Each
 * VNNI pair (rows o, o + 1 of one column) is written as one 32-bit word; padding rows and columns are zero. */
static void amx_pack_wsign(const float *w, int64_t O, int64_t I, int64_t taps, uint16_t *out, int64_t Kp,
                           int64_t Np) {
  const int64_t N = taps * I;
  for (int64_t q = 0; q < Kp / 2; q++) {
    uint32_t *row = (uint32_t *)(out + q * amx_ldb(Np));
    const float *w0 = 2 * q < O ? w + 2 * q * N : NULL, *w1 = 2 * q + 1 < O ? w + (2 * q + 1) * N : NULL;
    memset(row + N, 0, (size_t)(Np - N) * 4);
    if (!w0) {
      memset(row, 0, (size_t)N * 4);
      continue;
    }
    for (int64_t i = 0; i < I; i++)
      for (int64_t t = 0; t < taps; t++) {
        const uint32_t lo = w0[i * taps + t] < 0.0f ? AMX_NEG : AMX_ONE;
        const uint32_t hi = !w1 ? 0u : w1[i * taps + t] < 0.0f ? AMX_NEG : AMX_ONE;
        row[t * I + i] = lo | hi << 16;
      }
  }
}

/* g_w (OIHW [O][C][taps]) = |w| <= 1 ? Cm[o][t * C + i] : 0, the clipped STE of the weight-gradient GEMM's
 * output (N index tap * C + c): each row o is written in order, 16 outputs at a time gathered from Cm's row
 * (a strided scalar walk over Cm ran at 7-8 cycles per weight). */
#define AMX_STE_MAX_TAPS 49
static void amx_ste_store(const float *Cm, int64_t ldc, const float *w, int64_t O, int64_t C, int64_t taps,
                          float *g_w) {
  const int64_t row = C * taps;
  if (taps > AMX_STE_MAX_TAPS) {
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < C; i++)
        for (int64_t t = 0; t < taps; t++) {
          const int64_t at = o * row + i * taps + t;
          g_w[at] = fabsf(w[at]) <= 1.0f ? Cm[o * ldc + t * C + i] : 0.0f;
        }
    return;
  }
  int32_t idx[AMX_STE_MAX_TAPS * 16]; /* output q of a 16-channel block reads Cm at (q % taps) * C + q / taps */
  for (int64_t q = 0; q < 16 * taps; q++) idx[q] = (int32_t)((q % taps) * C + q / taps);
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512i sign = _mm512_set1_epi32(0x7fffffff);
  for (int64_t o = 0; o < O; o++) {
    const float *cr = Cm + o * ldc, *wr = w + o * row;
    float *gr = g_w + o * row;
    for (int64_t i0 = 0; i0 < C; i0 += 16) {
      const int64_t n = (C - i0 < 16 ? C - i0 : 16) * taps, base = i0 * taps;
      for (int64_t v = 0; v < n; v += 16) {
        const __mmask16 m = n - v >= 16 ? 0xffff : (__mmask16)((1u << (n - v)) - 1u);
        const __m512i ix = _mm512_loadu_si512(idx + v);
        const __m512 g = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, ix, cr + i0, 4);
        const __m512i wv = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, wr + base + v));
        const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(wv, sign)); /* |w| */
        const __mmask16 keep = _mm512_mask_cmp_ps_mask(m, a, one, _CMP_LE_OQ);
        _mm512_mask_storeu_ps(gr + base + v, m, _mm512_maskz_mov_ps(keep, g));
      }
    }
  }
}

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} amx_tilecfg;

/* One 32 x 32 block of C (2 x 2 tiles at c, row stride ldc floats) over K in [kc, kend): zeroed when kc == 0,
 * else reloaded (the float32 accumulators stored between chunks are exact, so the sum order per element is the
 * same for any chunking, blocking or thread count). a0: the block's first A row. Each pair of B tiles serves the
 * three pieces: a K step loads 8 tiles for 12 products. */
static inline void amx_block(const uint16_t *a0, int64_t lda, int64_t Kp, const uint16_t *Bv, int64_t ldb,
                             int64_t n0, float *c, int64_t ldc, int64_t kc, int64_t kend) {
  const uint16_t *a1 = a0 + 16 * lda;
  if (kc == 0) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, c, ldc * 4);
    _tile_loadd(1, c + 16, ldc * 4);
    _tile_loadd(2, c + 16 * ldc, ldc * 4);
    _tile_loadd(3, c + 16 * ldc + 16, ldc * 4);
  }
  for (int64_t k0 = kc; k0 < kend; k0 += 32) {
    const uint16_t *b = Bv + k0 / 2 * ldb + n0 * 2;
    _tile_loadd(6, b, ldb * 2);
    _tile_loadd(7, b + 32, ldb * 2);
#define AMX_PIECE(j)                                                                                               \
  _tile_loadd(4, a0 + (j) * Kp + k0, lda * 2);                                                                     \
  _tile_loadd(5, a1 + (j) * Kp + k0, lda * 2);                                                                     \
  _tile_dpbf16ps(0, 4, 6);                                                                                         \
  _tile_dpbf16ps(1, 4, 7);                                                                                         \
  _tile_dpbf16ps(2, 5, 6);                                                                                         \
  _tile_dpbf16ps(3, 5, 7);
    AMX_PIECE(0)
    AMX_PIECE(1)
    AMX_PIECE(2)
#undef AMX_PIECE
  }
  _tile_stored(0, c, ldc * 4);
  _tile_stored(1, c + 16, ldc * 4);
  _tile_stored(2, c + 16 * ldc, ldc * 4);
  _tile_stored(3, c + 16 * ldc + 16, ldc * 4);
}

static void amx_tiles_on(void) {
  amx_tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  _tile_loadconfig(&cfg);
}

/* C = sum over the 3 pieces j of A[:, j*Kp : (j+1)*Kp] @ B. K is walked in chunks of AMX_KC outermost; within
 * a chunk a task is one 32-row block of C and one of nt contiguous groups of its 32-column blocks, so the A
 * chunk (32 rows, 3 pieces, 24 KiB) stays in L1 over the group's column blocks and the B chunk (AMX_KC rows of
 * B) stays in L2 over all row blocks (B whole would be streamed once per row block). */
#define AMX_KC 128
static void amx_gemm(const uint16_t *A, const uint16_t *Bv, float *C, int64_t Mp, int64_t Np, int64_t Kp,
                     int64_t nt) {
  const int64_t lda = amx_lda(Kp), ldb = amx_ldb(Np), ldc = amx_ldc(Np), nm = Mp / AMX_T, nn = Np / AMX_T;
  const int64_t groups = nt < 1 ? 1 : nt < nn ? nt : nn;
#ifdef _OPENMP
#pragma omp parallel num_threads((int)(nt > 0 ? nt : 1))
#endif
  {
    amx_tiles_on();
    for (int64_t kc = 0; kc < Kp; kc += AMX_KC) {
      const int64_t kend = kc + AMX_KC < Kp ? kc + AMX_KC : Kp;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
      for (int64_t task = 0; task < nm * groups; task++) {
        const int64_t m0 = task / groups * AMX_T, grp = task % groups;
        for (int64_t nb = grp * nn / groups; nb < (grp + 1) * nn / groups; nb++)
          amx_block(A + m0 * lda, lda, Kp, Bv, ldb, nb * AMX_T, C + m0 * ldc + nb * AMX_T, ldc, kc, kend);
      }
    }
    _tile_release();
  }
}

/* g_x NHWC [Bn][H][W][C] = fold(A @ B) without materialising the [P][N] product: each thread takes whole images
 * (so no two threads add into one pixel), computes its rows 32 at a time into a [32][ldc] block kept in L2 and
 * folds them (col2im; a 1 x 1 stride-1 conv's fold is a copy) before the next block. Rows are folded in order
 * per image, as a separate fold would, so the bits do not depend on the blocking or the thread count. A has at
 * least P + 32 rows (the last block of a thread may start at any row). */
static void amx_gemm_fold(const uint16_t *A, const uint16_t *Bv, int64_t Np, int64_t Kp, float *blocks,
                          int64_t Bn, int64_t H, int64_t W, int64_t C, int64_t k, int64_t stride, int64_t pad,
                          int64_t Ho, int64_t Wo, float *g_x, int64_t nt) {
  const int64_t lda = amx_lda(Kp), ldb = amx_ldb(Np), ldc = amx_ldc(Np), nn = Np / AMX_T, HW = Ho * Wo;
  const int copy = k == 1 && stride == 1 && pad == 0;
#ifdef _OPENMP
#pragma omp parallel num_threads((int)(nt > 0 ? nt : 1))
#endif
  {
    int64_t tid = 0, T = 1;
#ifdef _OPENMP
    tid = omp_get_thread_num(), T = omp_get_num_threads();
#endif
    const int64_t b0 = tid * Bn / T, b1 = (tid + 1) * Bn / T, r1 = b1 * HW;
    float *cb = blocks + tid * AMX_T * ldc;
    if (!copy) memset(g_x + b0 * H * W * C, 0, (size_t)((b1 - b0) * H * W * C) * sizeof(float));
    amx_tiles_on();
    for (int64_t r0 = b0 * HW; r0 < r1; r0 += AMX_T) {
      for (int64_t kc = 0; kc < Kp; kc += AMX_KC) {
        const int64_t kend = kc + AMX_KC < Kp ? kc + AMX_KC : Kp;
        for (int64_t nb = 0; nb < nn; nb++)
          amx_block(A + r0 * lda, lda, Kp, Bv, ldb, nb * AMX_T, cb + nb * AMX_T, ldc, kc, kend);
      }
      const int64_t rend = r0 + AMX_T < r1 ? r0 + AMX_T : r1;
      for (int64_t r = r0; r < rend; r++) {
        const float *src = cb + (r - r0) * ldc;
        const int64_t b = r / HW, ho = r % HW / Wo, wo = r % Wo;
        float *ob = g_x + b * H * W * C;
        if (copy) {
          memcpy(ob + (ho * W + wo) * C, src, (size_t)C * sizeof(float));
          continue;
        }
        for (int64_t t = 0; t < k * k; t++) {
          const int64_t ih = ho * stride + t / k - pad, iw = wo * stride + t % k - pad;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
          float *restrict d = ob + (ih * W + iw) * C;
          const float *restrict sv = src + t * C;
          for (int64_t c = 0; c < C; c++) d[c] += sv[c];
        }
      }
    }
    _tile_release();
  }
}
#pragma GCC pop_options
#endif

/* Both float gradients of y = conv(sign(x + bias), alpha[o] * sign(w)) (k x k, stride, pad) at upstream g_y:
 * g_x NHWC [Bn][H][W][C] (the gradient w.r.t. the ±1 input) and g_w OIHW [O][C][k][k], the latent weights'
 * clipped-STE gradient (the gradient w.r.t. alpha * sign(w) where |w| <= 1, else 0).
 * x NHWC [Bn][H][W][C], g_y NHWC [Bn][Ho][Wo][O], w OIHW [O][C][k][k], bias [C] or NULL.
 * Returns -3 where AMX is unavailable, -2 when scratch cannot be allocated. Independent of the thread count. */
int xnor_amx_conv_backward(const float *g_y, const float *x, const float *bias, const float *w, const float *alpha,
                           int64_t Bn, int64_t H, int64_t W, int64_t C, int64_t O, int64_t k, int64_t stride,
                           int64_t pad, int64_t Ho, int64_t Wo, float *g_x, float *g_w, int64_t nt) {
  if (!g_y || !x || !w || !alpha || !g_x || !g_w || Bn <= 0 || C <= 0 || O <= 0 || k <= 0 || stride <= 0)
    return -1;
  if (pad < 0 || Ho != (H + 2 * pad - k) / stride + 1 || Wo != (W + 2 * pad - k) / stride + 1 || Ho <= 0 || Wo <= 0)
    return -1;
  if (!xnor_amx_available()) return -3;
#if XNOR_HAS_AMX
  const int64_t P = Bn * Ho * Wo, N = k * k * C, Pp = amx_up(P), Op = amx_up(O), Np = amx_up(N);
  /* weight gradient: A = g_yᵀ [Op][3·Pp], B = im2col [Pp/2][Np][2], C [Op][Np]; then the input gradient:
   * A = (g_y·alpha) [Pp + 32][3·Op], B = sign(w) [Op/2][Np][2], C one [32][Np] block per thread, folded as it
   * is made (amx_gemm_fold). One scratch block for the larger. */
  const int64_t ldb = amx_ldb(Np), ldc = amx_ldc(Np);
  const size_t s1a = (size_t)(Op * amx_lda(Pp)) * 2, s1b = (size_t)(Pp / 2 * ldb) * 2, s1c = (size_t)(Op * ldc) * 4;
  const int64_t nth = nt > 0 ? nt : 1, Pa = Pp + AMX_T; /* A rows: a thread's last block may start at any row */
  const size_t s2a = (size_t)(Pa * amx_lda(Op)) * 2, s2b = (size_t)(Op / 2 * ldb) * 2,
               s2c = (size_t)(nth * AMX_T * ldc) * 4;
  const size_t r64 = 63, a1 = (s1a + r64) & ~r64, b1 = (s1b + r64) & ~r64, a2 = (s2a + r64) & ~r64,
               b2 = (s2b + r64) & ~r64;
  const size_t need1 = a1 + b1 + s1c, need2 = a2 + b2 + s2c;
  char *buf = (char *)xnor_scratch(need1 > need2 ? need1 : need2);
  if (!buf) return -2;
  uint16_t *A = (uint16_t *)buf, *Bv = (uint16_t *)(buf + a1);
  float *Cm = (float *)(buf + a1 + b1);
  amx_pack_a(g_y, O, P, 1, O, NULL, A, Op, Pp, nt);
  amx_pack_im2col(x, bias, Bn, H, W, C, k, stride, pad, Ho, Wo, Bv, Pp, Np, nt);
  amx_gemm(A, Bv, Cm, Op, Np, Pp, nt);
  amx_ste_store(Cm, ldc, w, O, C, k * k, g_w); /* the clipped STE into w's OIHW layout */
  Bv = (uint16_t *)(buf + a2);
  Cm = (float *)(buf + a2 + b2);
  amx_pack_a(g_y, P, O, O, 1, alpha, A, Pa, Op, nt);
  amx_pack_wsign(w, O, C, k * k, Bv, Op, Np);
  amx_gemm_fold(A, Bv, Np, Op, Cm, Bn, H, W, C, k, stride, pad, Ho, Wo, g_x, nt);
  return 0;
#else
  (void)bias, (void)nt;
  return -3;
#endif
}
