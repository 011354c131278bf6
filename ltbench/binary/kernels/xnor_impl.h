/* ISA-specialised body, included once per instruction set by xnor_cpu.c under `#pragma GCC target`.
 * Expects XNOR_ISA_NOW (0 scalar, 1 AVX2, 2 AVX-512 VPOPCNTDQ) and SFX(name). */

#if XNOR_ISA_NOW == 2
/* dst[r*ld + lane] = kreal - 2*popcount(row r XOR lane), for XNOR_MR rows and the 32 lanes of one panel. */
static void SFX(ukernel)(const uint64_t *const *ap, const uint64_t *w, int64_t kw, int32_t kreal, int32_t *dst,
                         int64_t ld) {
  __m512i c[XNOR_MR][4];
  { /* k = 0 initialises the accumulators (kw >= 1): no zeroing, one add fewer per output group */
    const __m512i w0 = _mm512_loadu_si512((const void *)w), w1 = _mm512_loadu_si512((const void *)(w + 8));
    const __m512i w2 = _mm512_loadu_si512((const void *)(w + 16)), w3 = _mm512_loadu_si512((const void *)(w + 24));
#pragma GCC unroll 8
    for (int r = 0; r < XNOR_MR; r++) {
      const __m512i a = _mm512_set1_epi64((long long)ap[r][0]);
      c[r][0] = _mm512_popcnt_epi64(_mm512_xor_si512(a, w0));
      c[r][1] = _mm512_popcnt_epi64(_mm512_xor_si512(a, w1));
      c[r][2] = _mm512_popcnt_epi64(_mm512_xor_si512(a, w2));
      c[r][3] = _mm512_popcnt_epi64(_mm512_xor_si512(a, w3));
    }
  }
  for (int64_t k = 1; k < kw; k++) {
    const uint64_t *wk = w + k * XNOR_PANEL;
    const __m512i w0 = _mm512_loadu_si512((const void *)wk), w1 = _mm512_loadu_si512((const void *)(wk + 8));
    const __m512i w2 = _mm512_loadu_si512((const void *)(wk + 16)), w3 = _mm512_loadu_si512((const void *)(wk + 24));
#pragma GCC unroll 8
    for (int r = 0; r < XNOR_MR; r++) {
      const __m512i a = _mm512_set1_epi64((long long)ap[r][k]);
      c[r][0] = _mm512_add_epi64(c[r][0], _mm512_popcnt_epi64(_mm512_xor_si512(a, w0)));
      c[r][1] = _mm512_add_epi64(c[r][1], _mm512_popcnt_epi64(_mm512_xor_si512(a, w1)));
      c[r][2] = _mm512_add_epi64(c[r][2], _mm512_popcnt_epi64(_mm512_xor_si512(a, w2)));
      c[r][3] = _mm512_add_epi64(c[r][3], _mm512_popcnt_epi64(_mm512_xor_si512(a, w3)));
    }
  }
  /* counts fit in the low dword of each 64-bit lane: one permute gathers two accumulators' 16 counts */
  const __m512i lo = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i kv = _mm512_set1_epi32(kreal);
#pragma GCC unroll 8
  for (int r = 0; r < XNOR_MR; r++)
#pragma GCC unroll 2
    for (int j = 0; j < 4; j += 2) {
      const __m512i v = _mm512_permutex2var_epi32(c[r][j], lo, c[r][j + 1]);
      _mm512_storeu_si512((void *)(dst + r * ld + 8 * j), _mm512_sub_epi32(kv, _mm512_add_epi32(v, v)));
    }
}
#elif XNOR_ISA_NOW == 1
/* dst[r*ld + lane] = kreal - 2*popcount(row r XOR lane), for XNOR_MR rows and the 32 lanes of one panel. */
static void SFX(ukernel)(const uint64_t *const *ap, const uint64_t *w, int64_t kw, int32_t kreal, int32_t *dst,
                         int64_t ld) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                       2, 2, 3, 2, 3, 3, 4);
  const __m256i m4 = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const __m256i kv = _mm256_set1_epi32(kreal), order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  /* Each block of <= 31 words folds its byte counters straight into dst (no 64-bit sums held across blocks),
   * and the word loop is written in assembly: with the loop in C, GCC 12 kept three of the eight counters on
   * the stack (a load and a store each per word) however it was phrased. Assembly holds the counters, table and
   * mask in registers with ymm13-15 as scratch: S7 (K = 128) 1.22x, S6 1.09x, S4 1.06x, A/B on the AVX2 VM. */
  _Static_assert(XNOR_PANEL == 32, "the word loop's offsets assume 32 lanes (256 bytes) per panel word");
  for (int r = 0; r < XNOR_MR; r++) {
    const uint64_t *a = ap[r];
    int32_t *d = dst + r * ld;
    for (int64_t k = 0; k < kw;) {
      const int64_t k0 = k, kend = (kw - k > 31) ? k + 31 : kw; /* byte counters: 31 words x 8 < 256 */
      __m256i b0 = zero, b1 = zero, b2 = zero, b3 = zero, b4 = zero, b5 = zero, b6 = zero, b7 = zero;
      const uint64_t *pa = a + k, *pw = w + k * XNOR_PANEL;
      int64_t n = kend - k;
      k = kend;
#define XNOR_CNT(off, acc)                                                                                     \
  "vpxor " #off "(%[w]), %%ymm13, %%ymm14\n\t"                                                                 \
  "vpand %[m4], %%ymm14, %%ymm15\n\t"                                                                          \
  "vpsrlw $4, %%ymm14, %%ymm14\n\t"                                                                            \
  "vpand %[m4], %%ymm14, %%ymm14\n\t"                                                                          \
  "vpshufb %%ymm15, %[lut], %%ymm15\n\t"                                                                       \
  "vpshufb %%ymm14, %[lut], %%ymm14\n\t"                                                                       \
  "vpaddb %%ymm15, %[" #acc "], %[" #acc "]\n\t"                                                               \
  "vpaddb %%ymm14, %[" #acc "], %[" #acc "]\n\t"
      __asm__("1:\n\t"
              "vpbroadcastq (%[a]), %%ymm13\n\t"
              XNOR_CNT(0, b0) XNOR_CNT(32, b1) XNOR_CNT(64, b2) XNOR_CNT(96, b3)
              XNOR_CNT(128, b4) XNOR_CNT(160, b5) XNOR_CNT(192, b6) XNOR_CNT(224, b7)
              "add $8, %[a]\n\t"
              "add $256, %[w]\n\t"
              "dec %[n]\n\t"
              "jnz 1b"
              : [b0] "+x"(b0), [b1] "+x"(b1), [b2] "+x"(b2), [b3] "+x"(b3), [b4] "+x"(b4), [b5] "+x"(b5),
                [b6] "+x"(b6), [b7] "+x"(b7), [a] "+r"(pa), [w] "+r"(pw), [n] "+r"(n)
              : [lut] "x"(lut), [m4] "x"(m4)
              : "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef XNOR_CNT
      const __m256i b[8] = {b0, b1, b2, b3, b4, b5, b6, b7};
      /* a block's counts (< 2^16) sit in the low dword of each 64-bit SAD lane: pair two vectors' lanes into 8
       * int32 (outputs 4j .. 4j+7 in order); the first block stores kreal - 2*count, later ones subtract */
      for (int j = 0; j < 8; j += 2) {
        const __m256i s = _mm256_or_si256(_mm256_sad_epu8(b[j], zero), _mm256_slli_epi64(_mm256_sad_epu8(b[j + 1], zero), 32));
        const __m256i v = _mm256_permutevar8x32_epi32(s, order);
        __m256i *o = (__m256i *)(d + 4 * j);
        const __m256i base = k0 == 0 ? kv : _mm256_loadu_si256(o);
        _mm256_storeu_si256(o, _mm256_sub_epi32(base, _mm256_add_epi32(v, v)));
      }
    }
  }
}
#else
/* dst[r*ld + lane] = kreal - 2*popcount(row r XOR lane), for XNOR_MR rows and the 32 lanes of one panel. */
static void SFX(ukernel)(const uint64_t *const *ap, const uint64_t *w, int64_t kw, int32_t kreal, int32_t *dst,
                         int64_t ld) {
  for (int r = 0; r < XNOR_MR; r++) {
    int32_t s[XNOR_PANEL] = {0};
    const uint64_t *a = ap[r];
    for (int64_t k = 0; k < kw; k++) {
      const uint64_t av = a[k];
      const uint64_t *wk = w + k * XNOR_PANEL;
      for (int l = 0; l < XNOR_PANEL; l++) s[l] += __builtin_popcountll(av ^ wk[l]);
    }
    for (int l = 0; l < XNOR_PANEL; l++) dst[r * ld + l] = xnor_dot_xor(kreal, s[l]);
  }
}
#endif

