// Per-Gaussian math of the rasterizer: 3D covariance, EWA projection to a 2D conic, screen radius
// and tile rectangle, and the derivatives of each step. Torch-free; shared by the CPU and CUDA
// backends. Conventions: the quaternion is (r, x, y, z), used as given (the caller normalises);
// the covariance is stored as its 6 upper-triangular entries [00, 01, 02, 11, 12, 22].
#pragma once

#include "config.h"
#include "sh.h"
#include "vec.h"

namespace dgr {

// Camera and image description shared by every stage.
struct RasterCamera {
  int width, height;
  float tanfovx, tanfovy;
  float focal_x, focal_y;  // pixels: W / (2 tan(fovx/2)), H / (2 tan(fovy/2))
  const float* view;       // [16] world->view, column-major (see vec.h)
  const float* proj;       // [16] world->clip, column-major
  Vec3 campos;
  float scale_modifier;
  bool antialiasing;
  float low_pass;      // variance added to the 2D covariance's diagonal, pixels^2 (0.3)
  int grid_x, grid_y;  // tiles per row / column
};

// What the blend stage reads of one Gaussian; packed so that a tile loop gathers one record.
struct Splat {
  float x, y;              // mean in pixel coordinates
  float conic_a, conic_b, conic_c;  // inverse 2D covariance [[a, b], [b, c]]
  float opacity;           // opacity as blended (times the antialiasing factor when on)
  float r, g, b;           // colour
  float inv_depth;         // 1 / view-space z
  float power_cut;         // log(255 * opacity): alpha >= 1/255 needs -power <= power_cut
  float pad;
};
constexpr int SPLAT_FLOATS = sizeof(Splat) / sizeof(float);
static_assert(SPLAT_FLOATS == 12, "Splat is 12 floats");

// Rotation matrix of a (not necessarily unit) quaternion q = (r, x, y, z), row-major.
// The functions templated on F run on one Gaussian (F = float) or, on the CPU, on a vector of
// Gaussians (one per lane); LaneOps<F> supplies what is not an arithmetic operator.
template <class F>
DGR_HD void quat_to_rotmat(Vec4T<F> q, F R[3][3]) {
  const F r = q.x, x = q.y, y = q.z, z = q.w;
  R[0][0] = 1.0f - 2.0f * (y * y + z * z);
  R[0][1] = 2.0f * (x * y - r * z);
  R[0][2] = 2.0f * (x * z + r * y);
  R[1][0] = 2.0f * (x * y + r * z);
  R[1][1] = 1.0f - 2.0f * (x * x + z * z);
  R[1][2] = 2.0f * (y * z - r * x);
  R[2][0] = 2.0f * (x * z - r * y);
  R[2][1] = 2.0f * (y * z + r * x);
  R[2][2] = 1.0f - 2.0f * (x * x + y * y);
}

// Sigma = L L^T with L = R diag(modifier * scale).
template <class F>
DGR_HD void compute_cov3d(Vec3T<F> scale, float modifier, Vec4T<F> quat, F cov[6]) {
  F R[3][3];
  quat_to_rotmat(quat, R);
  const F s[3] = {modifier * scale.x, modifier * scale.y, modifier * scale.z};
  F L[3][3];
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 3; k++) L[i][k] = R[i][k] * s[k];
  const int idx[6][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}};
  for (int e = 0; e < 6; e++) {
    const int i = idx[e][0], j = idx[e][1];
    cov[e] = L[i][0] * L[j][0] + L[i][1] * L[j][1] + L[i][2] * L[j][2];
  }
}

template <class F>
DGR_HD void cov6_to_mat(const F c[6], F S[3][3]) {
  S[0][0] = c[0], S[0][1] = c[1], S[0][2] = c[2];
  S[1][0] = c[1], S[1][1] = c[3], S[1][2] = c[4];
  S[2][0] = c[2], S[2][1] = c[4], S[2][2] = c[5];
}

