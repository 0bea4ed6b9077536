// fused_ssim._C: SSIM + L1 forward/backward on CPU tensors (see ssim.h for the math), and on
// CUDA tensors in CUDA builds (FSSIM_WITH_CUDA: ssim_kernels.cu, on the legacy default stream).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include "ssim.h"
#ifdef FSSIM_WITH_CUDA
#include "ssim_kernels.h"
constexpr bool kHasCuda = true;
#else
constexpr bool kHasCuda = false;
#endif

namespace {

constexpr int64_t kRowGrain = 8;  // rows per parallel task

auto for_rows = [](int64_t count, const auto& body) {
  at::parallel_for(0, count, kRowGrain, body);
};

void check_images(const at::Tensor& img, const at::Tensor& ref) {
  TORCH_CHECK_VALUE(img.sizes() == ref.sizes(), "fused_ssim: images differ in shape: ",
                    img.sizes(), " vs ", ref.sizes());
  TORCH_CHECK_VALUE(img.dim() >= 2, "fused_ssim: images must be [..., H, W]");
  TORCH_CHECK_VALUE(img.scalar_type() == at::kFloat && ref.scalar_type() == at::kFloat,
                    "fused_ssim: images must be float32");
  TORCH_CHECK_VALUE(img.device() == ref.device(), "fused_ssim: images are on ", img.device(),
                    " and ", ref.device());
  TORCH_CHECK_VALUE(img.device().is_cpu() || (img.is_cuda() && kHasCuda),
                    "fused_ssim: images must be CPU tensors (no CUDA backend was built)");
}

#ifdef FSSIM_WITH_CUDA
std::vector<at::Tensor> ssim_l1_forward_cuda(const at::Tensor& x, const at::Tensor& y) {
  static const fused_ssim::Window win = fused_ssim::make_window();
  const int H = static_cast<int>(x.size(-2)), W = static_cast<int>(x.size(-1));
  const int64_t N = x.numel() / (static_cast<int64_t>(H) * W);
  auto opts = x.options();
  at::Tensor tmp = at::empty({fused_ssim::kStats, x.numel()}, opts);
  std::vector<int64_t> dshape{3};
  for (auto s : x.sizes()) dshape.push_back(s);
  at::Tensor dmap = at::empty(dshape, opts);
  at::Tensor terms = at::empty({2, x.numel()}, opts);  // SSIM map, |x - y|
  fused_ssim::cuda::forward(x.data_ptr<float>(), y.data_ptr<float>(), N, H, W, win,
                            tmp.data_ptr<float>(), dmap.data_ptr<float>(),
                            terms.data_ptr<float>(), nullptr);
  const at::Tensor means = terms.sum(1, false, at::kDouble).div(static_cast<double>(x.numel()));
  return {means[0].to(at::kFloat), means[1].to(at::kFloat), dmap};
}
#endif

// -> (ssim_mean, l1_mean, dmap [3, ...]) ; dmap is what backward needs.
std::vector<at::Tensor> ssim_l1_forward(const at::Tensor& img, const at::Tensor& ref) {
  check_images(img, ref);
  const at::Tensor x = img.contiguous(), y = ref.contiguous();
#ifdef FSSIM_WITH_CUDA
  if (x.is_cuda()) return ssim_l1_forward_cuda(x, y);
#endif
  const int H = static_cast<int>(x.size(-2)), W = static_cast<int>(x.size(-1));
  const int64_t N = x.numel() / (static_cast<int64_t>(H) * W);
  auto opts = x.options();
  at::Tensor tmp = at::empty({fused_ssim::kStats, x.numel()}, opts);
  at::Tensor stats = at::empty({fused_ssim::kStats, x.numel()}, opts);
  std::vector<int64_t> dshape{3};
  for (auto s : x.sizes()) dshape.push_back(s);
  at::Tensor dmap = at::empty(dshape, opts);
  at::Tensor row_ssim = at::empty({N * H}, opts.dtype(at::kDouble));
  at::Tensor row_l1 = at::empty({N * H}, opts.dtype(at::kDouble));
  fused_ssim::forward(x.data_ptr<float>(), y.data_ptr<float>(), N, H, W, tmp.data_ptr<float>(),
                      stats.data_ptr<float>(), dmap.data_ptr<float>(), row_ssim.data_ptr<double>(),
                      row_l1.data_ptr<double>(), for_rows);
  const double n = static_cast<double>(x.numel());
  // Sequential sums of the per-row partial sums: independent of the thread count.
  double ssim_total = 0, l1_total = 0;
  const double* rs = row_ssim.data_ptr<double>();
  const double* rl = row_l1.data_ptr<double>();
  for (int64_t r = 0; r < N * H; ++r) ssim_total += rs[r], l1_total += rl[r];
  return {at::scalar_tensor(ssim_total / n, opts), at::scalar_tensor(l1_total / n, opts), dmap};
}

at::Tensor ssim_l1_backward(const at::Tensor& img, const at::Tensor& ref, const at::Tensor& dmap,
                            double grad_ssim_mean, double grad_l1_mean) {
  check_images(img, ref);
  const at::Tensor x = img.contiguous(), y = ref.contiguous(), d = dmap.contiguous();
  const int H = static_cast<int>(x.size(-2)), W = static_cast<int>(x.size(-1));
  const int64_t N = x.numel() / (static_cast<int64_t>(H) * W);
  const double n = static_cast<double>(x.numel());
  at::Tensor tmp = at::empty({3, x.numel()}, x.options());
#ifdef FSSIM_WITH_CUDA
  if (x.is_cuda()) {
    static const fused_ssim::Window win = fused_ssim::make_window();
    at::Tensor grad = at::empty_like(x);
    fused_ssim::cuda::backward(x.data_ptr<float>(), y.data_ptr<float>(), d.data_ptr<float>(), N,
                               H, W, win, static_cast<float>(grad_l1_mean / n),
                               static_cast<float>(grad_ssim_mean / n), tmp.data_ptr<float>(),
                               grad.data_ptr<float>(), nullptr);
    return grad;
  }
#endif
  at::Tensor blurred = at::empty({3, x.numel()}, x.options());
  at::Tensor grad = at::empty_like(x);
  fused_ssim::backward(x.data_ptr<float>(), y.data_ptr<float>(), d.data_ptr<float>(), N, H, W,
                       static_cast<float>(grad_l1_mean / n), static_cast<float>(grad_ssim_mean / n),
                       tmp.data_ptr<float>(), blurred.data_ptr<float>(), grad.data_ptr<float>(),
                       for_rows);
  return grad;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("ssim_l1_forward", &ssim_l1_forward, "mean SSIM, mean L1 and the backward maps");
  m.def("ssim_l1_backward", &ssim_l1_backward, "gradient of a*SSIM + b*L1 w.r.t. the image");
  m.attr("has_cuda") = kHasCuda;
}