#if XNOR_ISA_NOW == 2
/* Masked load/store only for a group's last, partial vector: a full group uses plain ones (masked stores are
 * several times slower on some x86 cores). */
#define XNOR_LD(full, k, ptr) ((full) ? _mm512_loadu_ps(ptr) : _mm512_maskz_loadu_ps((k), (ptr)))

/* The epilogue on 16-float vectors for rows [m0, m0+rows) and channels n0 .. n0+nc of group g (`res_off`: the
 * residual's channel offset when its channels are contiguous, -1 when they wrap): the same steps in the same
 * order as the scalar epilogue below (xnor_affine as an FMA, the pool's sum order, RPReLU's v > 0 select).
 * Every field of `p` is read into a local first, so the compiler keeps them in registers; `full` (nc == 64) is a
 * compile-time constant at each call site. */
static inline __attribute__((always_inline)) void vec_epilogue_body(const xnor_conv_args *p, int64_t m0,
                                                                    int64_t rows, int64_t n0, int64_t nc,
                                                                    int64_t g, int64_t res_off,
                                                                    const int32_t *dots, const int64_t *ridx,
                                                                    const int full) {
  const int64_t N = p->N, nw = (N + 63) / 64, Wo = p->Wo, Ho = p->Ho;
  const int64_t rc = p->res_c, rh = p->res_h, rw = p->res_w;
  const float *const scale = p->scale, *const shift = p->shift, *const res = p->res;
  const float *const b1 = p->rp_b1, *const sl = p->rp_slope, *const b2 = p->rp_b2, *const nb = p->next_bias;
  float *const out_f = p->out_f;
  uint64_t *const out_bits = p->out_bits;
  const int pool = (int)p->res_pool;
  const int64_t nv = full ? 4 : (nc + 15) / 16;
  __mmask16 km[4] = {0, 0, 0, 0};
  __m512 vs[4], vt[4], vb1[4], vsl[4], vb2[4], vnb[4];
  for (int64_t v = 0; v < nv; v++) { /* per-channel vectors: loaded once for all rows */
    const int64_t c0 = 16 * v, n = n0 + c0;
    const __mmask16 k = (nc - c0 >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (nc - c0)) - 1u);
    km[v] = k;
    vs[v] = scale ? XNOR_LD(full, k, scale + n) : _mm512_set1_ps(1.0f);
    vt[v] = shift ? XNOR_LD(full, k, shift + n) : _mm512_setzero_ps();
    vb1[v] = sl ? XNOR_LD(full, k, b1 + n) : _mm512_setzero_ps();
    vsl[v] = sl ? XNOR_LD(full, k, sl + n) : _mm512_setzero_ps();
    vb2[v] = sl ? XNOR_LD(full, k, b2 + n) : _mm512_setzero_ps();
    vnb[v] = nb ? XNOR_LD(full, k, nb + n) : _mm512_setzero_ps();
  }
  const __m512 zero = _mm512_setzero_ps(), quarter = _mm512_set1_ps(0.25f);
  for (int64_t r = 0; r < rows; r++) {
    const int64_t m = m0 + r;
    const int32_t *d = dots + r * 64;
    const float *q00 = NULL, *q01 = NULL, *q10 = NULL, *q11 = NULL;
    if (res) {
      const int64_t wo = m % Wo, ho = (m / Wo) % Ho, b = m / (Wo * Ho);
      q00 = pool ? res + ((b * rh + 2 * ho) * rw + 2 * wo) * rc : res + ((b * rh + ho) * rw + wo) * rc;
      q01 = q00 + rc, q10 = q00 + rw * rc, q11 = q10 + rc;
    }
    uint64_t word = 0;
#pragma GCC unroll 4
    for (int64_t v = 0; v < nv; v++) {
      const __mmask16 k = km[v];
      const int64_t c0 = 16 * v;
      const __m512i di = full ? _mm512_loadu_si512((const void *)(d + c0)) : _mm512_maskz_loadu_epi32(k, d + c0);
      __m512 y = _mm512_fmadd_ps(vs[v], _mm512_cvtepi32_ps(di), vt[v]);
      if (res) {
        __m512 rv;
        if (res_off >= 0) {
          const int64_t o = res_off + c0;
          if (pool) {
            const __m512 s2 = _mm512_add_ps(_mm512_add_ps(XNOR_LD(full, k, q00 + o), XNOR_LD(full, k, q01 + o)),
                                            XNOR_LD(full, k, q10 + o));
            rv = _mm512_mul_ps(_mm512_add_ps(s2, XNOR_LD(full, k, q11 + o)), quarter);
          } else {
            rv = XNOR_LD(full, k, q00 + o);
          }
        } else {
          float t[16] = {0};
          for (int64_t c = c0; c < nc && c < c0 + 16; c++)
            t[c - c0] = pool ? xnor_pool4(q00[ridx[c]], q01[ridx[c]], q10[ridx[c]], q11[ridx[c]]) : q00[ridx[c]];
          rv = _mm512_loadu_ps(t);
        }
        y = _mm512_add_ps(y, rv);
      }
      if (sl) {
        const __m512 u = _mm512_add_ps(y, vb1[v]);
        const __mmask16 pos = _mm512_cmp_ps_mask(u, zero, _CMP_GT_OQ);
        y = _mm512_add_ps(_mm512_mask_blend_ps(pos, _mm512_mul_ps(vsl[v], u), u), vb2[v]);
      }
      if (out_f) {
        if (full)
          _mm512_storeu_ps(out_f + m * N + n0 + c0, y);
        else
          _mm512_mask_storeu_ps(out_f + m * N + n0 + c0, k, y);
      }
      if (out_bits) {
        const __m512 u = nb ? _mm512_add_ps(y, vnb[v]) : y;
        word |= (uint64_t)(_mm512_cmp_ps_mask(u, zero, _CMP_LT_OQ) & k) << c0;
      }
    }
    if (out_bits) out_bits[m * nw + g] = word;
  }
}
#undef XNOR_LD

