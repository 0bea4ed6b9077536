// Named constants of the rasterizer, defined once for C++ and CUDA.
// diff_gaussian_rasterization/constants.py defines the same values for Python; a test checks
// that the two agree (the extension exports these through `_C.constants()`).
#pragma once

#if defined(__CUDACC__)
#define DGR_HD __host__ __device__ __forceinline__
#else
#define DGR_HD inline
#endif

namespace dgr {

// Output colour channels (RGB). Other channel counts are not supported.
constexpr int NUM_CHANNELS = 3;
// Screen tiles are BLOCK_X x BLOCK_Y pixels: the unit of binning and of parallel blending.
constexpr int BLOCK_X = 16;
constexpr int BLOCK_Y = 16;
constexpr int TILE_PIXELS = BLOCK_X * BLOCK_Y;
// Gaussians whose view-space depth is at or below this are culled (the only frustum test).
constexpr float NEAR_PLANE = 0.2f;
// The EWA Jacobian is evaluated at a position clamped to this multiple of tan(fov/2), so
// Gaussians far outside the view do not explode the linearisation.
constexpr float FRUSTUM_GUARD_BAND = 1.3f;
// Added to the diagonal of every 2D covariance: each splat is at least about a pixel wide. The
// original's constant; a setting (low_pass_variance) can replace it for one render, as the
// coarse levels of coarse-to-fine training do.
constexpr float LOW_PASS_VARIANCE = 0.3f;
// With antialiasing, opacity is scaled by sqrt(max(this, det(cov) / det(cov + low-pass))).
constexpr float ANTIALIAS_MIN_DET_RATIO = 2.5e-5f;
// Lower bound of the discriminant used for the eigenvalues that size the screen radius.
constexpr float EIGEN_MIN_DISCRIMINANT = 0.1f;
// The screen radius covers this many standard deviations of the larger eigenvalue.
constexpr float RADIUS_SIGMAS = 3.0f;
// Contributions below this alpha are skipped: invisible in an 8-bit image.
constexpr float ALPHA_MIN = 1.0f / 255.0f;
// Alpha is clamped here so that the backward pass can divide by (1 - alpha).
constexpr float ALPHA_MAX = 0.99f;
// A pixel stops blending before its transmittance would drop below this.
constexpr float TRANSMITTANCE_MIN = 1e-4f;
// Added to the homogeneous w before the perspective divide (avoids division by zero).
constexpr float PROJECTION_W_EPS = 1e-7f;
// Highest spherical-harmonics degree the renderer evaluates; (degree + 1)^2 coefficients.
constexpr int MAX_SH_DEGREE = 3;
constexpr int MAX_SH_COEFFS = (MAX_SH_DEGREE + 1) * (MAX_SH_DEGREE + 1);
// Added to the SH colour so that zero coefficients give mid-grey.
constexpr float SH_COLOR_OFFSET = 0.5f;
// Safety margin of the exact tile and row skipping (in units of the exponent): a tile is skipped
// only when its best alpha is below ALPHA_MIN by more than float rounding could ever explain.
constexpr float SKIP_POWER_MARGIN = 1e-3f;

}  // namespace dgr
