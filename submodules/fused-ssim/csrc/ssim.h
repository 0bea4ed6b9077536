// Fused SSIM + L1 for training: forward statistics and backward in a few passes over the image.
// Torch-free: the per-pixel formulas (ssim_pixel, grad_pixel, the window) are shared with the
// CUDA kernels (ssim_kernels.cu); the CPU passes below take the loop over rows (`for_rows`).
//
// SSIM of the original (11x11 Gaussian window, sigma 1.5, zero padding, C1 = 0.01^2,
// C2 = 0.03^2), computed with the separable window: each blurred statistic is a horizontal
// 11-tap pass followed by a vertical one.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#if defined(__CUDACC__)
#define FSSIM_HD __host__ __device__ __forceinline__
#else
#define FSSIM_HD inline
#endif

namespace fused_ssim {

constexpr int kRadius = 5;                  // 11-tap window
constexpr int kTaps = 2 * kRadius + 1;
constexpr double kSigma = 1.5;
constexpr float kC1 = 0.01f * 0.01f;        // (K1 L)^2, L = 1
constexpr float kC2 = 0.03f * 0.03f;        // (K2 L)^2
constexpr int kStats = 5;                   // mu_x, mu_y, E[x^2], E[y^2], E[xy]

// The normalised 1D Gaussian window (a plain struct, so kernels take it by value).
struct Window {
  float w[kTaps];
};
inline Window make_window() {
  Window win;
  double sum = 0, g[kTaps];
  for (int i = 0; i < kTaps; ++i) {
    const double x = i - kRadius;
    g[i] = std::exp(-x * x / (2 * kSigma * kSigma));
    sum += g[i];
  }
  for (int i = 0; i < kTaps; ++i) win.w[i] = static_cast<float>(g[i] / sum);
  return win;
}

// SSIM at one pixel from its blurred statistics, and the three derivatives backward needs:
// dS/dmu_x, dS/dE[x^2], dS/dE[xy] (through var_x = E[x^2] - mu_x^2, cov = E[xy] - mu_x mu_y).
struct SsimPixel {
  float s, d_mu, d_exx, d_exy;
};
FSSIM_HD SsimPixel ssim_pixel(float mu_x, float mu_y, float exx, float eyy, float exy) {
  const float var_x = exx - mu_x * mu_x, var_y = eyy - mu_y * mu_y;
  const float cov = exy - mu_x * mu_y;
  const float a1 = 2.f * mu_x * mu_y + kC1, a2 = 2.f * cov + kC2;
  const float b1 = mu_x * mu_x + mu_y * mu_y + kC1, b2 = var_x + var_y + kC2;
  const float inv_b = 1.f / (b1 * b2);
  SsimPixel p;
  p.s = a1 * a2 * inv_b;
  // mu_x enters four factors.
  p.d_mu = (2.f * mu_y * a2 - 2.f * mu_y * a1) * inv_b - p.s * (2.f * mu_x / b1 - 2.f * mu_x / b2);
  p.d_exx = -p.s / b2;
  p.d_exy = 2.f * a1 * inv_b;
  return p;
}

// d(g_l1 mean|x - y| + g_ssim mean SSIM)/dx at one pixel, from the blurred derivative maps
// (the window is symmetric, so the adjoint of the zero-padded blur is the blur itself).
FSSIM_HD float grad_pixel(float x, float y, float b_mu, float b_xx, float b_xy, float g_l1,
                          float g_ssim) {
  const float diff = x - y;
  const float sign = (diff > 0.f) - (diff < 0.f);
  return g_l1 * sign + g_ssim * (b_mu + 2.f * x * b_xx + y * b_xy);
}

// out[x] = sum_k w[k] * value(x + k - R) along one row of width W, zero outside [0, W).
// The values go into a zero-padded copy of the row first, so that each tap is one vectorised
// pass over the whole row (2.4x faster than a per-pixel loop over the taps).
template <class Value>
inline void blur_row(const Window& win, int W, Value value, float* out) {
  thread_local std::vector<float> padded;
  padded.assign(static_cast<size_t>(W) + 2 * kRadius, 0.f);
  float* p = padded.data() + kRadius;
  for (int x = 0; x < W; ++x) p[x] = value(x);
  for (int x = 0; x < W; ++x) out[x] = 0.f;
  for (int k = 0; k < kTaps; ++k) {
    const float wk = win.w[k];
    const float* src = padded.data() + k;
#pragma omp simd
    for (int x = 0; x < W; ++x) out[x] += wk * src[x];
  }
}

// Vertical pass for output row y of `planes` planes stored [plane][H][W] in `in`.
inline void blur_column_row(const Window& win, int H, int W, const float* in, int y, float* out) {
  for (int x = 0; x < W; ++x) out[x] = 0.f;
  for (int k = 0; k < kTaps; ++k) {
    const int yy = y + k - kRadius;
    if (yy < 0 || yy >= H) continue;
    const float wk = win.w[k];
    const float* row = in + static_cast<int64_t>(yy) * W;
#pragma omp simd
    for (int x = 0; x < W; ++x) out[x] += wk * row[x];
  }
}

// Forward for N planes of H x W (img x, reference y). Writes the three per-pixel derivatives of
// the SSIM map that backward needs (dS/dmu_x, dS/dE[x^2], dS/dE[xy]) into dmap [3][N][H][W],
// and per-row partial sums of SSIM and |x - y| into row_ssim / row_l1 [N * H] (summed by the
// caller in a fixed order, so the result does not depend on the thread count).
// `tmp` and `stats` are scratch buffers of kStats * N * H * W floats each.
template <class ForRows>
void forward(const float* x, const float* y, int64_t N, int H, int W, float* tmp, float* stats,
             float* dmap, double* row_ssim, double* row_l1, ForRows for_rows) {
  static const Window win = make_window();
  const int64_t plane = static_cast<int64_t>(H) * W, total = N * plane;
  // 1. Horizontal pass of the five statistics, one (plane, row) per task.
  for_rows(N * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * W;
      const float* yr = y + r * W;
      blur_row(win, W, [&](int i) { return xr[i]; }, tmp + 0 * total + r * W);
      blur_row(win, W, [&](int i) { return yr[i]; }, tmp + 1 * total + r * W);
      blur_row(win, W, [&](int i) { return xr[i] * xr[i]; }, tmp + 2 * total + r * W);
      blur_row(win, W, [&](int i) { return yr[i] * yr[i]; }, tmp + 3 * total + r * W);
      blur_row(win, W, [&](int i) { return xr[i] * yr[i]; }, tmp + 4 * total + r * W);
    }
  });
  // 2. Vertical pass, then the SSIM map and its derivatives per pixel.
  for_rows(N * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H;
      const int yrow = static_cast<int>(r % H);
      for (int s = 0; s < kStats; ++s)
        blur_column_row(win, H, W, tmp + s * total + n * plane, yrow, stats + s * total + r * W);
      const float* mx = stats + 0 * total + r * W;
      const float* my = stats + 1 * total + r * W;
      const float* exx = stats + 2 * total + r * W;
      const float* eyy = stats + 3 * total + r * W;
      const float* exy = stats + 4 * total + r * W;
      float* d_mu = dmap + 0 * total + r * W;
      float* d_exx = dmap + 1 * total + r * W;
      float* d_exy = dmap + 2 * total + r * W;
      const float* xr = x + r * W;
      const float* yr = y + r * W;
      // The pixels first, into a row of SSIM values, then the sums: a loop that also carried the
      // (ordered, double) sums would not vectorise, and SSIM's divisions dominate this pass.
      thread_local std::vector<float> row_s;
      row_s.resize(W);
      float* s_row = row_s.data();
#pragma omp simd
      for (int i = 0; i < W; ++i) {
        const SsimPixel p = ssim_pixel(mx[i], my[i], exx[i], eyy[i], exy[i]);
        d_mu[i] = p.d_mu;
        d_exx[i] = p.d_exx;
        d_exy[i] = p.d_exy;
        s_row[i] = p.s;
      }
      double ssim_sum = 0, l1_sum = 0;
      for (int i = 0; i < W; ++i) {
        ssim_sum += s_row[i];
        l1_sum += std::fabs(xr[i] - yr[i]);
      }
      row_ssim[r] = ssim_sum;
      row_l1[r] = l1_sum;
    }
  });
}