// The 2x3 matrix T = J W of the EWA splatting approximation at view-space point t: J is the
// Jacobian of the perspective projection (in pixels) evaluated at t with its lateral position
// clamped to the guard band; W is the rotation part of the view matrix.
template <class F>
struct EwaJacobianT {
  F T[2][3];
  F J00, J02, J11, J12;
  F tx, ty;  // lateral position after the guard-band clamp
  typename LaneOps<F>::Mask x_clamped, y_clamped;
};
using EwaJacobian = EwaJacobianT<float>;

template <class F>
DGR_HD EwaJacobianT<F> ewa_jacobian(Vec3T<F> t, const RasterCamera& cam) {
  using L = LaneOps<F>;
  EwaJacobianT<F> e;
  const float limx = FRUSTUM_GUARD_BAND * cam.tanfovx;
  const float limy = FRUSTUM_GUARD_BAND * cam.tanfovy;
  const F txtz = t.x / t.z, tytz = t.y / t.z;
  e.x_clamped = (txtz < -limx) | (txtz > limx);
  e.y_clamped = (tytz < -limy) | (tytz > limy);
  e.tx = L::clamp(txtz, -limx, limx) * t.z;
  e.ty = L::clamp(tytz, -limy, limy) * t.z;
  const F inv_z = 1.0f / t.z, inv_z2 = inv_z * inv_z;
  e.J00 = cam.focal_x * inv_z;
  e.J02 = -cam.focal_x * e.tx * inv_z2;
  e.J11 = cam.focal_y * inv_z;
  e.J12 = -cam.focal_y * e.ty * inv_z2;
  const float* v = cam.view;  // W[r][c] = v[4c + r]
  for (int c = 0; c < 3; c++) {
    e.T[0][c] = e.J00 * v[4 * c + 0] + e.J02 * v[4 * c + 2];
    e.T[1][c] = e.J11 * v[4 * c + 1] + e.J12 * v[4 * c + 2];
  }
  return e;
}

// Screen-space covariance T Sigma T^T (before the low-pass filter): (a, b, c) of [[a, b], [b, c]].
template <class F>
DGR_HD Vec3T<F> project_cov(const EwaJacobianT<F>& e, const F cov3d[6]) {
  F S[3][3];
  cov6_to_mat(cov3d, S);
  F ST0[3], ST1[3];  // Sigma T0^T, Sigma T1^T
  for (int i = 0; i < 3; i++) {
    ST0[i] = S[i][0] * e.T[0][0] + S[i][1] * e.T[0][1] + S[i][2] * e.T[0][2];
    ST1[i] = S[i][0] * e.T[1][0] + S[i][1] * e.T[1][1] + S[i][2] * e.T[1][2];
  }
  return {e.T[0][0] * ST0[0] + e.T[0][1] * ST0[1] + e.T[0][2] * ST0[2],
          e.T[0][0] * ST1[0] + e.T[0][1] * ST1[1] + e.T[0][2] * ST1[2],
          e.T[1][0] * ST1[0] + e.T[1][1] * ST1[1] + e.T[1][2] * ST1[2]};
}

// Low-pass filter, conic and the antialiasing opacity factor from the raw 2D covariance.
template <class F>
struct ConicT {
  F a, b, c;  // covariance after the low-pass filter
  F det;      // its determinant
  F A, B, C;  // inverse covariance
  F aa_scale; // opacity factor (1 without antialiasing)
  typename LaneOps<F>::Mask floored;  // det was raised to its lower bound (see make_conic)
};
using Conic = ConicT<float>;

template <class F>
DGR_HD ConicT<F> make_conic(Vec3T<F> cov, bool antialiasing, float low_pass) {
  using L = LaneOps<F>;
  ConicT<F> k;
  const F det_raw = cov.x * cov.z - cov.y * cov.y;
  k.a = cov.x + low_pass;
  k.b = cov.y;
  k.c = cov.z + low_pass;
  k.det = k.a * k.c - k.b * k.b;
  // The raw covariance is positive semi-definite, so det >= lp (a + c) - lp^2 > 0. For a needle
  // seen from the side (a c ~ b^2 ~ 1e12), a c - b^2 cancels in float32 and can come out far
  // below that, even negative: an indefinite "conic", NaN gradients, a diverged run (seen with
  // MCMC). The original has the same formula; we raise det to the bound instead.
  const F det_floor = low_pass * (k.a + k.c) - low_pass * low_pass;
  k.floored = k.det < det_floor;
  k.det = L::select(k.floored, det_floor, k.det);
  k.aa_scale = antialiasing ? L::sqrt(L::fmax(L::splat(ANTIALIAS_MIN_DET_RATIO), det_raw / k.det))
                            : L::splat(1.0f);
  const F inv_det = 1.0f / k.det;
  k.A = k.c * inv_det;
  k.B = -k.b * inv_det;
  k.C = k.a * inv_det;
  return k;
}