static void vec_epilogue_avx512(const xnor_conv_args *p, int64_t m0, int64_t rows, int64_t n0, int64_t nc,
                                int64_t g, int64_t res_off, const int32_t *dots, const int64_t *ridx) {
  if (nc == 64)
    vec_epilogue_body(p, m0, rows, n0, nc, g, res_off, dots, ridx, 1);
  else
    vec_epilogue_body(p, m0, rows, n0, nc, g, res_off, dots, ridx, 0);
}
#endif

/* Epilogue for rows [m0, m0+rows) and the 64-channel group g: dots (rows x 64) -> int / float / bits. */
static void SFX(epilogue)(const xnor_conv_args *p, int64_t m0, int64_t rows, int64_t g, const int32_t *dots) {
  const int64_t n0 = 64 * g, nc = (p->N - n0 < 64) ? p->N - n0 : 64, nw = (p->N + 63) / 64;
  float y[64];
  int64_t ridx[64]; /* residual channel of output channel n0 + c: (n0 + c) % res_c, without a division each */
  const int res_direct = p->res && n0 + nc <= p->res_c;
  if (p->res && !res_direct) {
    int64_t rc = n0 % p->res_c;
    for (int64_t c = 0; c < nc; c++) {
      ridx[c] = rc;
      if (++rc == p->res_c) rc = 0;
    }
  }
#if XNOR_ISA_NOW == 2
  if (!p->out_int) {
    const int64_t res_off = !p->res ? 0 : res_direct ? n0 : (n0 % p->res_c + nc <= p->res_c) ? n0 % p->res_c : -1;
    vec_epilogue_avx512(p, m0, rows, n0, nc, g, res_off, dots, ridx);
    return;
  }
#endif
  for (int64_t r = 0; r < rows; r++) {
    const int64_t m = m0 + r;
    const int32_t *d = dots + r * 64;
    if (p->out_int)
      for (int64_t c = 0; c < nc; c++) p->out_int[m * p->N + n0 + c] = d[c];
    if (!p->out_f && !p->out_bits) continue;
    for (int64_t c = 0; c < nc; c++) {
      const float s = p->scale ? p->scale[n0 + c] : 1.0f, t = p->shift ? p->shift[n0 + c] : 0.0f;
      y[c] = xnor_affine(d[c], s, t);
    }
    if (p->res) {
      const int64_t wo = m % p->Wo, ho = (m / p->Wo) % p->Ho, b = m / (p->Wo * p->Ho);
      if (p->res_pool) {
        const float *q00 = p->res + ((b * p->res_h + 2 * ho) * p->res_w + 2 * wo) * p->res_c;
        const float *q01 = q00 + p->res_c, *q10 = q00 + p->res_w * p->res_c, *q11 = q10 + p->res_c;
        if (res_direct) {
          for (int64_t c = 0; c < nc; c++)
            y[c] += xnor_pool4(q00[n0 + c], q01[n0 + c], q10[n0 + c], q11[n0 + c]);
        } else {
          for (int64_t c = 0; c < nc; c++)
            y[c] += xnor_pool4(q00[ridx[c]], q01[ridx[c]], q10[ridx[c]], q11[ridx[c]]);
        }
      } else {
        const float *q = p->res + ((b * p->res_h + ho) * p->res_w + wo) * p->res_c;
        if (res_direct) {
          for (int64_t c = 0; c < nc; c++) y[c] += q[n0 + c];
        } else {
          for (int64_t c = 0; c < nc; c++) y[c] += q[ridx[c]];
        }
      }
    }
    if (p->rp_slope) {
      const float *b1 = p->rp_b1 + n0, *a = p->rp_slope + n0, *b2 = p->rp_b2 + n0;
      for (int64_t c = 0; c < nc; c++) y[c] = xnor_rprelu(y[c], b1[c], a[c], b2[c]);
    }
    if (p->out_f) memcpy(p->out_f + m * p->N + n0, y, (size_t)nc * sizeof(float));
    if (p->out_bits) {
      uint64_t word = 0;
      if (p->next_bias) {
        for (int64_t c = 0; c < nc; c++) word |= (uint64_t)xnor_bit(y[c] + p->next_bias[n0 + c]) << c;
      } else {
        for (int64_t c = 0; c < nc; c++) word |= (uint64_t)xnor_bit(y[c]) << c;
      }
      p->out_bits[m * nw + g] = word;
    }
  }
}

