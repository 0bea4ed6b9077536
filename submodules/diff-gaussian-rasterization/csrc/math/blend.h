// Per-pixel math of alpha blending, shared by the forward and backward passes of every backend,
// and the exact tests that let a backend skip tiles and rows where a Gaussian cannot reach the
// alpha threshold anywhere (they never change the image).
#pragma once

#include <cstdint>
#include <cstring>

#include "config.h"
#include "gaussian.h"

namespace dgr {

// Scalar helpers that also work lane-wise on GCC/Clang vector types (the CPU backend blends a
// 16-pixel tile row as one vector); `select` and comparisons follow vector semantics there. The
// bound b is a float (broadcast to every lane) or of a's own type.
template <class F, class B>
DGR_HD F min_of(F a, B b) {
  const F bv = F{} + b;
  return a < bv ? a : bv;
}
template <class F, class B>
DGR_HD F max_of(F a, B b) {
  const F bv = F{} + b;
  return a > bv ? a : bv;
}

// 1 / x. A backend may specialise it for its vector type with a faster form good to about an ulp
// (the CPU one does, for AVX-512).
template <class F>
DGR_HD F reciprocal(F x) { return 1.0f / x; }

// Bit pattern 2^n for integral-valued float n in [-126, 127], as float (scalar version).
DGR_HD float pow2_of_integral(float n) {
  const int32_t bits = ((int32_t)n + 127) << 23;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// exp(x) for x >= floor without branches, so that it vectorises (inputs below are raised to the
// floor). Cephes-style: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for e^r, and 2^n
// written into the exponent bits. Relative error about 2e-7 (a few float ulps). The inputs must
// keep n within 2^n's [-126, 127]: floor >= -87, x <= 88.
template <class F, class Pow2>
DGR_HD F exp_floored_impl(F x, float floor, Pow2 pow2) {
  x = max_of(x, floor);
  // Round to nearest with the 1.5 * 2^23 trick (exact for |v| < 2^22; floorf does not vectorise
  // everywhere).
  const float magic = 12582912.0f;
  const F n = (x * 1.44269504088896341f + magic) - magic;
  const F r = x - n * 0.693359375f + n * 2.12194440e-4f;
  F p = r * 1.9875691500e-4f + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * pow2(n);
}

// exp(x) for x <= 0, the blending's exp. Inputs below EXP_INPUT_FLOOR are raised to it: e^-30 is
// ~1e-13, far below any alpha that counts, and the floor keeps every product out of denormals.
constexpr float EXP_INPUT_FLOOR = -30.0f;
template <class F, class Pow2>
DGR_HD F exp_nonpositive_impl(F x, Pow2 pow2) {
  return exp_floored_impl(x, EXP_INPUT_FLOOR, pow2);
}

DGR_HD float exp_nonpositive(float x) {
#if defined(__CUDA_ARCH__)
  return __expf(fmaxf(x, EXP_INPUT_FLOOR));
#else
  return exp_nonpositive_impl(x, pow2_of_integral);
#endif
}

// The Gaussian's exponent at offset d = mean - pixel: -(A dx^2 + C dy^2)/2 - B dx dy.
template <class F>
DGR_HD F splat_power(const Splat& s, F dx, float dy) {
  return -0.5f * (s.conic_a * dx * dx + s.conic_c * dy * dy) - s.conic_b * dx * dy;
}

// Alpha of a splat at a pixel, min(0.99, o e^power); the caller also checks power <= 0 and
// alpha >= 1/255 (and skips otherwise).
template <class F>
DGR_HD F splat_alpha(float opacity, F G) { return min_of(opacity * G, ALPHA_MAX); }

// The exponent for a row of pixels at one height: splat_power regrouped as
// xx + x dy + (-C/2) dy^2, where xx = -A dx^2 / 2 and x = -B dx depend only on the pixel
// columns, so a backend that walks a splat down several rows computes them once.
template <class F>
struct RowPowerTerms {
  F xx, x;
};
template <class F>
DGR_HD RowPowerTerms<F> row_power_terms(const Splat& s, F dx) {
  return {(-0.5f * s.conic_a) * dx * dx, (-s.conic_b) * dx};
}
template <class F>
DGR_HD F row_power(const Splat& s, const RowPowerTerms<F>& t, float dy) {
  return t.xx + t.x * dy + (-0.5f * s.conic_c * dy * dy);
}

// --- Backward blending of one pixel (or a vector of pixels: F = float or a GCC vector type, M =
// bool or the matching integer mask) walking its splat list back to front.
//
// The pixel colour is C = sum_i c_i a_i T_i + T_final bg, with T_i = prod_{j<i} (1 - a_j), so
//   dC/da_i = c_i T_i - (sum_{j>i} c_j a_j T_j + T_final bg) / (1 - a_i).
// With the output gradient dp folded in, the bracket is one number per pixel, `behind`, which
// starts at T_final (dp . bg) and gains w_i (dp . c_i) after each splat: no per-channel running
// colours are needed.

template <class F>
struct BackwardPixel {
  F T;                      // transmittance in front of the splats processed so far (starts at final T)
  F behind;                 // sum over splats behind of w_j (dp . c_j), plus T_final (dp . bg)
  F dp_r, dp_g, dp_b, dp_d; // dL/d(pixel colour), dL/d(pixel inverse depth)
};

template <class F>
DGR_HD BackwardPixel<F> backward_pixel(F T_final, F dp_r, F dp_g, F dp_b, F dp_d, const float* bg) {
  return {T_final, T_final * (bg[0] * dp_r + bg[1] * dp_g + bg[2] * dp_b), dp_r, dp_g, dp_b, dp_d};
}

// Sums of one splat over the pixels it touched (per lane for vectors), as moments of
// v = G dL/dalpha in the pixel offset; splat_grad() turns them into the gradient record, since
// every remaining factor is a constant of the splat.
template <class F>
struct SplatGradSums {
  F x, y;          // sum v dx, sum v dy
  F xx, xy, yy;    // sum v dx^2, v dx dy, v dy^2
  F op;            // sum v = dL/d(opacity)
  F r, g, b, d;    // dL/d(colour), dL/d(inverse depth): sum w dp
};

// One step: the splat `s` at offset (dx, dy) with G = e^power and alpha, where `valid` says the
// pixel took this splat in the forward pass. Updates the pixel state and adds to the sums.
template <class F, class M>
DGR_HD void blend_backward_step(const Splat& s, F dx, float dy, F G, F alpha, M valid,
                                BackwardPixel<F>& p, SplatGradSums<F>& g) {
  const F zero = F{};
  const F inv_one_minus = reciprocal(1.0f - alpha);
  const F t = p.T * inv_one_minus;  // transmittance in front of this splat
  const F dot_c = p.dp_r * s.r + p.dp_g * s.g + p.dp_b * s.b + p.dp_d * s.inv_depth;
  F dL_dalpha = dot_c * t - p.behind * inv_one_minus;
  dL_dalpha = valid ? dL_dalpha : zero;
  const F w = valid ? alpha * t : zero;
  p.behind += w * dot_c;
  p.T = valid ? t : p.T;
  g.r += w * p.dp_r;
  g.g += w * p.dp_g;
  g.b += w * p.dp_b;
  g.d += w * p.dp_d;
  // No gradient through the 0.99 clamp (as the original): d alpha / dG = opacity, applied in
  // splat_grad().
  const F v = G * dL_dalpha;
  const F vx = v * dx;
  g.op += v;
  g.x += vx;
  g.xx += vx * dx;
  g.xy += vx * dy;
  g.y += v * dy;
  g.yy += v * (dy * dy);
}

// The gradient record from the (lane-summed) moments. With u = opacity v, power =
// -(A dx^2 + C dy^2)/2 - B dx dy and dx = mean - pixel: dL/dmean = sum u dpower/ddx, dL/dA =
// -sum u dx^2 / 2, and so on; the mean gradient is scaled from pixels to NDC by (W/2, H/2).
DGR_HD SplatGrad splat_grad(const Splat& s, float x, float y, float xx, float xy, float yy,
                            float op, float r, float g, float b, float d, float half_w,
                            float half_h) {
  const float o = s.opacity;
  SplatGrad out;
  out.mean2d_x = -o * (s.conic_a * x + s.conic_b * y) * half_w;
  out.mean2d_y = -o * (s.conic_c * y + s.conic_b * x) * half_h;
  out.conic_a = -0.5f * o * xx;
  out.conic_b = -o * xy;
  out.conic_c = -0.5f * o * yy;
  out.opacity = op;
  out.r = r, out.g = g, out.b = b;
  out.inv_depth = d;
  return out;
}

// Smallest value of the quadratic form q(d) = A dx^2 + 2 B dx dy + C dy^2 with dy fixed and dx in
// [lo, hi] (A > 0, inv_A = 1 / A): the unconstrained minimiser -B dy / A clamped to the
// interval. F = float, or a vector of dy values (one per tile row, or per tile) on the CPU; the
// bounds are floats or vectors of the same type.
template <class F, class L>
DGR_HD F min_form_on_segment(float A, float B, float C, float inv_A, F dy, L lo, L hi) {
  const F dx = min_of(max_of(-B * inv_A * dy, lo), hi);
  return A * dx * dx + 2.0f * B * dx * dy + C * dy * dy;
}

// A splat prepared for tile tests: the reciprocals of the conic's diagonal, once per splat
// rather than in every test (the tests are a third of preprocessing on the CPU).
struct TileTestSplat {
  const Splat& s;
  float inv_a, inv_c;
  DGR_HD explicit TileTestSplat(const Splat& splat)
      : s(splat), inv_a(1.0f / splat.conic_a), inv_c(1.0f / splat.conic_c) {}
};

// True when the splat's alpha is below ALPHA_MIN (with a margin) at every point of the pixel box
// [px0, px1] x [py0, py1]: then it contributes nothing there, and skipping it is exact. The caller
// has checked that the splat can reach the threshold at all (power_cut >= 0). F = float, or a
// vector of boxes (one per lane) on the CPU, which then gets a lane mask.
template <class F>
DGR_HD auto splat_misses_boxes(const TileTestSplat& t, F px0, F px1, F py0, F py1) {
  const Splat& s = t.s;
  // d = mean - pixel ranges over [dx0, dx1] x [dy0, dy1].
  const F dx0 = s.x - px1, dx1 = s.x - px0, dy0 = s.y - py1, dy1 = s.y - py0;
  const auto centre_outside = (dx0 > 0.0f) | (dx1 < 0.0f) | (dy0 > 0.0f) | (dy1 < 0.0f);
  // The form is convex, so away from its centre its minimum over the box lies on an edge.
  const float A = s.conic_a, B = s.conic_b, C = s.conic_c;
  const F q0 = min_form_on_segment(A, B, C, t.inv_a, dy0, dx0, dx1);
  const F q1 = min_form_on_segment(A, B, C, t.inv_a, dy1, dx0, dx1);
  const F q2 = min_form_on_segment(C, B, A, t.inv_c, dx0, dy0, dy1);
  const F q3 = min_form_on_segment(C, B, A, t.inv_c, dx1, dy0, dy1);
  const F q = min_of(min_of(q0, q1), min_of(q2, q3));
  return centre_outside & (0.5f * q > s.power_cut + SKIP_POWER_MARGIN);
}

DGR_HD bool splat_misses_box(const TileTestSplat& t, float px0, float px1, float py0, float py1) {
  if (!(t.s.power_cut >= 0.0f)) return true;
  return splat_misses_boxes(t, px0, px1, py0, py1);
}

// The same test for one pixel row (a segment of pixels at height py); with F a vector of
// heights it tests several rows at once (true lanes: the splat misses that row).
template <class F>
DGR_HD auto splat_misses_row(const Splat& s, float px0, float px1, F py) {
  const F q = min_form_on_segment(s.conic_a, s.conic_b, s.conic_c, 1.0f / s.conic_a, s.y - py,
                                  s.x - px1, s.x - px0);
  return 0.5f * q > s.power_cut + SKIP_POWER_MARGIN;
}

// The pixel centres of tile (tx, ty) of an image of the given size: [x0, x1] x [y0, y1].
struct TileBox {
  float x0, x1, y0, y1;
};
DGR_HD TileBox tile_box(int tx, int ty, int width, int height) {
  return {(float)(tx * BLOCK_X), (float)(mini(width, (tx + 1) * BLOCK_X) - 1),
          (float)(ty * BLOCK_Y), (float)(mini(height, (ty + 1) * BLOCK_Y) - 1)};
}

// Does tile (tx, ty) of an image of the given size hold a pixel where the splat may be visible?
DGR_HD bool splat_touches_tile(const TileTestSplat& t, int tx, int ty, int width, int height) {
  const TileBox b = tile_box(tx, ty, width, height);
  return !splat_misses_box(t, b.x0, b.x1, b.y0, b.y1);
}

// How many tiles of its rectangle the splat may be visible in (its number of tile entries).
DGR_HD int count_touched_tiles(const Splat& s, const TileRect& rect, int width, int height) {
  const TileTestSplat t(s);
  int count = 0;
  for (int ty = rect.y0; ty < rect.y1; ty++)
    for (int tx = rect.x0; tx < rect.x1; tx++) count += splat_touches_tile(t, tx, ty, width, height);
  return count;
}

}  // namespace dgr