// Screen radius in pixels: 3 sigma of the larger eigenvalue.
template <class F>
DGR_HD F screen_radius(const ConicT<F>& k) {
  using L = LaneOps<F>;
  const F mid = 0.5f * (k.a + k.c);
  const F disc = L::sqrt(L::fmax(L::splat(EIGEN_MIN_DISCRIMINANT), mid * mid - k.det));
  const F lambda1 = mid + disc, lambda2 = mid - disc;
  return L::ceil(RADIUS_SIGMAS * L::sqrt(L::fmax(lambda1, lambda2)));
}

// Tile rectangle [min, max) covered by a disc of radius r around p, clamped to the grid.
struct TileRect {
  int x0, y0, x1, y1;
};
DGR_HD TileRect tile_rect(Vec2 p, float r, int grid_x, int grid_y) {
  // Clamping in float first keeps huge radii from overflowing the int conversion.
  TileRect t;
  t.x0 = (int)clampf((p.x - r) / BLOCK_X, 0.0f, (float)grid_x);
  t.y0 = (int)clampf((p.y - r) / BLOCK_Y, 0.0f, (float)grid_y);
  t.x1 = (int)clampf((p.x + r + BLOCK_X - 1) / BLOCK_X, 0.0f, (float)grid_x);
  t.y1 = (int)clampf((p.y + r + BLOCK_Y - 1) / BLOCK_Y, 0.0f, (float)grid_y);
  return t;
}

// Inputs of one Gaussian, as pointers into the caller's arrays (null where not given).
struct GaussianInputs {
  const float* mean;         // [3]
  float opacity;
  ShCoeffs sh;               // sh.dc null when colours are given
  const float* color;        // [3] precomputed colour or null
  const float* scale;        // [3] or null
  const float* rot;          // [4] or null
  const float* cov3d;        // [6] precomputed or null
};

// Raw views of every Gaussian's inputs (null where not given), for any backend.
struct GaussianArrays {
  const float* means3D;    // [P, 3]
  const float* opacities;  // [P]
  const float* sh;         // [P, M, 3]; or, with sh_dc, the other coefficients [P, M - 1, 3]
  const float* sh_dc;      // [P, 1, 3] DC terms given apart, or null
  const float* colors;     // [P, 3] or null
  const float* scales;     // [P, 3] or null
  const float* rotations;  // [P, 4] or null
  const float* cov3D;      // [P, 6] or null
  int64_t sh_stride;       // floats per Gaussian in sh

  DGR_HD GaussianInputs at(int64_t i) const {
    GaussianInputs in;
    in.mean = means3D + 3 * i;
    in.opacity = opacities[i];
    in.sh = sh_row(sh, sh_dc, sh_stride, i);
    in.color = colors ? colors + 3 * i : nullptr;
    in.scale = scales ? scales + 3 * i : nullptr;
    in.rot = rotations ? rotations + 4 * i : nullptr;
    in.cov3d = cov3D ? cov3D + 6 * i : nullptr;
    return in;
  }
};

// The 3D covariance of a Gaussian: precomputed, or from its scale and rotation.
DGR_HD void gaussian_cov3d(const GaussianInputs& in, float scale_modifier, float cov3d[6]) {
  if (in.cov3d) {
    for (int e = 0; e < 6; e++) cov3d[e] = in.cov3d[e];
  } else {
    compute_cov3d(load3(in.scale), scale_modifier, load4(in.rot), cov3d);
  }
}

struct Preprocessed {
  bool visible;
  float depth;
  int radius;
  TileRect rect;
  Splat splat;
  bool clamped[3];
};

