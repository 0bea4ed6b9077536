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
// 16-pixel tile row as one vector); `select` and comparisons follow vector semantics there.
template <class F>
DGR_HD F min_of(F a, float b) {
  const F bv = F{} + b;  // broadcasts for vectors
  return a < bv ? a : bv;
}
template <class F>
DGR_HD F max_of(F a, float b) {
  const F bv = F{} + b;
  return a > bv ? a : bv;
}

// Bit pattern 2^n for integral-valued float n in [-126, 127], as float (scalar version).
DGR_HD float pow2_of_integral(float n) {
  const int32_t bits = ((int32_t)n + 127) << 23;
  float out;
  memcpy(&out, &bits, sizeof(out));
  return out;
}

// exp(x) for x <= 0 without branches, so that it vectorises. Cephes-style: x = n ln2 + r with
// |r| <= ln2/2, a degree-6 polynomial for e^r, and 2^n written into the exponent bits. Relative
// error about 2e-7 (a few float ulps). Inputs below EXP_INPUT_FLOOR are raised to it: e^-30 is
// ~1e-13, far below any alpha that counts, and the floor keeps every product out of denormals.
constexpr float EXP_INPUT_FLOOR = -30.0f;
template <class F, class Pow2>
DGR_HD F exp_nonpositive_impl(F x, Pow2 pow2) {
  x = max_of(x, EXP_INPUT_FLOOR);
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

// --- Backward blending of one pixel (or a vector of pixels: F = float or a GCC vector type, M =
// bool or the matching integer mask) walking its splat list back to front.

template <class F>
struct BackwardPixel {
  F T;                               // transmittance behind the current splat (starts at final T)
  F T_final;                         // transmittance after the last splat
  F acc_r, acc_g, acc_b, acc_d;      // colour / inverse depth of everything behind the last splat
  F last_a, last_r, last_g, last_b, last_d;  // the splat processed last (one step behind)
  F dp_r, dp_g, dp_b, dp_d;          // dL/d(pixel colour), dL/d(pixel inverse depth)
  F bg_dot;                          // background . dL/d(pixel colour)
};

// Gradient sums of one splat over the pixels it touched (summed per lane for vectors).
template <class F>
struct SplatGradSums {
  F mx, my;          // dL/d(mean) in pixels
  F ca, cb, cc;      // dL/d(conic)
  F op;              // dL/d(opacity)
  F r, g, b, d;      // dL/d(colour), dL/d(inverse depth)
};

// One step: the splat `s` at offset (dx, dy) with G = e^power and alpha, where `valid` says the
// pixel took this splat in the forward pass. Updates the pixel state and adds to the sums.
template <class F, class M>
DGR_HD void blend_backward_step(const Splat& s, F dx, float dy, F G, F alpha, M valid,
                                BackwardPixel<F>& p, SplatGradSums<F>& g) {
  const F zero = F{};
  const F inv_one_minus = 1.0f / (1.0f - alpha);  // one division serves both uses below
  const F t = p.T * inv_one_minus;  // transmittance in front of this splat
  const F w = alpha * t;
  // Colour (and inverse depth) of everything behind this splat at this pixel.
  const F la = p.last_a;
  const F ar = la * p.last_r + (1.0f - la) * p.acc_r;
  const F ag = la * p.last_g + (1.0f - la) * p.acc_g;
  const F ab = la * p.last_b + (1.0f - la) * p.acc_b;
  const F ad = la * p.last_d + (1.0f - la) * p.acc_d;
  F dL_dalpha = ((s.r - ar) * p.dp_r + (s.g - ag) * p.dp_g + (s.b - ab) * p.dp_b +
                 (s.inv_depth - ad) * p.dp_d) * t;
  dL_dalpha -= p.T_final * inv_one_minus * p.bg_dot;
  dL_dalpha = valid ? dL_dalpha : zero;
  const F wv = valid ? w : zero;
  // No gradient through the 0.99 clamp (as the original): d alpha / dG = opacity.
  const F dL_dG = s.opacity * dL_dalpha;
  const F gdx = G * dx, gdy = G * dy;
  g.r += wv * p.dp_r;
  g.g += wv * p.dp_g;
  g.b += wv * p.dp_b;
  g.d += wv * p.dp_d;
  g.mx += dL_dG * (-gdx * s.conic_a - gdy * s.conic_b);
  g.my += dL_dG * (-gdy * s.conic_c - gdx * s.conic_b);
  g.ca += -0.5f * gdx * dx * dL_dG;
  g.cb += -gdx * dy * dL_dG;
  g.cc += -0.5f * gdy * dy * dL_dG;
  g.op += G * dL_dalpha;
  p.acc_r = valid ? ar : p.acc_r;
  p.acc_g = valid ? ag : p.acc_g;
  p.acc_b = valid ? ab : p.acc_b;
  p.acc_d = valid ? ad : p.acc_d;
  p.last_a = valid ? alpha : la;
  p.last_r = valid ? zero + s.r : p.last_r;
  p.last_g = valid ? zero + s.g : p.last_g;
  p.last_b = valid ? zero + s.b : p.last_b;
  p.last_d = valid ? zero + s.inv_depth : p.last_d;
  p.T = valid ? t : p.T;
}

// Smallest value of the quadratic form q(d) = A dx^2 + 2 B dx dy + C dy^2 with dy fixed and dx in
// [lo, hi] (A > 0): the unconstrained minimiser -B dy / A clamped to the interval. F = float, or
// a vector of dy values (one per tile row) on the CPU.
template <class F>
DGR_HD F min_form_on_segment(float A, float B, float C, F dy, float lo, float hi) {
  const F dx = min_of(max_of(-B * dy / A, lo), hi);
  return A * dx * dx + 2.0f * B * dx * dy + C * dy * dy;
}

// True when the splat's alpha is below ALPHA_MIN (with a margin) at every point of the pixel box
// [px0, px1] x [py0, py1]: then it contributes nothing there, and skipping it is exact.
DGR_HD bool splat_misses_box(const Splat& s, float px0, float px1, float py0, float py1) {
  if (!(s.power_cut >= 0.0f)) return true;
  // d = mean - pixel ranges over [dx0, dx1] x [dy0, dy1].
  const float dx0 = s.x - px1, dx1 = s.x - px0, dy0 = s.y - py1, dy1 = s.y - py0;
  if (dx0 <= 0.0f && dx1 >= 0.0f && dy0 <= 0.0f && dy1 >= 0.0f) return false;
  // The form is convex, so away from its centre its minimum over the box lies on an edge.
  const float A = s.conic_a, B = s.conic_b, C = s.conic_c;
  float q = minf(min_form_on_segment(A, B, C, dy0, dx0, dx1),
                 min_form_on_segment(A, B, C, dy1, dx0, dx1));
  q = minf(q, minf(min_form_on_segment(C, B, A, dx0, dy0, dy1),
                   min_form_on_segment(C, B, A, dx1, dy0, dy1)));
  return 0.5f * q > s.power_cut + SKIP_POWER_MARGIN;
}

// The same test for one pixel row (a segment of pixels at height py); with F a vector of
// heights it tests several rows at once (true lanes: the splat misses that row).
template <class F>
DGR_HD auto splat_misses_row(const Splat& s, float px0, float px1, F py) {
  const F q = min_form_on_segment(s.conic_a, s.conic_b, s.conic_c, s.y - py, s.x - px1, s.x - px0);
  return 0.5f * q > s.power_cut + SKIP_POWER_MARGIN;
}

// Does tile (tx, ty) of an image of the given size hold a pixel where the splat may be visible?
DGR_HD bool splat_touches_tile(const Splat& s, int tx, int ty, int width, int height) {
  const float px0 = (float)(tx * BLOCK_X), py0 = (float)(ty * BLOCK_Y);
  const float px1 = (float)(mini(width, (tx + 1) * BLOCK_X) - 1);
  const float py1 = (float)(mini(height, (ty + 1) * BLOCK_Y) - 1);
  return !splat_misses_box(s, px0, px1, py0, py1);
}

// How many tiles of its rectangle the splat may be visible in (its number of tile entries).
DGR_HD int count_touched_tiles(const Splat& s, const TileRect& rect, int width, int height) {
  int count = 0;
  for (int ty = rect.y0; ty < rect.y1; ty++)
    for (int tx = rect.x0; tx < rect.x1; tx++) count += splat_touches_tile(s, tx, ty, width, height);
  return count;
}

}  // namespace dgr