static int SFX(conv)(const xnor_conv_args *p) {
  const int64_t taps = p->kh * p->kw, kwords = taps * p->cw, M = p->B * p->Ho * p->Wo;
  const int32_t kreal = (int32_t)(taps * p->C);
  const int64_t npan = (p->N + XNOR_PANEL - 1) / XNOR_PANEL, ngroups = (p->N + 63) / 64;
  const int direct = (p->kh == 1 && p->kw == 1 && p->stride == 1 && p->pad == 0);
  const int int_only = p->out_int && !p->out_f && !p->out_bits;
  int64_t nt = p->nthreads > 0 ? p->nthreads : 1;
  /* Each thread one contiguous span of rows (a multiple of XNOR_MR; the last thread takes the rest), cut into q
   * chunks of mc rows, >= 8 when M allows; the nt*q chunks are dealt statically, q to each thread. Static: each
   * thread writes the same rows on every call (and a stride-1 next layer reads them from its own L2), where
   * dynamic dealing moved output lines between the cores' caches on every call: 784x256x128 went from 0.9x to
   * 2.3x at 2 threads (A/B alternated), S6 1.6x to 2.5x. Equal spans: chunks of one size for all of M gave the
   * threads 8 and 7 chunks of S2's and S7's 784 rows (a 1.875x ceiling at 2 threads). */
  int64_t span = (M + nt - 1) / nt;
  span = (span + XNOR_MR - 1) / XNOR_MR * XNOR_MR;
  nt = (M + span - 1) / span;
  int64_t mc = (span + 7) / 8;
  mc = (mc + XNOR_MR - 1) / XNOR_MR * XNOR_MR;
  if (mc > 96) mc = 96;
  if (mc < 2 * XNOR_MR) mc = 2 * XNOR_MR;
  const int64_t q = (span + mc - 1) / mc, nchunks = nt * q;
  int err = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads((int)nt)
#endif
  {
    /* one per-thread scratch block: dots (mc x 64 int32), masks (mc), im2col rows (mc x kwords) */
    const size_t ncol = direct ? 0 : (size_t)(mc * kwords);
    uint64_t *const buf = (uint64_t *)xnor_scratch(((size_t)(mc * 32) + (size_t)mc + ncol) * sizeof(uint64_t));
    int32_t *const dots = (int32_t *)buf;
    uint64_t *const mask = buf ? buf + mc * 32 : NULL, *const col = (buf && !direct) ? mask + mc : NULL;
    if (!buf) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
      err = -2;
    } else {
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
      for (int64_t ch = 0; ch < nchunks; ch++) {
        const int64_t s0 = (ch / q) * span, j0 = (ch % q) * mc, m0 = s0 + j0;
        const int64_t end = s0 + (j0 + mc < span ? j0 + mc : span), rows = (end < M ? end : M) - m0;
        if (rows <= 0) continue;
        const uint64_t *rowp[96];
        for (int64_t r = 0; r < rows; r++) {
          const int64_t m = m0 + r;
          if (direct) {
            rowp[r] = p->x + m * p->cw;
            continue;
          }
          const int64_t wo = m % p->Wo, ho = (m / p->Wo) % p->Ho, b = m / (p->Wo * p->Ho);
          uint64_t *dst = col + r * kwords, pm = 0;
          for (int64_t i = 0; i < p->kh; i++) {
            const int64_t hi = ho * p->stride - p->pad + i;
            for (int64_t j = 0; j < p->kw; j++, dst += p->cw) {
              const int64_t wi = wo * p->stride - p->pad + j;
              if (hi < 0 || hi >= p->H || wi < 0 || wi >= p->W) {
                memset(dst, 0, (size_t)p->cw * sizeof(uint64_t));
                pm |= (uint64_t)1 << (i * p->kw + j);
              } else {
                memcpy(dst, p->x + ((b * p->H + hi) * p->W + wi) * p->cw, (size_t)p->cw * sizeof(uint64_t));
              }
            }
          }
          mask[r] = pm;
          rowp[r] = col + r * kwords;
        }
        for (int64_t g = 0; g < ngroups; g++) {
          for (int64_t pp = 2 * g; pp < 2 * g + 2 && pp < npan; pp++) {
            const uint64_t *wp = p->w + pp * kwords * XNOR_PANEL;
            const int64_t n0 = pp * XNOR_PANEL, nl = (p->N - n0 < XNOR_PANEL) ? p->N - n0 : XNOR_PANEL;
            /* integer-only output: the microkernel writes the rows of out_int itself (no copy) */
            int32_t *base = int_only ? p->out_int + m0 * p->N + n0 : dots + (pp & 1) * XNOR_PANEL;
            const int64_t ld = int_only ? p->N : 64;
            for (int64_t r0 = 0; r0 < rows; r0 += XNOR_MR) {
              const uint64_t *ap[XNOR_MR];
              int32_t tmp[XNOR_MR * 64];
              const int64_t nr = (rows - r0 < XNOR_MR) ? rows - r0 : XNOR_MR;
              for (int r = 0; r < XNOR_MR; r++) ap[r] = rowp[r0 + (r < nr ? r : nr - 1)];
              int32_t *dblk = base + r0 * ld;
              if (nr == XNOR_MR && nl == XNOR_PANEL) {
                SFX(ukernel)(ap, wp, kwords, kreal, dblk, ld);
              } else {
                SFX(ukernel)(ap, wp, kwords, kreal, tmp, 64);
                for (int64_t r = 0; r < nr; r++) memcpy(dblk + r * ld, tmp + r * 64, (size_t)nl * sizeof(int32_t));
              }
              if (!direct) {
                for (int64_t r = 0; r < nr; r++) {
                  int32_t *drow = dblk + r * ld;
                  uint64_t pm = mask[r0 + r];
                  while (pm) {
                    const int t = __builtin_ctzll(pm);
                    pm &= pm - 1;
                    for (int64_t l = 0; l < nl; l++) drow[l] -= p->tapsum[(n0 + l) * taps + t];
                  }
                }
              }
            }
          }
          if (!int_only) SFX(epilogue)(p, m0, rows, g, dots);
        }
      }
    }
  }
  return err;
}

