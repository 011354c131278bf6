// torch binding of the CUDA XNOR kernels (built by torch.utils.cpp_extension on a GPU machine).
#include <c10/cuda/CUDAStream.h>
#include <torch/extension.h>

#include <cstdint>
#include <optional>

extern "C" {
typedef struct {
  const uint32_t *x;
  int64_t B, H, W, cw32, C;
  const uint32_t *w;
  const int32_t *tapsum;
  const int32_t *wpop;
  int64_t N, kh, kw, stride, pad, Ho, Wo;
  const float *scale, *shift, *res;
  int64_t res_c, res_h, res_w, res_pool;
  const float *rp_b1, *rp_slope, *rp_b2, *next_bias;
  int32_t *out_int;
  float *out_f;
  unsigned long long *out_bits;
} xnor_cuda_conv_args;
int xnor_cuda_conv(const xnor_cuda_conv_args *p, cudaStream_t stream);
int xnor_cuda_bmma_peak(const uint32_t *in, int32_t *out, int64_t iters, int64_t blocks, int64_t threads,
                        cudaStream_t stream);
int xnor_cuda_bmma_chains(void);
int xnor_cuda_sign_pack(const float *x, int64_t rows, int64_t C, const float *bias, uint32_t *out, int64_t cw32,
                        cudaStream_t stream);
}

template <typename T>
static T *ptr(const std::optional<at::Tensor> &t) {
  return t.has_value() ? reinterpret_cast<T *>(t->data_ptr()) : nullptr;
}

static void check_cuda(const at::Tensor &t, const char *name) {
  TORCH_CHECK(t.is_cuda() && t.is_contiguous(), name, " must be a contiguous CUDA tensor");
}

void conv(at::Tensor x, at::Tensor w, at::Tensor tapsum, at::Tensor wpop, int64_t C, int64_t N, int64_t kh,
          int64_t kw, int64_t stride, int64_t pad, std::optional<at::Tensor> scale, std::optional<at::Tensor> shift,
          std::optional<at::Tensor> res, bool res_pool, std::optional<at::Tensor> rp_b1,
          std::optional<at::Tensor> rp_slope, std::optional<at::Tensor> rp_b2, std::optional<at::Tensor> next_bias,
          std::optional<at::Tensor> out_int, std::optional<at::Tensor> out_f, std::optional<at::Tensor> out_bits) {
  check_cuda(x, "x");
  check_cuda(w, "w");
  check_cuda(tapsum, "tapsum");
  check_cuda(wpop, "wpop");
  xnor_cuda_conv_args a{};
  a.x = reinterpret_cast<const uint32_t *>(x.data_ptr());
  a.B = x.size(0), a.H = x.size(1), a.W = x.size(2), a.cw32 = x.size(3) * 2, a.C = C;
  a.w = reinterpret_cast<const uint32_t *>(w.data_ptr());
  a.tapsum = tapsum.data_ptr<int32_t>();
  a.wpop = wpop.data_ptr<int32_t>();
  a.N = N, a.kh = kh, a.kw = kw, a.stride = stride, a.pad = pad;
  a.Ho = (a.H + 2 * pad - kh) / stride + 1, a.Wo = (a.W + 2 * pad - kw) / stride + 1;
  a.scale = ptr<const float>(scale), a.shift = ptr<const float>(shift), a.res = ptr<const float>(res);
  if (res.has_value()) a.res_c = res->size(3), a.res_h = res->size(1), a.res_w = res->size(2);
  a.res_pool = res_pool;
  a.rp_b1 = ptr<const float>(rp_b1), a.rp_slope = ptr<const float>(rp_slope), a.rp_b2 = ptr<const float>(rp_b2);
  a.next_bias = ptr<const float>(next_bias);
  a.out_int = ptr<int32_t>(out_int), a.out_f = ptr<float>(out_f), a.out_bits = ptr<unsigned long long>(out_bits);
  const int rc = xnor_cuda_conv(&a, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(rc == 0, "xnor_cuda_conv failed with code ", rc);
}

void sign_pack(at::Tensor x, std::optional<at::Tensor> bias, at::Tensor out) {
  check_cuda(x, "x");
  check_cuda(out, "out");
  const int64_t C = x.size(-1);
  const int rc = xnor_cuda_sign_pack(x.data_ptr<float>(), x.numel() / C, C, ptr<const float>(bias),
                                     reinterpret_cast<uint32_t *>(out.data_ptr()), out.size(-1) * 2,
                                     c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(rc == 0, "xnor_cuda_sign_pack failed with code ", rc);
}

// G0: `in` holds 32 lanes x 6 words (A and B fragments), `out` blocks*threads/32 warps x 32 lanes x 4 int32.
void bmma_peak(at::Tensor in, at::Tensor out, int64_t iters, int64_t blocks, int64_t threads) {
  check_cuda(in, "in");
  check_cuda(out, "out");
  TORCH_CHECK(in.numel() * in.element_size() >= 32 * 6 * 4, "bmma_peak: in needs 192 32-bit words");
  TORCH_CHECK(out.scalar_type() == at::kInt && out.numel() >= blocks * threads * 4,
              "bmma_peak: out needs blocks*threads*4 int32");
  const int rc = xnor_cuda_bmma_peak(reinterpret_cast<const uint32_t *>(in.data_ptr()), out.data_ptr<int32_t>(),
                                     iters, blocks, threads, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(rc == 0, "xnor_cuda_bmma_peak failed with code ", rc);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("conv", &conv);
  m.def("sign_pack", &sign_pack);
  m.def("bmma_peak", &bmma_peak);
  m.attr("BMMA_PEAK_CHAINS") = xnor_cuda_bmma_chains();
}