// Screen position, conic and radius of a Gaussian in front of the near plane (or of one per lane),
// given its mean, view-space position t and 3D covariance. Non-finite results cull it.
template <class F>
struct Projection {
  F x, y;    // mean in pixel coordinates
  F radius;  // screen radius in pixels (a whole number)
  ConicT<F> k;
};

template <class F>
DGR_HD Projection<F> project_gaussian(Vec3T<F> mean, Vec3T<F> t, const F cov3d[6],
                                      const RasterCamera& cam) {
  const Vec4T<F> ph = transform_point4x4(cam.proj, mean);
  const F pw = 1.0f / (ph.w + PROJECTION_W_EPS);
  const EwaJacobianT<F> ej = ewa_jacobian(t, cam);
  Projection<F> p;
  p.k = make_conic(project_cov(ej, cov3d), cam.antialiasing, cam.low_pass);
  p.radius = screen_radius(p.k);
  p.x = ndc2pix(ph.x * pw, cam.width);
  p.y = ndc2pix(ph.y * pw, cam.height);
  return p;
}

// The rest of one Gaussian's preprocessing once it is projected: cull what is not finite or
// covers no tile, then its tile rectangle, colour and splat record.
DGR_HD Preprocessed finish_preprocess(const GaussianInputs& in, const RasterCamera& cam,
                                      int sh_degree, float depth, const Projection<float>& p) {
  Preprocessed out;
  out.visible = false;
  out.radius = 0;
  // Non-finite parameters would otherwise give garbage tile ids (the original's
  // "illegal memory access"): such a Gaussian is culled instead.
  if (!(finite(p.radius) && finite(p.x) && finite(p.y))) return out;
  const Vec2 xy = {p.x, p.y};
  const TileRect rect = tile_rect(xy, p.radius, cam.grid_x, cam.grid_y);
  if ((rect.x1 - rect.x0) * (rect.y1 - rect.y0) == 0) return out;

  Vec3 rgb;
  if (in.color) {
    rgb = load3(in.color);
    out.clamped[0] = out.clamped[1] = out.clamped[2] = false;
  } else {
    rgb = sh_to_color(sh_degree, in.sh, load3(in.mean), cam.campos, out.clamped);
  }

  out.visible = true;
  out.depth = depth;
  out.radius = (int)p.radius;
  out.rect = rect;
  Splat& s = out.splat;
  s.x = xy.x, s.y = xy.y;
  s.conic_a = p.k.A, s.conic_b = p.k.B, s.conic_c = p.k.C;
  s.opacity = in.opacity * p.k.aa_scale;
  s.r = rgb.x, s.g = rgb.y, s.b = rgb.z;
  s.inv_depth = 1.0f / depth;
  // Opacities below 1/255 can never reach the alpha threshold: -inf skips them everywhere.
  s.power_cut = s.opacity >= ALPHA_MIN ? logf(s.opacity / ALPHA_MIN) : -INFINITY;
  s.pad = 0.0f;
  return out;
}

// Forward preprocessing of one Gaussian: cull, project, conic, radius, tiles and colour.
DGR_HD Preprocessed preprocess_gaussian(const GaussianInputs& in, const RasterCamera& cam,
                                        int sh_degree) {
  const Vec3 mean = load3(in.mean);
  const Vec3 t = transform_point4x3(cam.view, mean);
  // Written so that a NaN depth also culls.
  if (!(t.z > NEAR_PLANE)) {
    Preprocessed out;
    out.visible = false;
    out.radius = 0;
    return out;
  }
  float cov3d[6];
  gaussian_cov3d(in, cam.scale_modifier, cov3d);
  return finish_preprocess(in, cam, sh_degree, t.z, project_gaussian(mean, t, cov3d, cam));
}

// Gradients the blend stage produced for one Gaussian (sums over its pixels), or for one per lane.
template <class F>
struct SplatGradT {
  F mean2d_x, mean2d_y;   // w.r.t. the NDC position (pixel gradient times W/2, H/2)
  F conic_a, conic_b, conic_c;  // w.r.t. A, B, C of power = -(A dx^2 + C dy^2)/2 - B dx dy
  F opacity;              // w.r.t. the blended opacity
  F r, g, b;              // w.r.t. the colour
  F inv_depth;            // w.r.t. 1 / depth
};
using SplatGrad = SplatGradT<float>;
constexpr int SPLAT_GRAD_FLOATS = sizeof(SplatGrad) / sizeof(float);
static_assert(SPLAT_GRAD_FLOATS == 10, "SplatGrad is 10 floats");