static void SFX(pack)(const float *x, int64_t rows, int64_t C, const float *bias, uint64_t *out, int64_t cw,
                      int64_t nt) {
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * C;
#if XNOR_ISA_NOW == 2
    /* 16 channels per compare: the mask of x + bias < 0 is the packed bits (NaN and -0.0 compare false) */
    const __m512 zero = _mm512_setzero_ps();
    int64_t i = 0;
    for (; 64 * i + 64 <= C; i++) { /* full words: four plain loads, the masks joined in mask registers */
      const float *xc = xr + 64 * i;
      __m512 v0 = _mm512_loadu_ps(xc), v1 = _mm512_loadu_ps(xc + 16);
      __m512 v2 = _mm512_loadu_ps(xc + 32), v3 = _mm512_loadu_ps(xc + 48);
      if (bias) {
        const float *bc = bias + 64 * i;
        v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bc)), v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bc + 16));
        v2 = _mm512_add_ps(v2, _mm512_loadu_ps(bc + 32)), v3 = _mm512_add_ps(v3, _mm512_loadu_ps(bc + 48));
      }
      const __mmask32 lo = _mm512_kunpackw(_mm512_cmp_ps_mask(v1, zero, _CMP_LT_OQ), _mm512_cmp_ps_mask(v0, zero, _CMP_LT_OQ));
      const __mmask32 hi = _mm512_kunpackw(_mm512_cmp_ps_mask(v3, zero, _CMP_LT_OQ), _mm512_cmp_ps_mask(v2, zero, _CMP_LT_OQ));
      out[r * cw + i] = _cvtmask64_u64(_mm512_kunpackd(hi, lo));
    }
    for (; i < cw; i++) { /* the last, partial word */
      uint64_t word = 0;
      for (int64_t q = 0; q < 4; q++) {
        const int64_t c0 = 64 * i + 16 * q;
        if (c0 >= C) break;
        const __mmask16 k = (C - c0 >= 16) ? (__mmask16)0xffff : (__mmask16)((1u << (C - c0)) - 1u);
        __m512 v = _mm512_maskz_loadu_ps(k, xr + c0);
        if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + c0));
        word |= (uint64_t)(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ) & k) << (16 * q);
      }
      out[r * cw + i] = word;
    }
    continue;
