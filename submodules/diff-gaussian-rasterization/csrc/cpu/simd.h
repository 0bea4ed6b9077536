// Pixels of a tile row as vectors (GCC/Clang vector extensions). With AVX-512 a 16-pixel row is
// one 16-lane vector (one register); elsewhere it is two 8-lane vectors ("segments", one AVX2
// register each: 16-lane vectors there take two registers apiece and the blend loops spill).
// Writing the blend loops on these types makes their vectorisation explicit instead of a
// compiler heuristic.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../math/blend.h"
#include "../math/gaussian.h"

namespace dgr {
namespace cpu {

#if defined(__AVX512F__)
constexpr int LANES = 16;
#else
constexpr int LANES = 8;
#endif
constexpr int SEGMENTS = BLOCK_X / LANES;  // vectors per tile row
static_assert(BLOCK_X % LANES == 0 && BLOCK_Y % LANES == 0 && BLOCK_Y <= 32,
              "tile rows split into whole vectors; row masks fit 32 bits");
typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(LANES * sizeof(int32_t))));

inline vfloat splat(float v) { return vfloat{} + v; }
inline vint splat_int(int32_t v) { return vint{} + v; }

// Lane-wise select: mask lanes are -1 (true) or 0 (false), as vector comparisons produce.
inline vfloat select(vint mask, vfloat a, vfloat b) { return mask ? a : b; }
inline vint select(vint mask, vint a, vint b) { return mask ? a : b; }
inline vint min_int(vint a, vint b) { return a < b ? a : b; }
// {0, 1, ..., LANES - 1}
inline vint lane_index() {
  vint v;
  for (int i = 0; i < LANES; i++) v[i] = i;
  return v;
}

