// Real spherical harmonics up to degree 3, as the original renderer evaluates them (sign
// conventions included), and their derivatives. Forward and backward share one basis function.
#pragma once

#include "vec.h"

namespace dgr {

constexpr float SH_C0 = 0.28209479177387814f;
constexpr float SH_C1 = 0.4886025119029199f;
// Degree-2 and degree-3 factors. A function rather than namespace-scope arrays, because CUDA
// device code cannot read host arrays; scalars and constexpr calls work on both sides.
struct ShFactors {
  float c2[5];
  float c3[7];
};
DGR_HD constexpr ShFactors sh_factors() {
  return {{1.0925484305920792f, -1.0925484305920792f, 0.31539156525252005f, -1.0925484305920792f,
           0.5462742152960396f},
          {-0.5900435899266435f, 2.890611442640554f, -0.4570457994644658f, 0.3731763325901154f,
           -0.4570457994644658f, 1.445305721320277f, -0.5900435899266435f}};
}

// Basis values b[k] for the (degree+1)^2 coefficients at unit direction d, and, when grad is
// true, their partial derivatives with respect to d.x, d.y, d.z (d treated as unconstrained).
template <bool grad>
DGR_HD void sh_basis(int degree, Vec3 d, float* b, float* bx, float* by, float* bz) {
  constexpr ShFactors K = sh_factors();
  const float x = d.x, y = d.y, z = d.z;
  b[0] = SH_C0;
  if (grad) bx[0] = by[0] = bz[0] = 0.0f;
  if (degree < 1) return;
  b[1] = -SH_C1 * y;
  b[2] = SH_C1 * z;
  b[3] = -SH_C1 * x;
  if (grad) {
    bx[1] = 0.0f, by[1] = -SH_C1, bz[1] = 0.0f;
    bx[2] = 0.0f, by[2] = 0.0f, bz[2] = SH_C1;
    bx[3] = -SH_C1, by[3] = 0.0f, bz[3] = 0.0f;
  }
  if (degree < 2) return;
  const float xx = x * x, yy = y * y, zz = z * z;
  const float xy = x * y, yz = y * z, xz = x * z;
  b[4] = K.c2[0] * xy;
  b[5] = K.c2[1] * yz;
  b[6] = K.c2[2] * (2.0f * zz - xx - yy);
  b[7] = K.c2[3] * xz;
  b[8] = K.c2[4] * (xx - yy);
  if (grad) {
    bx[4] = K.c2[0] * y, by[4] = K.c2[0] * x, bz[4] = 0.0f;
    bx[5] = 0.0f, by[5] = K.c2[1] * z, bz[5] = K.c2[1] * y;
    bx[6] = -2.0f * K.c2[2] * x, by[6] = -2.0f * K.c2[2] * y, bz[6] = 4.0f * K.c2[2] * z;
    bx[7] = K.c2[3] * z, by[7] = 0.0f, bz[7] = K.c2[3] * x;
    bx[8] = 2.0f * K.c2[4] * x, by[8] = -2.0f * K.c2[4] * y, bz[8] = 0.0f;
  }
  if (degree < 3) return;
  b[9] = K.c3[0] * y * (3.0f * xx - yy);
  b[10] = K.c3[1] * xy * z;
  b[11] = K.c3[2] * y * (4.0f * zz - xx - yy);
  b[12] = K.c3[3] * z * (2.0f * zz - 3.0f * xx - 3.0f * yy);
  b[13] = K.c3[4] * x * (4.0f * zz - xx - yy);
  b[14] = K.c3[5] * z * (xx - yy);
  b[15] = K.c3[6] * x * (xx - 3.0f * yy);
  if (grad) {
    bx[9] = K.c3[0] * 6.0f * xy, by[9] = K.c3[0] * 3.0f * (xx - yy), bz[9] = 0.0f;
    bx[10] = K.c3[1] * yz, by[10] = K.c3[1] * xz, bz[10] = K.c3[1] * xy;
    bx[11] = -2.0f * K.c3[2] * xy, by[11] = K.c3[2] * (4.0f * zz - xx - 3.0f * yy),
    bz[11] = 8.0f * K.c3[2] * yz;
    bx[12] = -6.0f * K.c3[3] * xz, by[12] = -6.0f * K.c3[3] * yz,
    bz[12] = K.c3[3] * (6.0f * zz - 3.0f * xx - 3.0f * yy);
    bx[13] = K.c3[4] * (4.0f * zz - 3.0f * xx - yy), by[13] = -2.0f * K.c3[4] * xy,
    bz[13] = 8.0f * K.c3[4] * xz;
    bx[14] = 2.0f * K.c3[5] * xz, by[14] = -2.0f * K.c3[5] * yz, bz[14] = K.c3[5] * (xx - yy);
    bx[15] = 3.0f * K.c3[6] * (xx - yy), by[15] = -6.0f * K.c3[6] * xy, bz[15] = 0.0f;
  }
}

// The SH coefficients (T = const float) or their gradients (T = float) of one Gaussian: the DC
// term and the others, which may live in separate arrays (the 2024 rasterizer's `dc` argument)
// or one after the other ([M][3] in one row).
template <class T>
struct ShRow {
  T* dc;    // [3]
  T* rest;  // [M - 1][3]
  DGR_HD T* coeff(int k) const { return k == 0 ? dc : rest + 3 * (k - 1); }
};
using ShCoeffs = ShRow<const float>;
using ShGrads = ShRow<float>;

// Row i of per-Gaussian SH arrays: `sh` holds every coefficient, or with `sh_dc` (DC terms
// apart) the others; either may be null.
template <class T>
DGR_HD ShRow<T> sh_row(T* sh, T* sh_dc, int64_t sh_stride, int64_t i) {
  T* row = sh ? sh + sh_stride * i : nullptr;
  if (sh_dc) return {sh_dc + 3 * i, row};
  return {row, row ? row + 3 : nullptr};
}

// Colour of one Gaussian seen from campos (only the first (degree+1)^2 coefficients are read).
// Returns max(SH + 0.5, 0) and flags the channels that clamped.
DGR_HD Vec3 sh_to_color(int degree, ShCoeffs sh, Vec3 mean, Vec3 campos, bool clamped[3]) {
  Vec3 dir = mean - campos;
  dir = (1.0f / sqrtf(dot(dir, dir))) * dir;
  float b[MAX_SH_COEFFS];
  sh_basis<false>(degree, dir, b, nullptr, nullptr, nullptr);
  const int n = (degree + 1) * (degree + 1);
  float rgb[3] = {SH_COLOR_OFFSET, SH_COLOR_OFFSET, SH_COLOR_OFFSET};
  for (int k = 0; k < n; k++) {
    const float* c = sh.coeff(k);
    for (int ch = 0; ch < 3; ch++) rgb[ch] += b[k] * c[ch];
  }
  for (int ch = 0; ch < 3; ch++) {
    clamped[ch] = rgb[ch] < 0.0f;
    rgb[ch] = fmaxf(rgb[ch], 0.0f);
  }
  return {rgb[0], rgb[1], rgb[2]};
}

// Backward of sh_to_color: writes dL/dsh (the first (degree+1)^2 coefficients; the others are
// left untouched) and returns dL/dmean through the viewing direction. Clamped channels pass nothing.
DGR_HD Vec3 sh_to_color_backward(int degree, ShCoeffs sh, Vec3 mean, Vec3 campos,
                                 const bool clamped[3], Vec3 dL_dcolor, ShGrads dL_dsh) {
  const Vec3 v = mean - campos;
  const float inv_norm = 1.0f / sqrtf(dot(v, v));
  const Vec3 dir = inv_norm * v;
  float b[MAX_SH_COEFFS], bx[MAX_SH_COEFFS], by[MAX_SH_COEFFS], bz[MAX_SH_COEFFS];
  sh_basis<true>(degree, dir, b, bx, by, bz);
  const float g[3] = {clamped[0] ? 0.0f : dL_dcolor.x, clamped[1] ? 0.0f : dL_dcolor.y,
                      clamped[2] ? 0.0f : dL_dcolor.z};
  const int n = (degree + 1) * (degree + 1);
  Vec3 dL_ddir = {0.0f, 0.0f, 0.0f};
  for (int k = 0; k < n; k++) {
    float sh_dot_g = 0.0f;
    const float* c = sh.coeff(k);
    float* dc = dL_dsh.coeff(k);
    for (int ch = 0; ch < 3; ch++) {
      dc[ch] = b[k] * g[ch];
      sh_dot_g += c[ch] * g[ch];
    }
    dL_ddir = dL_ddir + sh_dot_g * Vec3{bx[k], by[k], bz[k]};
  }
  // d(v/|v|)/dv = (I - dir dir^T) / |v|
  return inv_norm * (dL_ddir - dot(dir, dL_ddir) * dir);
}

}  // namespace dgr