#endif
    for (int64_t i = 0; i < cw; i++) {
      const int64_t c0 = 64 * i, nc = (C - c0 < 64) ? C - c0 : 64;
      uint64_t word = 0;
      if (bias) {
        for (int64_t c = 0; c < nc; c++) word |= (uint64_t)xnor_bit(xr[c0 + c] + bias[c0 + c]) << c;
      } else {
        for (int64_t c = 0; c < nc; c++) word |= (uint64_t)xnor_bit(xr[c0 + c]) << c;
      }
      out[r * cw + i] = word;
    }
  }
}

/* --- Elementwise steps of the fused training block's backward, on channels-last [rows][C] float32 ---------
 * Channel sums are taken per block of XNOR_RB rows in float, then over the blocks in double, in block order:
 * the result does not depend on the number of threads. */

/* out = sign(x + bias) as float, sign(0) = +1 (also for -0.0 and NaN); bias may be NULL. */
static void SFX(pm1)(const float *restrict x, int64_t rows, int64_t C, const float *restrict bias,
                     float *restrict out, int64_t nt) {
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t r = 0; r < rows; r++) {
    const float *restrict xr = x + r * C;
    float *restrict o = out + r * C;
    if (bias) {
      XNOR_VEC for (int64_t c = 0; c < C; c++) o[c] = (xr[c] + bias[c] < 0.0f) ? -1.0f : 1.0f;
    } else {
      XNOR_VEC for (int64_t c = 0; c < C; c++) o[c] = (xr[c] < 0.0f) ? -1.0f : 1.0f;
    }
  }
}

