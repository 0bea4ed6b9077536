// Small value types and the matrix conventions of the original renderer.
// Torch-free and __host__ __device__ so that the CPU and CUDA backends share it.
#pragma once

#include <cmath>
#include <type_traits>

#include "config.h"

namespace dgr {

struct Vec2 {
  float x, y;
};
// F is float, or (in the CPU backend) a vector of floats, one Gaussian per lane: the per-Gaussian
// math written on F runs one Gaussian at a time on CUDA and LANES at a time on the CPU.
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

// What comparisons of F give: bool, or a vector of lane masks.
template <class F>
using MaskOf = decltype(F{} < F{});

// v in every lane of F (v itself for float).
template <class F>
DGR_HD F broadcast(float v) {
  if constexpr (std::is_same<F, float>::value) {
    return v;
  } else {
    return F{} + v;
  }
}

// sqrt and ceil of F (the CPU backend specialises this for its vector type, in cpu/simd.h).
template <class F>
struct LaneMath {
  static DGR_HD F sqrt(F x) { return sqrtf(x); }
  static DGR_HD F ceil(F x) { return ceilf(x); }
};

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
// fmaxf, bit for bit (the other operand where one is NaN; of two equal ones the first, as glibc's,
// which matters only for -0 and +0), without the library call it is in host code (several per
// Gaussian in preprocessing and its backward).
template <class F>
DGR_HD F maxf(F a, F b) {
#if defined(__CUDA_ARCH__)
  return fmaxf(a, b);
#else
  return a != a ? b : (b != b ? a : (a >= b ? a : b));
#endif
}
template <class F>
DGR_HD F clampf(F v, float lo, float hi) {
  const F l = broadcast<F>(lo), h = broadcast<F>(hi);
  return v < l ? l : (v > h ? h : v);
}
DGR_HD int mini(int a, int b) { return a < b ? a : b; }
DGR_HD bool finite(float v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

}  // namespace dgr
