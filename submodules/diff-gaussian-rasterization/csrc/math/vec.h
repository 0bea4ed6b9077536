// Small value types and the matrix conventions of the original renderer.
// Torch-free and __host__ __device__ so that the CPU and CUDA backends share it.
#pragma once

#include <cmath>

#include "config.h"

namespace dgr {

struct Vec2 {
  float x, y;
};
// F = float, or on the CPU a vector of floats holding one Gaussian per lane (the per-Gaussian
// math of gaussian.h is written once for both).
template <class F>
struct Vec3T {
  F x, y, z;
};
template <class F>
struct Vec4T {
  F x, y, z, w;
};
using Vec3 = Vec3T<float>;
using Vec4 = Vec4T<float>;

DGR_HD Vec3 operator+(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
DGR_HD Vec3 operator-(Vec3 a, Vec3 b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
DGR_HD Vec3 operator*(float s, Vec3 a) { return {s * a.x, s * a.y, s * a.z}; }
DGR_HD float dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

DGR_HD Vec3 load3(const float* p) { return {p[0], p[1], p[2]}; }
DGR_HD Vec4 load4(const float* p) { return {p[0], p[1], p[2], p[3]}; }
DGR_HD void store3(float* p, Vec3 v) {
  p[0] = v.x;
  p[1] = v.y;
  p[2] = v.z;
}

// The view and projection matrices arrive as the transposes of the usual column-vector matrices
// (row-major [4,4] tensors holding M^T), i.e. the 16 floats are M in column-major order:
// element (row r, column c) of M is m[4 * c + r].
template <class F>
DGR_HD Vec3T<F> transform_point4x3(const float* m, Vec3T<F> p) {
  return {m[0] * p.x + m[4] * p.y + m[8] * p.z + m[12],
          m[1] * p.x + m[5] * p.y + m[9] * p.z + m[13],
          m[2] * p.x + m[6] * p.y + m[10] * p.z + m[14]};
}
template <class F>
DGR_HD Vec4T<F> transform_point4x4(const float* m, Vec3T<F> p) {
  return {m[0] * p.x + m[4] * p.y + m[8] * p.z + m[12],
          m[1] * p.x + m[5] * p.y + m[9] * p.z + m[13],
          m[2] * p.x + m[6] * p.y + m[10] * p.z + m[14],
          m[3] * p.x + m[7] * p.y + m[11] * p.z + m[15]};
}
// Applies the transposed rotation part, M^T v: brings a view-space gradient back to world space.
template <class F>
DGR_HD Vec3T<F> transform_vec4x3_transpose(const float* m, Vec3T<F> v) {
  return {m[0] * v.x + m[1] * v.y + m[2] * v.z,
          m[4] * v.x + m[5] * v.y + m[6] * v.z,
          m[8] * v.x + m[9] * v.y + m[10] * v.z};
}

// NDC [-1, 1] to pixel coordinates where pixel i's centre sits at integer i.
template <class F>
DGR_HD F ndc2pix(F v, int size) { return ((v + 1.0f) * (float)size - 1.0f) * 0.5f; }

// Comparisons rather than fminf/fmaxf: those are library calls in scalar host code.
DGR_HD float minf(float a, float b) { return a < b ? a : b; }
DGR_HD float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }
DGR_HD int mini(int a, int b) { return a < b ? a : b; }
DGR_HD bool finite(float v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

// What the per-Gaussian math needs beyond + - * / and comparisons, for F = float here. The CPU
// backend specialises it for its vectors of floats (cpu/simd.h), each operation with the results
// of these lane by lane. (Whole formulas may still round differently in the last bit: the
// compiler fuses multiply-adds in scalar and vector code as it sees fit.)
template <class F>
struct LaneOps;
template <>
struct LaneOps<float> {
  using Mask = bool;
  DGR_HD static float splat(float v) { return v; }
  DGR_HD static float sqrt(float v) { return sqrtf(v); }
  DGR_HD static float ceil(float v) { return ceilf(v); }
  DGR_HD static float fmax(float a, float b) { return fmaxf(a, b); }
  DGR_HD static float select(bool m, float a, float b) { return m ? a : b; }
  DGR_HD static float clamp(float v, float lo, float hi) { return clampf(v, lo, hi); }
};

}  // namespace dgr