/* ApproxSign backward at u = x + bias: out = add + g * clamp(2 - 2|u|, min 0) (add may be NULL: 0);
 * part[blk][c] = block sums of g * clamp(...) (the bias gradient, without add). */
static void SFX(approxsign_bwd)(const float *restrict g, const float *restrict x, int64_t rows, int64_t C,
                                const float *restrict bias, const float *restrict add, float *restrict out,
                                float *restrict part, int64_t nt) {
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t blk = 0; blk < nb; blk++) {
    float *restrict s = part + blk * C;
    for (int64_t c = 0; c < C; c++) s[c] = 0.0f;
    const int64_t r1 = (blk + 1) * XNOR_RB < rows ? (blk + 1) * XNOR_RB : rows;
    for (int64_t r = blk * XNOR_RB; r < r1; r++) {
      const float *restrict gr = g + r * C, *restrict xr = x + r * C;
      const float *restrict ar = add ? add + r * C : NULL;
      float *restrict o = out + r * C;
      /* one loop per (bias, add) case: no pointer test inside a vectorised loop */
#define XNOR_AS_LOOP(U, O)                                                                                     \
  XNOR_VEC for (int64_t c = 0; c < C; c++) {                                                                   \
    const float u = (U), m = 2.0f - 2.0f * fabsf(u), v = gr[c] * (m < 0.0f ? 0.0f : m);                        \
    o[c] = (O);                                                                                                \
    s[c] += v;                                                                                                 \
  }
      if (bias && ar) {
        XNOR_AS_LOOP(xr[c] + bias[c], ar[c] + v)
      } else if (bias) {
        XNOR_AS_LOOP(xr[c] + bias[c], v)
      } else if (ar) {
        XNOR_AS_LOOP(xr[c], ar[c] + v)
      } else {
        XNOR_AS_LOOP(xr[c], v)
      }
#undef XNOR_AS_LOOP
    }
  }
}

/* One row of prelu_bn_bwd's first pass (restrict parameters, so the compiler vectorises the selects and sums). */
static inline void SFX(prelu_bn_row)(const float *restrict g, const float *restrict t, const float *restrict slope,
                                     const float *restrict y, const float *restrict mean, int64_t C,
                                     float *restrict gt, float *restrict s) {
  float *restrict s0 = s, *restrict s1 = s + C, *restrict s2 = s + 2 * C, *restrict s3 = s + 3 * C;
  XNOR_VEC for (int64_t c = 0; c < C; c++) {
    const float gv = g[c], tv = t[c], sg = slope[c] * gv, tg = tv * gv; /* all unconditional: the */
    const float v = tv > 0.0f ? gv : sg;                                 /* selects vectorise */
    gt[c] = v;
    s0[c] += gv;
    s1[c] += v;
    s2[c] += tv > 0.0f ? 0.0f : tg;
    s3[c] += v * (y[c] - mean[c]);
  }
}

/* The backward of out = prelu(t, slope) + b2 with t = bn(y) + shortcut + b1 (training BN, batch statistics), pass 1:
 * gt = t > 0 ? g : slope*g (the gradient of t, and of the shortcut) and the block sums part[blk][4][C] of g, gt,
 * the slope gradient (t > 0 ? 0 : t*g) and gt * (y - mean). */
static void SFX(prelu_bn_bwd1)(const float *restrict g, const float *restrict t, const float *restrict slope,
                               const float *restrict y, const float *restrict mean, int64_t rows, int64_t C,
                               float *restrict gt, float *restrict part, int64_t nt) {
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t blk = 0; blk < nb; blk++) {
    float *s = part + blk * 4 * C;
    memset(s, 0, (size_t)(4 * C) * sizeof(float));
    const int64_t r1 = (blk + 1) * XNOR_RB < rows ? (blk + 1) * XNOR_RB : rows;
    for (int64_t r = blk * XNOR_RB; r < r1; r++)
      SFX(prelu_bn_row)(g + r * C, t + r * C, slope, y + r * C, mean, C, gt + r * C, s);
  }
}

static inline void SFX(bn_bwd_row)(const float *restrict gt, const float *restrict y, const float *restrict mean,
                                   const float *restrict k1, const float *restrict mg, const float *restrict k2,
                                   int64_t C, float *restrict gy) {
  XNOR_VEC for (int64_t c = 0; c < C; c++) gy[c] = k1[c] * ((gt[c] - mg[c]) - (y[c] - mean[c]) * k2[c]);
}

/* Pass 2: the BN input gradient gy = k1 * ((gt - mg) - (y - mean) * k2), k1 = gamma*invstd, mg = mean of gt,
 * k2 = invstd^2 * mean of gt * (y - mean) (native_batch_norm_backward's training formula). */