// Where the gradients of one Gaussian go (null where that input was not given).
struct GaussianGrads {
  float* mean;     // [3]
  float* opacity;  // [1]
  ShGrads sh;
  float* color;    // [3]
  float* scale;    // [3]
  float* rot;      // [4]
  float* cov3d;    // [6]
};

// Where every Gaussian's gradients go (null where that input was not given).
struct GaussianGradArrays {
  float* means2D;    // [P, 3] (z stays 0)
  float* means3D;    // [P, 3]
  float* opacities;  // [P]
  float* sh;         // laid out as GaussianArrays::sh, or null
  float* sh_dc;      // [P, 1, 3] or null
  float* colors;     // [P, 3] or null
  float* scales;     // [P, 3] or null
  float* rotations;  // [P, 4] or null
  float* cov3D;      // [P, 6] or null
  int64_t sh_stride;

  // Gaussian i's gradient of its projected mean (what densification reads), when wanted.
  DGR_HD void store_means2D(int64_t i, const SplatGrad& g) const {
    if (means2D) means2D[3 * i + 0] = g.mean2d_x, means2D[3 * i + 1] = g.mean2d_y;
  }

  // Clears every gradient of Gaussian i (the backward pass then overwrites what it computes).
  DGR_HD void zero_row(int64_t i) const {
    auto clear = [](float* p, int64_t n) {
      for (int64_t k = 0; k < n; k++) p[k] = 0.0f;
    };
    if (means2D) clear(means2D + 3 * i, 3);
    clear(means3D + 3 * i, 3);
    opacities[i] = 0.0f;
    if (sh) clear(sh + sh_stride * i, sh_stride);
    if (sh_dc) clear(sh_dc + 3 * i, 3);
    if (colors) clear(colors + 3 * i, 3);
    if (scales) clear(scales + 3 * i, 3);
    if (rotations) clear(rotations + 4 * i, 4);
    if (cov3D) clear(cov3D + 6 * i, 6);
  }

  // As at(i), but what the row of `sh` would receive goes to `sh_scratch` (one row laid out
  // as sh's) when that is not null.
  DGR_HD GaussianGrads at(int64_t i, float* sh_scratch) const {
    GaussianGrads out = at(i);
    if (sh_scratch) out.sh = sh_row(sh_scratch, sh_dc, 0, i);
    return out;
  }

  DGR_HD GaussianGrads at(int64_t i) const {
    GaussianGrads out;
    out.mean = means3D + 3 * i;
    out.opacity = opacities + i;
    out.sh = sh_row(sh, sh_dc, sh_stride, i);
    out.color = colors ? colors + 3 * i : nullptr;
    out.scale = scales ? scales + 3 * i : nullptr;
    out.rot = rotations ? rotations + 4 * i : nullptr;
    out.cov3d = cov3D ? cov3D + 6 * i : nullptr;
    return out;
  }
};

