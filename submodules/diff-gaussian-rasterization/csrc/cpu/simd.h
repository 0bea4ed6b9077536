// One tile row of pixels as one vector (GCC/Clang vector extensions): 16 float lanes, a single
// AVX-512 register where the machine has it, two AVX2 registers otherwise. Writing the blend loops
// on these types makes their vectorisation explicit instead of a compiler heuristic.
#pragma once

#include <cstdint>
#include <cstring>

#include "../math/blend.h"

namespace dgr {
namespace cpu {

constexpr int LANES = BLOCK_X;
typedef float vfloat __attribute__((vector_size(LANES * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(LANES * sizeof(int32_t))));
static_assert(LANES == 16, "a tile row is one 16-lane vector");

inline vfloat splat(float v) { return vfloat{} + v; }
inline vint splat_int(int32_t v) { return vint{} + v; }

// Lane-wise select: mask lanes are -1 (true) or 0 (false), as vector comparisons produce.
inline vfloat select(vint mask, vfloat a, vfloat b) { return mask ? a : b; }
inline vint select(vint mask, vint a, vint b) { return mask ? a : b; }

inline float hsum(vfloat v) {
  float s = 0.0f;
  for (int i = 0; i < LANES; i++) s += v[i];
  return s;
}
inline int count_true(vint mask) {
  int n = 0;
  for (int i = 0; i < LANES; i++) n += mask[i] != 0;
  return n;
}
inline bool any(vint mask) {
  for (int i = 0; i < LANES; i++)
    if (mask[i]) return true;
  return false;
}

inline vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline vint load(const int32_t* p) {
  vint v;
  std::memcpy(&v, p, sizeof(v));
  return v;
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

}  // namespace cpu
}  // namespace dgr