static void SFX(bn_bwd2)(const float *restrict gt, const float *restrict y, const float *restrict mean,
                         const float *restrict k, int64_t rows, int64_t C, float *restrict gy, int64_t nt) {
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t r = 0; r < rows; r++) SFX(bn_bwd_row)(gt + r * C, y + r * C, mean, k, k + C, k + 2 * C, C, gy + r * C);
}

/* Binary weights of the float convolution, from latent OIHW w: out in OHWI (channels-last) order,
 * out[o][tap][i] = alpha[o] * sign(w[o][i][tap]) (sign(0) = +1). */
static void SFX(weff)(const float *restrict w, int64_t O, int64_t I, int64_t taps, const float *restrict alpha,
                      float *restrict out) {
  for (int64_t o = 0; o < O; o++) {
    const float a = alpha[o], na = -alpha[o];
    const float *restrict wo = w + o * I * taps;
    float *restrict oo = out + o * I * taps;
    for (int64_t t = 0; t < taps; t++) /* writes in order (taps strided reads of one o stay in L1) */
      for (int64_t i = 0; i < I; i++) oo[t * I + i] = wo[i * taps + t] < 0.0f ? na : a;
  }
}

/* The clipped STE of the latent weights: gw in OHWI (channels-last) order -> out OIHW (w's layout),
 * out[o][i][tap] = |w[o][i][tap]| <= 1 ? gw[o][tap][i] : 0. */
static void SFX(ste_wgrad)(const float *restrict gw, const float *restrict w, int64_t O, int64_t I, int64_t taps,
                           float *restrict out) {
  for (int64_t o = 0; o < O; o++) {
    const float *restrict go = gw + o * I * taps, *restrict wo = w + o * I * taps;
    float *restrict oo = out + o * I * taps;
    for (int64_t i = 0; i < I; i++)
      for (int64_t t = 0; t < taps; t++) {
        const float v = go[t * I + i];
        oo[i * taps + t] = fabsf(wo[i * taps + t]) <= 1.0f ? v : 0.0f;
      }
  }
}

/* Training BatchNorm + residual + RPReLU of the fused block's forward, on channels-last [rows][C] y: per-block
 * channel sums of y (pass 1) and of (y - mean)^2 (pass 2) into part[blk][C]; then (pass 3, after the caller has
 * the statistics) t = beta + (y - mean) * s + res[c % res_c] + b1 and h = (t > 0 ? t : slope * t) + b2. */
static void SFX(bn_sums)(const float *restrict y, int64_t rows, int64_t C, const float *restrict mean,
                         float *restrict part, int64_t nt) {
  const int64_t nb = (rows + XNOR_RB - 1) / XNOR_RB;
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t blk = 0; blk < nb; blk++) {
    float *restrict s = part + blk * C;
    for (int64_t c = 0; c < C; c++) s[c] = 0.0f;
    const int64_t r1 = (blk + 1) * XNOR_RB < rows ? (blk + 1) * XNOR_RB : rows;
    for (int64_t r = blk * XNOR_RB; r < r1; r++) {
      const float *restrict yr = y + r * C;
      if (mean) {
        XNOR_VEC for (int64_t c = 0; c < C; c++) {
          const float d = yr[c] - mean[c];
          s[c] += d * d;
        }
      } else {
        XNOR_VEC for (int64_t c = 0; c < C; c++) s[c] += yr[c];
      }
    }
  }
}

/* One row segment of bn_act (restrict parameters and unconditional selects, so the compiler vectorises it). */
static inline void SFX(bn_act_seg)(const float *restrict y, const float *restrict mean, const float *restrict scale,
                                   const float *restrict beta, const float *restrict res, const float *restrict b1,
                                   const float *restrict slope, const float *restrict b2, float *restrict t,
                                   float *restrict h, int64_t n) {
  XNOR_VEC for (int64_t c = 0; c < n; c++) {
    const float z = beta[c] + (y[c] - mean[c]) * scale[c];
    const float tv = (z + res[c]) + b1[c], sv = slope[c] * tv;
    t[c] = tv;
    h[c] = (tv > 0.0f ? tv : sv) + b2[c];
  }
}

static void SFX(bn_act)(const float *restrict y, int64_t rows, int64_t C, const float *restrict mean,
                        const float *restrict scale, const float *restrict beta, const float *restrict res,
                        int64_t res_c, const float *restrict b1, const float *restrict slope,
                        const float *restrict b2, float *restrict t, float *restrict h, int64_t nt) {
#ifdef _OPENMP
#pragma omp parallel for num_threads((int)(nt > 0 ? nt : 1)) schedule(static)
#endif
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c0 = 0; c0 < C; c0 += res_c) /* res_c divides C: the residual repeated over the groups */
      SFX(bn_act_seg)(y + r * C + c0, mean + c0, scale + c0, beta + c0, res + r * res_c, b1 + c0, slope + c0,
                      b2 + c0, t + r * C + c0, h + r * C + c0, res_c);
}