// dL/d(raw 2D covariance a, b, c) and dL/d(input opacity) from the conic and opacity gradients.
template <class F>
DGR_HD void conic_backward(Vec3T<F> cov, const ConicT<F>& k, const RasterCamera& cam, F opacity,
                           const SplatGradT<F>& g, F dL_dcov[3], F* dL_dopacity) {
  using L = LaneOps<F>;
  // A = c'/D, B = -b/D, C = a'/D with D = a'c' - b^2 and a' = a + lp, c' = c + lp.
  const F D = k.det, iD = 1.0f / D, iD2 = iD * iD;
  const F a = k.a, b = k.b, c = k.c;
  // Where D was raised to its floor, D = lp (a' + c') - lp^2: dD/da' = dD/dc' = lp, dD/db = 0.
  // Both forms are computed and the floor's flag picks one (a branch cannot pick per lane).
  const float lp = cam.low_pass;
  const F da_free = g.conic_a * (-c * c * iD2) + g.conic_b * (b * c * iD2) + g.conic_c * (iD - a * c * iD2);
  const F dc_free = g.conic_a * (iD - a * c * iD2) + g.conic_b * (a * b * iD2) + g.conic_c * (-a * a * iD2);
  const F db_free = g.conic_a * (2.0f * b * c * iD2) + g.conic_b * (-iD - 2.0f * b * b * iD2) +
                    g.conic_c * (2.0f * a * b * iD2);
  const F da_floor = g.conic_a * (-c * lp * iD2) + g.conic_b * (b * lp * iD2) + g.conic_c * (iD - a * lp * iD2);
  const F dc_floor = g.conic_a * (iD - c * lp * iD2) + g.conic_b * (b * lp * iD2) + g.conic_c * (-a * lp * iD2);
  const F db_floor = -g.conic_b * iD;
  F da = L::select(k.floored, da_floor, da_free);
  F dc = L::select(k.floored, dc_floor, dc_free);
  F db = L::select(k.floored, db_floor, db_free);
  // The blended opacity is opacity * h, h = sqrt(max(min_ratio, det_raw / D)).
  *dL_dopacity = g.opacity * k.aa_scale;
  if (cam.antialiasing) {
    const F det_raw = cov.x * cov.z - cov.y * cov.y;
    const F ratio = det_raw / D;
    const auto above = ratio > ANTIALIAS_MIN_DET_RATIO;  // below it h is constant
    const F dL_dratio = g.opacity * opacity * 0.5f / k.aa_scale;
    // d(det_raw/D)/da = (c_raw D - det_raw c') / D^2, and likewise for c; b enters both.
    const F zero = L::splat(0.0f);
    da += L::select(above, dL_dratio * (cov.z * D - det_raw * c) * iD2, zero);
    dc += L::select(above, dL_dratio * (cov.x * D - det_raw * a) * iD2, zero);
    db += L::select(above, dL_dratio * (-2.0f * b * D + 2.0f * b * det_raw) * iD2, zero);
  }
  dL_dcov[0] = da, dL_dcov[1] = db, dL_dcov[2] = dc;
}

// Backward of Sigma = L L^T, L = R diag(m s): gradients for scale and (unnormalised) quaternion.
// dSigma: symmetric gradient as a full matrix.
template <class F>
DGR_HD void cov3d_backward(Vec3T<F> scale, float modifier, Vec4T<F> quat, const F dSigma[3][3],
                           F dL_dscale[3], F dL_drot[4]) {
  F R[3][3];
  quat_to_rotmat(quat, R);
  const F s[3] = {modifier * scale.x, modifier * scale.y, modifier * scale.z};
  F dR[3][3];
  for (int k = 0; k < 3; k++) dL_dscale[k] = LaneOps<F>::splat(0.0f);
  for (int i = 0; i < 3; i++) {
    for (int k = 0; k < 3; k++) {
      // dL/dL_ik = 2 (dSigma L)_ik
      F dLik = LaneOps<F>::splat(0.0f);
      for (int j = 0; j < 3; j++) dLik += 2.0f * dSigma[i][j] * R[j][k] * s[k];
      dL_dscale[k] += modifier * dLik * R[i][k];
      dR[i][k] = dLik * s[k];
    }
  }
  const F r = quat.x, x = quat.y, y = quat.z, z = quat.w;
  // Partial derivatives of R (quat_to_rotmat) with respect to r, x, y, z.
  dL_drot[0] = 2.0f * (-z * dR[0][1] + y * dR[0][2] + z * dR[1][0] - x * dR[1][2] - y * dR[2][0] +
                       x * dR[2][1]);
  dL_drot[1] = 2.0f * (y * dR[0][1] + z * dR[0][2] + y * dR[1][0] - 2.0f * x * dR[1][1] -
                       r * dR[1][2] + z * dR[2][0] + r * dR[2][1] - 2.0f * x * dR[2][2]);
  dL_drot[2] = 2.0f * (-2.0f * y * dR[0][0] + x * dR[0][1] + r * dR[0][2] + x * dR[1][0] +
                       z * dR[1][2] - r * dR[2][0] + z * dR[2][1] - 2.0f * y * dR[2][2]);
  dL_drot[3] = 2.0f * (-2.0f * z * dR[0][0] - r * dR[0][1] + x * dR[0][2] + r * dR[1][0] -
                       2.0f * z * dR[1][1] + y * dR[1][2] + x * dR[2][0] + y * dR[2][1]);
}

