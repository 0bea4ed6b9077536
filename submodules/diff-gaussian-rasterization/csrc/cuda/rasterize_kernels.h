// CUDA backend of the rasterizer: kernel launchers on raw device pointers. No torch headers here
// (so `make cuda-check` compiles the kernels with nvcc alone); rasterize_cuda.cpp adapts tensors.
//
// The stages are the original's: preprocess (one thread per Gaussian) → scan of tile counts →
// duplicate with (tile << 32 | depth) keys → cub radix sort → tile ranges → blend (one 16x16
// block per tile); backward: blend backward (one thread per pixel, atomics into per-Gaussian
// sums) → preprocess backward (one thread per Gaussian). Every per-Gaussian and per-pixel formula
// is the one in ../math/*.h that the CPU backend runs.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "../math/blend.h"
#include "../math/gaussian.h"

namespace dgr {
namespace cuda {

// Stage 1. Per Gaussian: splat, clamped colour channels, radius (0 = culled), depth, tile
// rectangle and the number of tiles it touches.
void preprocess(int64_t P, const GaussianArrays& in, const RasterCamera& cam, int sh_degree,
                Splat* splats, uint8_t* clamped, int32_t* radii, float* depths, TileRect* rects,
                int32_t* tiles_touched, cudaStream_t stream);

// Inclusive prefix sum of tiles_touched into offsets (int64), P > 0.
size_t scan_temp_bytes(int64_t P);
void scan_tiles(void* temp, size_t temp_bytes, const int32_t* tiles_touched, int64_t* offsets,
                int64_t P, cudaStream_t stream);

// Stage 2. One (key, Gaussian id) per touched tile; key = tile << 32 | depth bits.
void duplicate_with_keys(int64_t P, const Splat* splats, const TileRect* rects,
                         const float* depths, const int32_t* tiles_touched,
                         const int64_t* offsets, const RasterCamera& cam, uint64_t* keys,
                         int32_t* values, cudaStream_t stream);

// Stage 3. Radix sort of N pairs on the low `end_bit` bits of the keys.
int key_end_bit(int64_t num_tiles);
size_t sort_temp_bytes(int64_t N, int end_bit);
void sort_pairs(void* temp, size_t temp_bytes, const uint64_t* keys_in, uint64_t* keys_out,
                const int32_t* values_in, int32_t* values_out, int64_t N, int end_bit,
                cudaStream_t stream);

// Stage 4. ranges[2 t], ranges[2 t + 1]: the sorted entries of tile t (zeroed first).
void tile_ranges(int64_t N, const uint64_t* sorted_keys, int64_t num_tiles, int32_t* ranges,
                 cudaStream_t stream);

// Stage 5. Blend: colour [3, H, W], inverse depth [H, W], final transmittance, last contributor.
void blend(const RasterCamera& cam, const int32_t* ranges, const int32_t* point_list,
           const Splat* splats, const float* bg, float* color, float* invdepth, float* final_T,
           int32_t* n_contrib, cudaStream_t stream);

// Backward stage 5: per-Gaussian sums of the blend-stage gradients, [P] SplatGrad, zeroed by
// the caller; dL_dinvdepth may be null.
void blend_backward(const RasterCamera& cam, const int32_t* ranges, const int32_t* point_list,
                    const Splat* splats, const float* bg, const float* final_T,
                    const int32_t* n_contrib, const float* dL_dcolor, const float* dL_dinvdepth,
                    SplatGrad* splat_grads, cudaStream_t stream);

// Backward stage 1: every input gradient of the Gaussians with radius > 0.
void preprocess_backward(int64_t P, const GaussianArrays& in, const GaussianGradArrays& out,
                         const uint8_t* clamped, const int32_t* radii, const RasterCamera& cam,
                         int sh_degree, const SplatGrad* splat_grads, cudaStream_t stream);

// markVisible: view-space z > NEAR_PLANE.
void mark_visible(int64_t P, const float* means3D, const float* view, bool* visible,
                  cudaStream_t stream);

}  // namespace cuda
}  // namespace dgr
