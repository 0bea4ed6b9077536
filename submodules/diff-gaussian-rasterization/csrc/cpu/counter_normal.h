// Standard normal draws from a counter-based generator (CPU), one at a time or LANES at once:
// draw number c of the stream `key` is a pure function of (c, key), so any thread can make any
// draw, in any order, with the same bits. Each draw: 32 bits from two rounds of the "lowbias32"
// integer mix of the counter and the key → a uniform u = (k + ½)/2²³ in (0, 1) →
// √2·erfinv(2u − 1) with Giles's single-precision erfinv (2010); the tails reach about 5.3σ.
// The scalar and vector versions compute the same operations (the compiler may still fuse
// multiply-adds differently in each), so callers keep a fixed split between them.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "simd.h"

namespace dgr {
namespace cpu {

typedef uint32_t vuint __attribute__((vector_size(LANES * sizeof(uint32_t))));

// The bits of `from` read as a To of the same size (a float as its integer bits, or back; lane
// by lane for vectors).
template <class To, class From>
inline To bit_cast(From from) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast keeps the size");
  To to;
  std::memcpy(&to, &from, sizeof(to));
  return to;
}
inline float to_float(uint32_t v) { return (float)v; }
inline vfloat to_float(vuint v) { return __builtin_convertvector(v, vfloat); }
inline float select_lanes(bool m, float a, float b) { return m ? a : b; }
template <class M>
inline vfloat select_lanes(M m, vfloat a, vfloat b) { return m ? a : b; }
inline bool any_lane(bool m) { return m; }
inline bool any_lane(vint m) { return any(m); }

// A 32-bit integer mix with low bias ("lowbias32", C. Wellons's hash prospector).
template <class U>
U mix32(U h) {
  h ^= h >> 16;
  h *= 0x7feb352dU;
  h ^= h >> 15;
  h *= 0x846ca68bU;
  h ^= h >> 16;
  return h;
}

// ln y for normal positive y (Cephes's logf: y = m 2^e with m in [√½, √2), a polynomial in m − 1).
template <class F, class U>
F log_positive(F y) {
  const U bits = bit_cast<U>(y);
  F e = to_float(bits >> 23) - 127.0f;
  F m = bit_cast<F>(U((bits & 0x007fffffU) | 0x3f800000U));  // [1, 2)
  const auto high = m > 1.41421356f;
  m = select_lanes(high, m * 0.5f, m);
  e = select_lanes(high, e + 1.0f, e);
  const F f = m - 1.0f, z = f * f;
  F p = LaneOps<F>::splat(7.0376836292e-2f);
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  F r = f * z * p + e * -2.12194440e-4f - 0.5f * z;
  return f + r + e * 0.693359375f;
}

// A standard normal draw from 32 random bits: u = (k + ½)/2²³ from the top 23 bits (exact in
// float, as is 1 − u), then √2·erfinv(2u − 1), Giles's two polynomials in w = −ln(4u(1 − u)).
template <class F, class U>
F normal_from_bits(U bits) {
  const F u = (to_float(bits >> 9) + 0.5f) * (1.0f / 8388608.0f);
  const F w = -log_positive<F, U>(4.0f * u * (1.0f - u));
  const F c = w - 2.5f;  // central region, w < 5
  F pc = LaneOps<F>::splat(2.81022636e-08f);
  pc = 3.43273939e-07f + pc * c;
  pc = -3.5233877e-06f + pc * c;
  pc = -4.39150654e-06f + pc * c;
  pc = 0.00021858087f + pc * c;
  pc = -0.00125372503f + pc * c;
  pc = -0.00417768164f + pc * c;
  pc = 0.246640727f + pc * c;
  pc = 1.50140941f + pc * c;
  F p = pc;
  const auto tail = w >= 5.0f;  // about 1 draw in 300: the second polynomial only where needed
  if (any_lane(tail)) {
    const F t = LaneOps<F>::sqrt(w) - 3.0f;
    F pt = LaneOps<F>::splat(-0.000200214257f);
    pt = 0.000100950558f + pt * t;
    pt = 0.00134934322f + pt * t;
    pt = -0.00367342844f + pt * t;
    pt = 0.00573950773f + pt * t;
    pt = -0.0076224613f + pt * t;
    pt = 0.00943887047f + pt * t;
    pt = 1.00167406f + pt * t;
    pt = 2.83297682f + pt * t;
    p = select_lanes(tail, pt, pc);
  }
  return 1.41421356f * p * (2.0f * u - 1.0f);
}

// Draw number `counter` (3i + j) of the stream `key`.
template <class F, class U>
F normal_draw(U counter, const uint32_t key[2]) {
  return normal_from_bits<F, U>(mix32(mix32(counter ^ key[0]) + key[1]));
}

// ε of Gaussians first .. first + LANES − 1 (F = vfloat) or of Gaussian `first` (F = float).
template <class F, class U>
Vec3T<F> normal_draws(int64_t first, const uint32_t key[2]) {
  U counter;
  if constexpr (std::is_same<F, float>::value) {
    counter = (uint32_t)(3 * first);
  } else {
    for (int l = 0; l < LANES; l++) counter[l] = (uint32_t)(3 * (first + l));
  }
  return {normal_draw<F, U>(counter, key), normal_draw<F, U>(counter + 1U, key),
          normal_draw<F, U>(counter + 2U, key)};
}

}  // namespace cpu
}  // namespace dgr