// What the geometry of one Gaussian (or of one per lane) passes back: the mean's gradient
// through the projection, the depth and the covariance's screen footprint (the colour's share,
// through the viewing direction, is added by the caller), the input opacity's, and Sigma's.
template <class F>
struct GeometryGrads {
  Vec3T<F> dmean;
  F dopacity;
  F dSigma[3][3];
};

// Backward of the projection of a visible Gaussian from the blend-stage gradients g.
// Recomputes the forward quantities it needs (cheaper than storing them).
template <class F>
DGR_HD GeometryGrads<F> geometry_backward(Vec3T<F> mean, const F cov3d[6], F opacity,
                                          const RasterCamera& cam, const SplatGradT<F>& g) {
  using L = LaneOps<F>;
  GeometryGrads<F> out;
  const Vec3T<F> t = transform_point4x3(cam.view, mean);
  const EwaJacobianT<F> ej = ewa_jacobian(t, cam);
  const Vec3T<F> cov = project_cov(ej, cov3d);
  const ConicT<F> k = make_conic(cov, cam.antialiasing, cam.low_pass);

  // Conic and opacity -> raw 2D covariance.
  F dcov[3];
  conic_backward(cov, k, cam, opacity, g, dcov, &out.dopacity);

  // 2D covariance T Sigma T^T -> Sigma and T.
  F S[3][3];
  cov6_to_mat(cov3d, S);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      out.dSigma[i][j] = dcov[0] * ej.T[0][i] * ej.T[0][j] + dcov[2] * ej.T[1][i] * ej.T[1][j] +
                         0.5f * dcov[1] * (ej.T[0][i] * ej.T[1][j] + ej.T[1][i] * ej.T[0][j]);
  F dT[2][3];
  for (int c = 0; c < 3; c++) {
    F ST0 = L::splat(0.0f), ST1 = L::splat(0.0f);  // (Sigma T0^T)_c, (Sigma T1^T)_c
    for (int j = 0; j < 3; j++) {
      ST0 += S[c][j] * ej.T[0][j];
      ST1 += S[c][j] * ej.T[1][j];
    }
    dT[0][c] = 2.0f * dcov[0] * ST0 + dcov[1] * ST1;
    dT[1][c] = 2.0f * dcov[2] * ST1 + dcov[1] * ST0;
  }
  // T = J W -> J -> view-space position t.
  const float* v = cam.view;
  F dJ00 = L::splat(0.0f), dJ02 = L::splat(0.0f), dJ11 = L::splat(0.0f), dJ12 = L::splat(0.0f);
  for (int c = 0; c < 3; c++) {
    dJ00 += dT[0][c] * v[4 * c + 0];
    dJ02 += dT[0][c] * v[4 * c + 2];
    dJ11 += dT[1][c] * v[4 * c + 1];
    dJ12 += dT[1][c] * v[4 * c + 2];
  }
  const F inv_z = 1.0f / t.z, inv_z2 = inv_z * inv_z, inv_z3 = inv_z2 * inv_z;
  const float fx = cam.focal_x, fy = cam.focal_y;
  // As the original: no gradient reaches the lateral position through the guard-band clamp.
  Vec3T<F> dt;
  dt.x = L::select(ej.x_clamped, L::splat(0.0f), -fx * inv_z2 * dJ02);
  dt.y = L::select(ej.y_clamped, L::splat(0.0f), -fy * inv_z2 * dJ12);
  dt.z = -fx * inv_z2 * dJ00 - fy * inv_z2 * dJ11 + 2.0f * fx * ej.tx * inv_z3 * dJ02 +
         2.0f * fy * ej.ty * inv_z3 * dJ12;
  // Inverse-depth output: d(1/z)/dz = -1/z^2.
  dt.z -= g.inv_depth * inv_z2;
  out.dmean = transform_vec4x3_transpose(cam.view, dt);

  // Projected mean (NDC) -> mean, through the perspective divide.
  const Vec4T<F> ph = transform_point4x4(cam.proj, mean);
  const F pw = 1.0f / (ph.w + PROJECTION_W_EPS), pw2 = pw * pw;
  const float* P = cam.proj;  // P[r][c] = P[4c + r]
  F dproj[3];
  for (int j = 0; j < 3; j++)
    dproj[j] = g.mean2d_x * (P[4 * j + 0] * pw - ph.x * pw2 * P[4 * j + 3]) +
               g.mean2d_y * (P[4 * j + 1] * pw - ph.y * pw2 * P[4 * j + 3]);
  out.dmean.x += dproj[0];
  out.dmean.y += dproj[1];
  out.dmean.z += dproj[2];
  return out;
}

