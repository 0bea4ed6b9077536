// 3DGS-MCMC's position noise in one pass over the model's raw parameters (CPU).
//
// After every optimizer step each position moves by Σ·ε·gate(o)·scale (Kheradmand et al. 2024):
// Σ = R S² Rᵀ the Gaussian's covariance (R from its normalised quaternion, S = exp(log-scale)),
// ε ~ N(0, I), gate(o) = sigmoid(100·((1 − o) − 0.995)) with o = sigmoid(opacity logit), so only
// near-dead Gaussians move noticeably. Done with torch operations this takes some twenty passes
// over [N, 3] tensors (activations, the gate, two quaternion rotations); here it is one pass that
// reads each Gaussian's parameters once. ε comes from the caller (torch's RNG), so the random
// stream, and with it resuming from checkpoints, is the same as with the torch version. The
// arithmetic differs from the torch version in the last bits (another order of operations).
// Arguments are checked by the binding (ext.cpp), as for the rasterizer's entry points.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>

#include "math/gaussian.h"

namespace dgr {

namespace {

inline float sigmoidf(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void mcmc_position_noise_cpu(at::Tensor& xyz, const at::Tensor& log_scales,
                             const at::Tensor& quats, const at::Tensor& opacity_logits,
                             const at::Tensor& eps, double scale, double gate_sharpness,
                             double gate_centre) {
  const int64_t n = xyz.size(0);
  float* x = xyz.data_ptr<float>();
  const float* ls = log_scales.data_ptr<float>();
  const float* q = quats.data_ptr<float>();
  const float* ol = opacity_logits.data_ptr<float>();
  const float* e = eps.data_ptr<float>();
  const float k = (float)gate_sharpness, centre = (float)gate_centre, lr = (float)scale;
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const float opacity = sigmoidf(ol[i]);
      const float gate = sigmoidf(k * ((1.0f - opacity) - centre));
      const float* qi = q + 4 * i;
      const float norm = std::sqrt(qi[0] * qi[0] + qi[1] * qi[1] + qi[2] * qi[2] + qi[3] * qi[3]);
      const Vec4 unit = {qi[0] / norm, qi[1] / norm, qi[2] / norm, qi[3] / norm};
      const Vec3 s = {std::exp(ls[3 * i]), std::exp(ls[3 * i + 1]), std::exp(ls[3 * i + 2])};
      float c[6];  // Σ's upper triangle: xx, xy, xz, yy, yz, zz
      compute_cov3d(s, 1.0f, unit, c);
      const float g = gate * lr;
      const float v0 = e[3 * i] * g, v1 = e[3 * i + 1] * g, v2 = e[3 * i + 2] * g;
      x[3 * i] += c[0] * v0 + c[1] * v1 + c[2] * v2;
      x[3 * i + 1] += c[1] * v0 + c[3] * v1 + c[4] * v2;
      x[3 * i + 2] += c[2] * v0 + c[4] * v1 + c[5] * v2;
    }
  });
}

}  // namespace dgr
