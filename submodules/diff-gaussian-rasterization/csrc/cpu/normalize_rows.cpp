// Rows scaled to unit length, x / max(|x|, 1e-12), and its backward pass (CPU): the model's
// quaternions each step. With torch operations this is a row-sum product, a clamp, an rsqrt and
// a broadcast product forward and four passes backward, about 4 ms at 300k rows on two cores
// (torch's broadcasts over rows of 4 are slow); here it is one pass each way.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>

namespace dgr {

namespace {

// The norm's floor, squared: F.normalize's eps = 1e-12.
constexpr float MIN_SQUARED_NORM = 1e-24f;

// The loops with the row length known to the compiler (4: quaternions), which then vectorises
// them across rows; K = 0: any length, given at run time.
template <int K>
void normalize_rows_loop(const float* x, float* out, float* inv_norm, int64_t rows, int64_t k) {
  const int64_t n = K > 0 ? K : k;
  at::parallel_for(0, rows, 8192, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float* r = x + i * n;
      float sum = 0.0f;
      for (int64_t j = 0; j < n; j++) sum += r[j] * r[j];
      const float inv = 1.0f / std::sqrt(std::max(sum, MIN_SQUARED_NORM));
      inv_norm[i] = inv;
      for (int64_t j = 0; j < n; j++) out[i * n + j] = r[j] * inv;
    }
  });
}

// d(x/|x|) = (I − u uᵀ) / |x| with u = x / |x|: dx = (g − u (g·u)) / |x|.
template <int K>
void normalize_rows_backward_loop(const float* grad, const float* out, const float* inv_norm,
                                  float* dx, int64_t rows, int64_t k) {
  const int64_t n = K > 0 ? K : k;
  at::parallel_for(0, rows, 8192, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float* g = grad + i * n;
      const float* u = out + i * n;
      float dot = 0.0f;
      for (int64_t j = 0; j < n; j++) dot += g[j] * u[j];
      for (int64_t j = 0; j < n; j++) dx[i * n + j] = (g[j] - u[j] * dot) * inv_norm[i];
    }
  });
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> normalize_rows_cpu(const at::Tensor& x) {
  const int64_t rows = x.size(0), k = x.size(1);
  at::Tensor out = at::empty_like(x), inv_norm = at::empty({rows, 1}, x.options());
  auto run = k == 4 ? normalize_rows_loop<4> : normalize_rows_loop<0>;
  run(x.data_ptr<float>(), out.data_ptr<float>(), inv_norm.data_ptr<float>(), rows, k);
  return {out, inv_norm};
}

at::Tensor normalize_rows_backward_cpu(const at::Tensor& grad, const at::Tensor& out,
                                       const at::Tensor& inv_norm) {
  const int64_t rows = out.size(0), k = out.size(1);
  at::Tensor dx = at::empty_like(out);
  auto run = k == 4 ? normalize_rows_backward_loop<4> : normalize_rows_backward_loop<0>;
  run(grad.data_ptr<float>(), out.data_ptr<float>(), inv_norm.data_ptr<float>(),
      dx.data_ptr<float>(), rows, k);
  return dx;
}

}  // namespace dgr
