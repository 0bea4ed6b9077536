// torch's fused CPU Adam (torch.optim.Adam(fused=True): no weight decay, amsgrad or maximize),
// reproduced bit for bit on any span of a parameter, so that the backward pass can update each
// Gaussian's SH coefficients as soon as their gradient is known and that gradient never exists
// for the whole model at once (at 1M Gaussians it would be 180 MB).
//
// torch writes the element update two ways, and the compiler contracts them differently:
//   in vectors:      v' = fma(c2·g, g, v·β2)
//   one at a time:   v' = fma(v, β2, c2·g·g)
// (m' = fma(1 − β1, g − m, m), denominator √v' / √(1 − β2^t) + ε and p' = p + (−lr/(1 − β1^t))·m' / den
// alike). Which elements torch takes one at a time follows from its vector width
// (TorchAdamLayout). Python checks once per process that this reproduces the
// installed torch (diff_gaussian_rasterization.adam_matches_torch) before using it.
#pragma once

#include <cmath>
#include <cstdint>

#include "simd.h"

namespace dgr {
namespace cpu {

inline vfloat fma(vfloat a, vfloat b, vfloat c) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_fmadd_ps(to_native(a), to_native(b), to_native(c));
#elif defined(__FMA__)
  return (vfloat)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  for (int i = 0; i < LANES; i++) a[i] = std::fma(a[i], b[i], c[i]);
  return a;
#endif
}

}  // namespace cpu

// The per-step constants, rounded to float as torch rounds them (from double).
struct AdamConstants {
  float lerp_weight;      // 1 − β1
  float beta2;
  float sq_weight;        // 1 − β2
  float bias2_sqrt;       // √(1 − β2^t)
  float eps;
  float neg_step_size;    // −lr / (1 − β1^t)

  static AdamConstants at_step(double lr, double beta1, double beta2, double eps, double step) {
    const double bias1 = 1 - std::pow(beta1, step);
    const double bias2 = 1 - std::pow(beta2, step);
    return {float(1 - beta1), float(beta2), float(1 - beta2), float(std::sqrt(bias2)), float(eps),
            float(-(lr / bias1))};
  }
};

// Which flat elements of an n-element tensor torch's fused Adam updates one at a time: after
// its whole vectors of `lanes` floats, the last n % lanes. (It splits the tensor over its threads
// in whole cache lines and runs what is left over as one piece, so the thread count does not
// matter; Python checks this against the installed torch.)
struct TorchAdamLayout {
  int64_t vector_end = 0;

  TorchAdamLayout() = default;
  TorchAdamLayout(int64_t n, int64_t lanes) : vector_end(n - n % lanes) {}
  bool one_at_a_time(int64_t k) const { return k >= vector_end; }
};

// One element as torch's vector code computes it; `in_vector_code` false: as its scalar tail.
inline void adam_element(float& p, float& m, float& v, float g, const AdamConstants& c,
                         bool in_vector_code) {
  m = std::fma(c.lerp_weight, g - m, m);
  if (in_vector_code) {
    const float weighted = c.sq_weight * g, decayed = v * c.beta2;
    v = std::fma(weighted, g, decayed);
  } else {
    const float weighted = c.sq_weight * g * g;
    v = std::fma(v, c.beta2, weighted);
  }
  const float denom = std::sqrt(v) / c.bias2_sqrt + c.eps;
  const float step = c.neg_step_size * m / denom;
  p = p + step;
}

// Adam on elements [first, first + count) of the flat parameter (p, m, v) with gradients g[0..count).
inline void adam_span(float* p, float* m, float* v, const float* g, int64_t first, int64_t count,
                      const AdamConstants& c, const TorchAdamLayout& layout) {
  using cpu::vfloat;
  constexpr int L = cpu::LANES;
  p += first, m += first, v += first;
  int64_t k = 0;
  // Spans that end before torch's last elements are all vector code: whole vectors here, then
  // the remainder element by element with the same arithmetic.
  const int64_t vector_end = first + count <= layout.vector_end ? count / L * L : 0;
  const vfloat w = cpu::splat(c.lerp_weight), b2 = cpu::splat(c.beta2), c2 = cpu::splat(c.sq_weight);
  const vfloat bias2 = cpu::splat(c.bias2_sqrt), eps = cpu::splat(c.eps);
  const vfloat neg_step = cpu::splat(c.neg_step_size);
  for (; k < vector_end; k += L) {
    vfloat pv, mv, vv, gv;
    std::memcpy(&pv, p + k, sizeof pv), std::memcpy(&mv, m + k, sizeof mv);
    std::memcpy(&vv, v + k, sizeof vv), std::memcpy(&gv, g + k, sizeof gv);
    mv = cpu::fma(w, gv - mv, mv);
    vv = cpu::fma(c2 * gv, gv, vv * b2);
    const vfloat denom = LaneOps<vfloat>::sqrt(vv) / bias2 + eps;
    pv = pv + neg_step * mv / denom;
    std::memcpy(p + k, &pv, sizeof pv), std::memcpy(m + k, &mv, sizeof mv);
    std::memcpy(v + k, &vv, sizeof vv);
  }
  for (; k < count; k++)
    adam_element(p[k], m[k], v[k], g[k], c, !layout.one_at_a_time(first + k));
}

}  // namespace dgr
