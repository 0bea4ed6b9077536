// CUDA backend of the fused SSIM + L1: kernel launchers on raw device pointers, no torch headers
// (so `make cuda-check` compiles them with nvcc alone); ext.cpp adapts tensors. The passes are
// the CPU ones of ssim.h, one thread per pixel, with the same per-pixel formulas.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "ssim.h"

namespace fused_ssim {
namespace cuda {

// Forward over N planes of H x W. tmp: kStats * N*H*W scratch. Writes dmap [3][N][H][W] (as the
// CPU forward) and per-pixel terms [2][N][H][W]: the SSIM map and |x - y|, which the caller sums.
void forward(const float* x, const float* y, int64_t N, int H, int W, const Window& win,
             float* tmp, float* dmap, float* terms, cudaStream_t stream);

// Backward: grad_x from dmap. tmp: 3 * N*H*W scratch.
void backward(const float* x, const float* y, const float* dmap, int64_t N, int H, int W,
              const Window& win, float g_l1, float g_ssim, float* tmp, float* grad_x,
              cudaStream_t stream);

}  // namespace cuda
}  // namespace fused_ssim
