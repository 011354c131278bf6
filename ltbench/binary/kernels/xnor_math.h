/* Device-independent XNOR math shared by the CPU kernel (C), the CUDA kernel (__host__ __device__) and the
 * host-side tests: the dot-product identities, the fused epilogue's float steps and the b1 MMA fragment maps.
 * Convention: bit 1 <=> -1, bit 0 <=> +1; pad bits are 0 on both sides and K is the real bit count. */
#ifndef LTBENCH_XNOR_MATH_H
#define LTBENCH_XNOR_MATH_H
#include <stdint.h>

#if defined(__CUDACC__)
#define XNOR_HD __host__ __device__ __forceinline__
#else
#define XNOR_HD static inline
#endif

/* sum_k x_k*y_k from XOR: K - 2*popc(a^b). */
XNOR_HD int32_t xnor_dot_xor(int32_t k, int32_t pop_xor) { return k - 2 * pop_xor; }

/* The same sum from one AND-popcount plus a rank-1 correction (x = 1-2a, y = 1-2b):
 * sum (1-2a)(1-2b) = K - 2*popc(A) - 2*popc(B) + 4*popc(A&B). */
XNOR_HD int32_t xnor_dot_and(int32_t k, int32_t pop_a, int32_t pop_b, int32_t pop_and) {
  return k - 2 * pop_a - 2 * pop_b + 4 * pop_and;
}

/* Folded alpha*BN: scale*dot + shift. */
XNOR_HD float xnor_affine(int32_t dot, float scale, float shift) { return scale * (float)dot + shift; }

/* AvgPool2d(2, 2) of one 2x2 window, summed in PyTorch's order. */
XNOR_HD float xnor_pool4(float a, float b, float c, float d) { return (((a + b) + c) + d) * 0.25f; }

/* RPReLU: prelu(y + b_in) + b_out. */
XNOR_HD float xnor_rprelu(float y, float b_in, float slope, float b_out) {
  const float v = y + b_in;
  return (v > 0.0f ? v : slope * v) + b_out;
}

/* Packed sign bit of v (+1 for 0, -0.0 and NaN). */
XNOR_HD uint32_t xnor_bit(float v) { return v < 0.0f ? 1u : 0u; }

/* mma.m16n8k256 .b1 fragments (PTX ISA, "Matrix Fragments for mma.m16n8k256"): groupID = lane >> 2,
 * tig = lane % 4. Each register holds 32 consecutive K bits; *kword is the 32-bit word (0..7) of the
 * 256-bit K chunk. A (row-major 16x256): reg 0/2 -> row g, reg 1/3 -> row g+8; reg 0/1 -> word tig,
 * reg 2/3 -> word 4+tig. B (col-major 256x8): col g; reg 0 -> word tig, reg 1 -> word 4+tig.
 * C/D (16x8 s32): c0,c1 -> row g, c2,c3 -> row g+8; col = 2*tig + (i & 1). */
XNOR_HD void xnor_frag_a(int lane, int reg, int *row, int *kword) {
  *row = (lane >> 2) + ((reg & 1) ? 8 : 0);
  *kword = (lane & 3) + ((reg & 2) ? 4 : 0);
}
XNOR_HD void xnor_frag_b(int lane, int reg, int *col, int *kword) {
  *col = lane >> 2;
  *kword = (lane & 3) + (reg ? 4 : 0);
}
XNOR_HD void xnor_frag_c(int lane, int i, int *row, int *col) {
  *row = (lane >> 2) + (i >= 2 ? 8 : 0);
  *col = 2 * (lane & 3) + (i & 1);
}
#endif
