/* XNOR-popcount binary convolution / GEMM for CPUs: public interface (plain C, no torch headers).
 *
 * Convention: bit 1 <=> -1, bit 0 <=> +1; a packed bit is (x < 0), so -0.0 and NaN give +1.
 * Activations are NHWC with the channels of each pixel packed into cw = ceil(C/64) uint64 words (LSB first).
 * Weights are OHWI-packed (taps * cw words per output channel) and re-laid into panels of 32 output channels:
 * panel p holds words [k][lane] for k < taps*cw, lane < 32 (output channel 32p + lane; missing lanes are 0).
 * A dot over K = taps*C real bits is K - 2*popcount(a XOR w); pad bits are 0 on both sides, so they never count.
 * Spatial zero-padding is exact: padded taps are filled with 0 words (+1) and their contribution
 * tapsum[n][tap] = sum_c sign(w[n, tap, c]) is subtracted.
 */
#ifndef LTBENCH_XNOR_CPU_H
#define LTBENCH_XNOR_CPU_H
#include <stdint.h>

#define XNOR_PANEL 32 /* output channels per weight panel (one SIMD lane each) */
#define XNOR_MR 6     /* rows per microkernel call */

enum { XNOR_ISA_SCALAR = 0, XNOR_ISA_AVX2 = 1, XNOR_ISA_AVX512 = 2 };

typedef struct {
  /* packed input, NHWC: B*H*W pixels of cw words, C real channels */
  const uint64_t *x;
  int64_t B, H, W, cw, C;
  /* weight panels and per-(channel, tap) sums of sign(w) for the padding correction */
  const uint64_t *w;
  const int32_t *tapsum;
  int64_t N, kh, kw, stride, pad, Ho, Wo;
  /* fused epilogue (any pointer may be NULL): y = scale*dot + shift (+ residual) ; RPReLU ; bits of y+next_bias */
  const float *scale, *shift;
  const float *res; /* NHWC float, res_h x res_w pixels of res_c channels; channel n reads res[n % res_c] */
  int64_t res_c, res_h, res_w, res_pool; /* res_pool: 2x2 average pool of the residual (strided blocks) */
  const float *rp_b1, *rp_slope, *rp_b2, *next_bias;
  /* outputs (NULL = not wanted), all B*Ho*Wo rows: int32 dots [.][N], floats [.][N], bits [.][ceil(N/64)] */
  int32_t *out_int;
  float *out_f;
  uint64_t *out_bits;
  int64_t nthreads, isa;
} xnor_conv_args;

int xnor_isa_supported(int64_t isa);
int64_t xnor_best_isa(void);
int xnor_has_openmp(void);
int xnor_conv(const xnor_conv_args *a);
/* Benchmark helper: xnor_conv(a) n times back to back (the kernel's time without the caller's per-call cost). */
int xnor_conv_repeat(const xnor_conv_args *a, int64_t n);
int xnor_pack(const float *x, int64_t rows, int64_t C, const float *bias, uint64_t *out, int64_t cw,
              int64_t nthreads, int64_t isa);
/* Weights straight from float OIHW w[N][C][taps]: panels [ceil(N/32)][taps*cw][32] (bit = w < 0, missing lanes
 * and pad bits 0), tapsum[N][taps] = sum_c sign(w) (sign(0) = +1) and, unless alpha is NULL, alpha[N] = mean |w|
 * per output channel (summed in double). Used per training step. */
int xnor_pack_weights(const float *w, int64_t N, int64_t C, int64_t taps, uint64_t *panels, int32_t *tapsum,
                      float *alpha);
/* Elementwise steps of the fused training block's backward, on channels-last [rows][C] float32 (bias/add may be
 * NULL; channel sums over rows in blocks of 64 rows, then in double in block order: independent of the thread count).
 * xnor_pm1: out = sign(x + bias), sign(0) = +1. xnor_approxsign_backward: out = add + g * clamp(2 - 2|x + bias|,
 * min 0), csum[C] the channel sums of the second term. xnor_prelu_bn_backward: the backward of
 * prelu(t, slope) + b2 with t = bn(y) + shortcut + b1 (training BatchNorm, batch mean and invstd):
 * gt = t > 0 ? g : slope*g, gy = the BN input gradient (native_batch_norm_backward's formula) and sums[4][C] =
 * channel sums of g, gt (the b1 and BN bias gradients), the slope gradient (t > 0 ? 0 : t*g) and the BN weight
 * gradient (sum of gt * (y - mean) * invstd). */
int xnor_pm1(const float *x, int64_t rows, int64_t C, const float *bias, float *out, int64_t nthreads, int64_t isa);
int xnor_approxsign_backward(const float *g, const float *x, int64_t rows, int64_t C, const float *bias,
                             const float *add, float *out, float *csum, int64_t nthreads, int64_t isa);
int xnor_prelu_bn_backward(const float *g, const float *t, const float *slope, const float *y, const float *mean,
                           const float *invstd, const float *gamma, int64_t rows, int64_t C, float *gt, float *gy,
                           float *sums, int64_t nthreads, int64_t isa);
/* The float conv's binary weights from latent OIHW w, written OHWI (channels-last): alpha[o] * sign(w), sign(0) = +1;
 * and the clipped STE back: out (OIHW) = |w| <= 1 ? gw (OHWI) : 0. */
int xnor_weff(const float *w, int64_t O, int64_t I, int64_t taps, const float *alpha, float *out, int64_t isa);
int xnor_ste_weight_grad(const float *gw, const float *w, int64_t O, int64_t I, int64_t taps, float *out,
                         int64_t isa);
/* The float gradients of a binary convolution on AMX-BF16 (xnor_amx.h): whether it runs here, and the gradients
 * of y = conv(sign(x + bias), alpha * sign(w)) at g_y: NHWC g_x, and g_w (OIHW) the latent weights' clipped-STE
 * gradient; -3 where AMX is unavailable. */
int xnor_amx_available(void);
int xnor_amx_conv_backward(const float *g_y, const float *x, const float *bias, const float *w, const float *alpha,
                           int64_t Bn, int64_t H, int64_t W, int64_t C, int64_t O, int64_t k, int64_t stride,
                           int64_t pad, int64_t Ho, int64_t Wo, float *g_x, float *g_w, int64_t nt);
/* The fused block's training BatchNorm with the residual and RPReLU after it, on channels-last [rows][C] y:
 * batch mean and 1/sqrt(var + eps) (biased var; channel sums per 64-row block, then in double), the running
 * statistics updated as nn.BatchNorm2d does (unbiased var, factor momentum), t = bn(y) + res[c % res_c] + b1
 * and h = prelu(t, slope) + b2. */
int xnor_bn_act_train(const float *y, int64_t rows, int64_t C, const float *gamma, const float *beta, float *rm,
                      float *rv, double momentum, double eps, const float *res, int64_t res_c, const float *b1,
                      const float *slope, const float *b2, float *mean, float *invstd, float *t, float *h,
                      int64_t nthreads, int64_t isa);
/* Timing helper for the benchmark: cycles of a dependent 64-bit add chain of n steps (for clock estimation). */
int64_t xnor_add_chain(int64_t n);
/* Throughput probe of the XOR+POPCNT+ADD mix on the AVX-512 or AVX2 path: iters x xnor_peak_macs(isa) binary
 * MACs; a checksum, or -1 where the path has no probe or does not run here. */
int64_t xnor_peak(int64_t iters, int64_t isa);
/* Binary MACs one xnor_peak iteration does on `isa` (0: no probe). */
int64_t xnor_peak_macs(int64_t isa);
#endif