// Reductions over lanes. Written with the ISA's mask and reduce instructions where the build
// has them: the generic per-lane loops compile to 16 extracts each, which cost more than the
// blend arithmetic they guard.
#if defined(__AVX512F__)
inline __m512 to_native(vfloat v) { return (__m512)v; }
inline __m512i to_native(vint v) { return (__m512i)v; }
inline uint32_t lane_bits(vint mask) { return _mm512_test_epi32_mask(to_native(mask), to_native(mask)); }
inline float hsum(vfloat v) { return _mm512_reduce_add_ps(to_native(v)); }
#elif defined(__AVX2__)
inline uint32_t lane_bits(vint mask) { return (uint32_t)_mm256_movemask_ps((__m256)mask); }
inline float hsum(vfloat v) {
  const __m256 s8 = (__m256)v;
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#else
inline uint32_t lane_bits(vint mask) {
  uint32_t bits = 0;
  for (int i = 0; i < LANES; i++) bits |= (uint32_t)(mask[i] != 0) << i;
  return bits;
}
inline float hsum(vfloat v) {
  float s = 0.0f;
  for (int i = 0; i < LANES; i++) s += v[i];
  return s;
}
#endif
// sums[i] = the lane sum of v[i], for n <= 16 vectors. AVX-512: a transpose-and-add tree, about
// 3 instructions per vector instead of a separate 8-instruction reduction for each.
#if defined(__AVX512F__)
inline void hsum_each(const vfloat* v, int n, float* sums) {
  __m512 a[16];
  for (int i = 0; i < 16; i++) a[i] = i < n ? to_native(v[i]) : _mm512_setzero_ps();
  __m512 t[8], u[4], w[2];
  // t[i], per 128-bit block: partial sums of v[2i], v[2i+1], v[2i], v[2i+1]
  for (int i = 0; i < 8; i++)
    t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                         _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
  // u[i], per 128-bit block: the block's sums of v[4i .. 4i+3]
  for (int i = 0; i < 4; i++)
    u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // w[i]: blocks summed in pairs; then all four blocks, in the order of v
  for (int i = 0; i < 2; i++)
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 all = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
  float out[16];
  _mm512_storeu_ps(out, all);
  for (int i = 0; i < n; i++) sums[i] = out[i];
}
#else
inline void hsum_each(const vfloat* v, int n, float* sums) {
  for (int i = 0; i < n; i++) sums[i] = hsum(v[i]);
}
#endif

inline bool any(vint mask) { return lane_bits(mask) != 0; }

// Field `field` of rows first .. first + LANES - 1 of an array of rows of `stride` floats
// (e.g. the y of LANES consecutive means: stride 3, field 1).
inline vfloat gather_field(const float* rows, int64_t first, int stride, int field) {
  const float* base = rows + first * stride + field;
#if defined(__AVX512F__)
  return (vfloat)_mm512_i32gather_ps(to_native(lane_index() * stride), base, sizeof(float));
#elif defined(__AVX2__)
  return (vfloat)_mm256_i32gather_ps(base, (__m256i)(lane_index() * stride), sizeof(float));
#else
  vfloat v;
  for (int i = 0; i < LANES; i++) v[i] = base[i * stride];
  return v;
#endif
}

// 2^n for integral-valued lanes n in [-126, 127].
inline vfloat pow2_of_integral(vfloat n) {
  const vint bits = (__builtin_convertvector(n, vint) + 127) << 23;
  vfloat out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

inline vfloat exp_nonpositive(vfloat x) {
  return exp_nonpositive_impl(x, [](vfloat n) { return pow2_of_integral(n); });
}

// e^x for any x, one value or lane by lane, by the same arithmetic: the input clamped to
// [EXP_ANY_MIN, EXP_ANY_MAX] (results ~1.6e-38 .. ~1.7e38, 2^n within its exponent range).
constexpr float EXP_ANY_MIN = -87.0f, EXP_ANY_MAX = 88.0f;
inline float exp_any(float x) {
  return exp_floored_impl(min_of(x, EXP_ANY_MAX), EXP_ANY_MIN,
                          [](float n) { return dgr::pow2_of_integral(n); });
}
inline vfloat exp_any(vfloat x) {
  return exp_floored_impl(min_of(x, EXP_ANY_MAX), EXP_ANY_MIN,
                          [](vfloat n) { return pow2_of_integral(n); });
}

}  // namespace cpu

#if defined(__AVX512F__)
// 1/x as the 14-bit hardware estimate refined by one Newton step, r (2 - x r): within about an
// ulp, at a fraction of a vector division's cost (used by the backward blend, once per row).
template <>
inline cpu::vfloat reciprocal<cpu::vfloat>(cpu::vfloat x) {
  const __m512 xv = cpu::to_native(x);
  const __m512 r = _mm512_rcp14_ps(xv);
  return (cpu::vfloat)_mm512_mul_ps(r, _mm512_fnmadd_ps(xv, r, _mm512_set1_ps(2.0f)));
}
#endif

// Several Gaussians at once, one per lane, through the templated math of gaussian.h: each
// operation gives, lane by lane, the bits of its scalar counterpart in LaneOps<float>.
template <>
struct LaneOps<cpu::vfloat> {
  using F = cpu::vfloat;
  using Mask = cpu::vint;
  static F splat(float v) { return cpu::splat(v); }
  static F sqrt(F v) {
#if defined(__AVX512F__)
    return (F)_mm512_sqrt_ps(cpu::to_native(v));
#elif defined(__AVX__)
    return (F)_mm256_sqrt_ps((__m256)v);
#else
    for (int i = 0; i < cpu::LANES; i++) v[i] = sqrtf(v[i]);
    return v;
#endif
  }
  static F ceil(F v) {
#if defined(__AVX512F__)
    return (F)_mm512_roundscale_ps(cpu::to_native(v), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
#elif defined(__AVX__)
    return (F)_mm256_ceil_ps((__m256)v);
#else
    for (int i = 0; i < cpu::LANES; i++) v[i] = ceilf(v[i]);
    return v;
#endif
  }
  // fmaxf's rule: a NaN argument loses to a number.
  static F fmax(F a, F b) {
    const F m = a > b ? a : b;
    return b != b ? a : m;
  }
  static F select(Mask m, F a, F b) { return m ? a : b; }
  static F clamp(F v, float lo, float hi) {
    return v < lo ? splat(lo) : (v > hi ? splat(hi) : v);
  }
};

}  // namespace dgr
