// 3DGS-MCMC's position noise in one pass over the model's raw parameters (CPU).
//
// After every optimizer step each position moves by Σ·ε·gate(o)·scale (Kheradmand et al. 2024):
// Σ = R S² Rᵀ the Gaussian's covariance (R from its normalised quaternion, S = exp(log-scale)),
// ε ~ N(0, I), gate(o) = sigmoid(100·((1 − o) − 0.995)) with o = sigmoid(opacity logit), so only
// near-dead Gaussians move noticeably. Done with torch operations this takes some twenty passes
// over [N, 3] tensors (activations, the gate, two quaternion rotations); here it is one pass that
// reads each Gaussian's parameters once, LANES Gaussians at a time (one per vector lane, with
// the polynomial exp of the blending, widened to any argument).
//
// ε is drawn in the same pass (counter_normal.h): component j of Gaussian i is draw 3i + j of
// the stream `key`, two 32-bit words the caller draws from torch's RNG each step. So the draws
// need no sequential state (torch's CPU normal_ runs on one thread, about 3 ms for 300k
// Gaussians), do not depend on the thread count, and resume exactly from a checkpoint of
// torch's RNG.
// Arguments are checked by the binding (ext.cpp), as for the rasterizer's entry points.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include "../math/gaussian.h"
#include "../rasterize_api.h"
#include "counter_normal.h"
#include "simd.h"

namespace dgr {

namespace {

using cpu::exp_any;
using cpu::vfloat;
using cpu::vuint;
using cpu::select_lanes;
using cpu::normal_draws;

template <class F>
F sigmoid(F x) {
  return 1.0f / (1.0f + exp_any(-x));
}

struct NoiseParams {
  float gate_sharpness, gate_centre, scale;
};

// Σ·ε·gate(o)·scale of one Gaussian (F = float) or of one per lane (F = vfloat).
template <class F>
Vec3T<F> displacement(F opacity_logit, Vec4T<F> q, Vec3T<F> log_scale, Vec3T<F> eps,
                      const NoiseParams& p) {
  const F opacity = sigmoid(opacity_logit);
  // Below e^-60 the gate is 0: the displacement would be far below any position's resolution,
  // and its products would be denormal floats, which cost a hundred cycles each.
  const F z = p.gate_sharpness * ((1.0f - opacity) - p.gate_centre);
  const F gate = select_lanes(z < -60.0f, LaneOps<F>::splat(0.0f), sigmoid(z));
  const F inv_norm = 1.0f / LaneOps<F>::sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w);
  const Vec4T<F> unit = {q.x * inv_norm, q.y * inv_norm, q.z * inv_norm, q.w * inv_norm};
  const Vec3T<F> s = {exp_any(log_scale.x), exp_any(log_scale.y), exp_any(log_scale.z)};
  F c[6];  // Σ's upper triangle: xx, xy, xz, yy, yz, zz
  compute_cov3d(s, 1.0f, unit, c);
  const F g = gate * p.scale;
  const F v0 = eps.x * g, v1 = eps.y * g, v2 = eps.z * g;
  return {c[0] * v0 + c[1] * v1 + c[2] * v2, c[1] * v0 + c[3] * v1 + c[4] * v2,
          c[2] * v0 + c[4] * v1 + c[5] * v2};
}

// Runs block(first) on whole blocks of LANES Gaussians in parallel, then one(i) on the last
// partial block's Gaussians: the split depends on n only, not on how the blocks are shared among
// threads, so each Gaussian's result is the same for any thread count.
template <class Block, class One>
void for_each_block(int64_t n, const Block& block, const One& one) {
  constexpr int L = cpu::LANES;
  const int64_t blocks = n / L;
  at::parallel_for(0, blocks, 256, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; b++) block(b * L);
  });
  for (int64_t i = blocks * L; i < n; i++) one(i);
}

// For each Gaussian i of n, a 3-vector from vector_value(first) (LANES Gaussians from first) or
// one_value(i) (the last partial block), handed to store(row, value) with row = rows + 3 i, as
// for_each_block splits them.
template <class VectorValue, class OneValue, class Store>
void for_each_row3(float* rows, int64_t n, const VectorValue& vector_value,
                   const OneValue& one_value, const Store& store) {
  for_each_block(
      n,
      [&](int64_t first) {
        const Vec3T<vfloat> d = vector_value(first);
        for (int l = 0; l < cpu::LANES; l++)
          store(rows + 3 * (first + l), Vec3{d.x[l], d.y[l], d.z[l]});
      },
      [&](int64_t i) { store(rows + 3 * i, one_value(i)); });
}

}  // namespace

void mcmc_position_noise_cpu(at::Tensor& xyz, const at::Tensor& log_scales,
                             const at::Tensor& quats, const at::Tensor& opacity_logits,
                             const NoiseKey& key, double scale, double gate_sharpness,
                             double gate_centre) {
  using cpu::gather_field;
  float* x = xyz.data_ptr<float>();
  const float* ls = log_scales.data_ptr<float>();
  const float* q = quats.data_ptr<float>();
  const float* ol = opacity_logits.data_ptr<float>();
  const NoiseParams p = {(float)gate_sharpness, (float)gate_centre, (float)scale};
  for_each_row3(
      x, xyz.size(0),
      [&](int64_t first) {
        return displacement<vfloat>(
            gather_field(ol, first, 1, 0),
            {gather_field(q, first, 4, 0), gather_field(q, first, 4, 1),
             gather_field(q, first, 4, 2), gather_field(q, first, 4, 3)},
            {gather_field(ls, first, 3, 0), gather_field(ls, first, 3, 1),
             gather_field(ls, first, 3, 2)},
            normal_draws<vfloat, vuint>(first, key.words), p);
      },
      [&](int64_t i) {
        return displacement<float>(
            ol[i], {q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]},
            {ls[3 * i], ls[3 * i + 1], ls[3 * i + 2]},
            normal_draws<float, uint32_t>(i, key.words), p);
      },
      [](float* row, Vec3 d) {
        row[0] += d.x;
        row[1] += d.y;
        row[2] += d.z;
      });
}

at::Tensor mcmc_noise_draws_cpu(int64_t n, const NoiseKey& key) {
  at::Tensor eps = at::empty({n, 3}, at::kFloat);
  for_each_row3(
      eps.data_ptr<float>(), n,
      [&](int64_t first) { return normal_draws<vfloat, vuint>(first, key.words); },
      [&](int64_t i) { return normal_draws<float, uint32_t>(i, key.words); },
      [](float* row, Vec3 d) {
        row[0] = d.x;
        row[1] = d.y;
        row[2] = d.z;
      });
  return eps;
}

}  // namespace dgr
