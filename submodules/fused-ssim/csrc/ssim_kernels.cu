// Fused SSIM + L1 on CUDA: the passes of ssim.h, one thread per pixel (see ssim_kernels.h).
#include "ssim_kernels.h"

namespace fused_ssim {
namespace cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

// Where flat pixel index i of N planes of H x W lies: the start of its row and of its plane, and
// its row and column in the plane.
struct PixelAt {
  int64_t row_start, plane_start;
  int row, col;
};
__device__ PixelAt pixel_at(int64_t i, int H, int W) {
  const int64_t plane_size = static_cast<int64_t>(H) * W;
  return {i - i % W, i - i % plane_size, static_cast<int>((i % plane_size) / W),
          static_cast<int>(i % W)};
}

// Horizontal blur of `count` maps at one pixel: out[m] = sum_k w[k] value(m, x + k - R), zero
// outside the row; value(m, i) reads map m at column i of the same row.
template <int count, class Value>
__device__ void blur_horizontal(const Window& win, int W, int x, Value value, float* out) {
  for (int m = 0; m < count; ++m) out[m] = 0.f;
  for (int k = 0; k < kTaps; ++k) {
    const int xx = x + k - kRadius;
    if (xx < 0 || xx >= W) continue;
    for (int m = 0; m < count; ++m) out[m] += win.w[k] * value(m, xx);
  }
}

// Vertical blur at (row y, column x) of `count` maps stored [map][N*H*W] from `plane` (the pixel's
// plane offset): zero outside the column.
template <int count>
__device__ void blur_vertical(const Window& win, int H, int W, const float* in, int64_t total,
                              int64_t plane, int y, int x, float* out) {
  for (int m = 0; m < count; ++m) out[m] = 0.f;
  for (int k = 0; k < kTaps; ++k) {
    const int yy = y + k - kRadius;
    if (yy < 0 || yy >= H) continue;
    const int64_t at = plane + static_cast<int64_t>(yy) * W + x;
    for (int m = 0; m < count; ++m) out[m] += win.w[k] * in[m * total + at];
  }
}

__global__ void forward_horizontal(const float* x, const float* y, int64_t total, int W,
                                   Window win, float* tmp) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const PixelAt p = pixel_at(i, 1, W);
  float out[kStats];
  blur_horizontal<kStats>(win, W, p.col, [&](int m, int c) {
    const float a = x[p.row_start + c], b = y[p.row_start + c];
    switch (m) {
      case 0: return a;
      case 1: return b;
      case 2: return a * a;
      case 3: return b * b;
      default: return a * b;
    }
  }, out);
  for (int m = 0; m < kStats; ++m) tmp[m * total + i] = out[m];
}

__global__ void forward_vertical(const float* x, const float* y, int64_t total, int H, int W,
                                 Window win, const float* tmp, float* dmap, float* terms) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const PixelAt p = pixel_at(i, H, W);
  float st[kStats];
  blur_vertical<kStats>(win, H, W, tmp, total, p.plane_start, p.row, p.col, st);
  const SsimPixel s = ssim_pixel(st[0], st[1], st[2], st[3], st[4]);
  dmap[i] = s.d_mu;
  dmap[total + i] = s.d_exx;
  dmap[2 * total + i] = s.d_exy;
  terms[i] = s.s;
  terms[total + i] = fabsf(x[i] - y[i]);
}

__global__ void backward_horizontal(const float* dmap, int64_t total, int W, Window win,
                                    float* tmp) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const PixelAt p = pixel_at(i, 1, W);
  float out[3];
  blur_horizontal<3>(win, W, p.col, [&](int m, int c) { return dmap[m * total + p.row_start + c]; },
                     out);
  for (int m = 0; m < 3; ++m) tmp[m * total + i] = out[m];
}

__global__ void backward_vertical(const float* x, const float* y, int64_t total, int H, int W,
                                  Window win, const float* tmp, float g_l1, float g_ssim,
                                  float* grad_x) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const PixelAt p = pixel_at(i, H, W);
  float b[3];
  blur_vertical<3>(win, H, W, tmp, total, p.plane_start, p.row, p.col, b);
  grad_x[i] = grad_pixel(x[i], y[i], b[0], b[1], b[2], g_l1, g_ssim);
}

}  // namespace

void forward(const float* x, const float* y, int64_t N, int H, int W, const Window& win,
             float* tmp, float* dmap, float* terms, cudaStream_t stream) {
  const int64_t total = N * H * static_cast<int64_t>(W);
  if (total == 0) return;
  forward_horizontal<<<blocks_for(total), kThreads, 0, stream>>>(x, y, total, W, win, tmp);
  forward_vertical<<<blocks_for(total), kThreads, 0, stream>>>(x, y, total, H, W, win, tmp, dmap,
                                                               terms);
}

void backward(const float* x, const float* y, const float* dmap, int64_t N, int H, int W,
              const Window& win, float g_l1, float g_ssim, float* tmp, float* grad_x,
              cudaStream_t stream) {
  const int64_t total = N * H * static_cast<int64_t>(W);
  if (total == 0) return;
  backward_horizontal<<<blocks_for(total), kThreads, 0, stream>>>(dmap, total, W, win, tmp);
  backward_vertical<<<blocks_for(total), kThreads, 0, stream>>>(x, y, total, H, W, win, tmp, g_l1,
                                                                g_ssim, grad_x);
}

}  // namespace cuda
}  // namespace fused_ssim