// Backward of one visible Gaussian: from the blend-stage gradients g to every input gradient.
// What the geometry's backward found for a Gaussian's mean and opacity (a lane of
// GeometryGrads, without its covariance part).
struct MeanOpacityGrads {
  Vec3 dmean;
  float dopacity;
};

// The colour's backward, to the SH coefficients (and the mean, through the viewing direction)
// or to the precomputed colour, and the stores of the mean's and opacity's gradients.
DGR_HD void colour_backward(const GaussianInputs& in, const bool clamped[3],
                            const RasterCamera& cam, int sh_degree, const SplatGrad& g,
                            MeanOpacityGrads geo, const GaussianGrads& out) {
  *out.opacity = geo.dopacity;
  Vec3 dmean = geo.dmean;
  const Vec3 dcolor = {g.r, g.g, g.b};
  if (in.color) {
    store3(out.color, dcolor);
  } else {
    dmean = dmean + sh_to_color_backward(sh_degree, in.sh, load3(in.mean), cam.campos, clamped,
                                         dcolor, out.sh);
  }
  store3(out.mean, dmean);
}

// Gaussian i's colour channels that the SH evaluation clamped (from the forward pass's flags).
struct ClampedChannels {
  bool c[3];
  DGR_HD explicit ClampedChannels(const uint8_t* clamped, int64_t i)
      : c{clamped[3 * i] != 0, clamped[3 * i + 1] != 0, clamped[3 * i + 2] != 0} {}
};

DGR_HD void gaussian_backward(const GaussianInputs& in, const bool clamped[3],
                              const RasterCamera& cam, int sh_degree, const SplatGrad& g,
                              const GaussianGrads& out) {
  float cov3d[6];
  gaussian_cov3d(in, cam.scale_modifier, cov3d);
  const GeometryGrads<float> geo = geometry_backward(load3(in.mean), cov3d, in.opacity, cam, g);
  colour_backward(in, clamped, cam, sh_degree, g, {geo.dmean, geo.dopacity}, out);

  // Sigma -> precomputed covariance (off-diagonal entries appear twice), or scale and rotation.
  const auto& dSigma = geo.dSigma;
  if (in.cov3d) {
    out.cov3d[0] = dSigma[0][0];
    out.cov3d[1] = 2.0f * dSigma[0][1];
    out.cov3d[2] = 2.0f * dSigma[0][2];
    out.cov3d[3] = dSigma[1][1];
    out.cov3d[4] = 2.0f * dSigma[1][2];
    out.cov3d[5] = dSigma[2][2];
  } else {
    cov3d_backward(load3(in.scale), cam.scale_modifier, load4(in.rot), dSigma, out.scale, out.rot);
  }
}

// Preprocess backward of Gaussian i of the arrays, given its summed blend-stage gradient.
// sh_rest_row: where the gradients out.sh would hold go instead (a scratch row the caller
// consumes), or null.
DGR_HD void preprocess_backward_one(int64_t i, const GaussianArrays& in,
                                    const GaussianGradArrays& out, const uint8_t* clamped,
                                    const RasterCamera& cam, int sh_degree, const SplatGrad& g,
                                    float* sh_rest_row = nullptr) {
  out.store_means2D(i, g);
  gaussian_backward(in.at(i), ClampedChannels(clamped, i).c, cam, sh_degree, g,
                    out.at(i, sh_rest_row));
}

}  // namespace dgr