// Backward: grad_x = g_l1 * sign(x - y) + g_ssim * (blur(dS/dmu) + 2x blur(dS/dE[x^2])
//                                                  + y blur(dS/dE[xy])) (grad_pixel).
// g_l1 and g_ssim already include the 1/numel of the means. `tmp`, `blurred`: 3 * N * H * W.
template <class ForRows>
void backward(const float* x, const float* y, const float* dmap, int64_t N, int H, int W,
              float g_l1, float g_ssim, float* tmp, float* blurred, float* grad_x,
              ForRows for_rows) {
  static const Window win = make_window();
  const int64_t plane = static_cast<int64_t>(H) * W, total = N * plane;
  for_rows(N * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int s = 0; s < 3; ++s) {
        const float* src = dmap + s * total + r * W;
        blur_row(win, W, [&](int i) { return src[i]; }, tmp + s * total + r * W);
      }
  });
  for_rows(N * H, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H;
      const int yrow = static_cast<int>(r % H);
      for (int s = 0; s < 3; ++s)
        blur_column_row(win, H, W, tmp + s * total + n * plane, yrow, blurred + s * total + r * W);
      const float* b_mu = blurred + 0 * total + r * W;
      const float* b_xx = blurred + 1 * total + r * W;
      const float* b_xy = blurred + 2 * total + r * W;
      const float* xr = x + r * W;
      const float* yr = y + r * W;
      float* gr = grad_x + r * W;
      for (int i = 0; i < W; ++i)
        gr[i] = grad_pixel(xr[i], yr[i], b_mu[i], b_xx[i], b_xy[i], g_l1, g_ssim);
    }
  });
}

}  // namespace fused_ssim
