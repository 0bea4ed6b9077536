// CUDA kernels of the rasterizer (see rasterize_kernels.h). Torch-free.
#include "rasterize_kernels.h"

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>

namespace dgr {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlockPixels = BLOCK_X * BLOCK_Y;

inline unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

__global__ void preprocess_kernel(int64_t P, GaussianArrays in, RasterCamera cam, int sh_degree,
                                  Splat* splats, uint8_t* clamped, int32_t* radii, float* depths,
                                  TileRect* rects, int32_t* tiles_touched) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= P) return;
  const Preprocessed pre = preprocess_gaussian(in.at(i), cam, sh_degree);
  radii[i] = pre.radius;
  tiles_touched[i] = 0;
  for (int ch = 0; ch < 3; ch++) clamped[3 * i + ch] = pre.visible ? pre.clamped[ch] : 0;
  if (!pre.visible) return;
  splats[i] = pre.splat;
  depths[i] = pre.depth;
  rects[i] = pre.rect;
  tiles_touched[i] = count_touched_tiles(pre.splat, pre.rect, cam.width, cam.height);
}

__global__ void duplicate_kernel(int64_t P, const Splat* splats, const TileRect* rects,
                                 const float* depths, const int32_t* tiles_touched,
                                 const int64_t* offsets, RasterCamera cam, uint64_t* keys,
                                 int32_t* values) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= P || tiles_touched[i] == 0) return;
  int64_t out = offsets[i] - tiles_touched[i];  // offsets is an inclusive scan
  const TileRect r = rects[i];
  const uint32_t depth_bits = __float_as_uint(depths[i]);  // positive floats order like bits
  const Splat s = splats[i];
  const TileTestSplat t(s);
  for (int ty = r.y0; ty < r.y1; ty++)
    for (int tx = r.x0; tx < r.x1; tx++)
      if (splat_touches_tile(t, tx, ty, cam.width, cam.height)) {
        keys[out] = ((uint64_t)(ty * cam.grid_x + tx) << 32) | depth_bits;
        values[out] = (int32_t)i;
        out++;
      }
}

__global__ void tile_ranges_kernel(int64_t N, const uint64_t* keys, int32_t* ranges) {
  const int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (k >= N) return;
  const uint32_t tile = (uint32_t)(keys[k] >> 32);
  if (k == 0) {
    ranges[2 * tile] = 0;
  } else {
    const uint32_t prev = (uint32_t)(keys[k - 1] >> 32);
    if (tile != prev) {
      ranges[2 * prev + 1] = (int32_t)k;
      ranges[2 * tile] = (int32_t)k;
    }
  }
  if (k == N - 1) ranges[2 * tile + 1] = (int32_t)N;
}

__global__ void __launch_bounds__(kBlockPixels)
    blend_kernel(RasterCamera cam, const int32_t* ranges, const int32_t* point_list,
                 const Splat* splats, const float* bg, float* color, float* invdepth,
                 float* final_T, int32_t* n_contrib) {
  const int tile = blockIdx.y * cam.grid_x + blockIdx.x;
  const int px = blockIdx.x * BLOCK_X + threadIdx.x, py = blockIdx.y * BLOCK_Y + threadIdx.y;
  const bool inside = px < cam.width && py < cam.height;
  bool done = !inside;
  const int start = ranges[2 * tile], end = ranges[2 * tile + 1];
  __shared__ Splat batch[kBlockPixels];
  const int thread = threadIdx.y * BLOCK_X + threadIdx.x;

  float T = 1.0f, R = 0.0f, G = 0.0f, B = 0.0f, D = 0.0f;
  int32_t last = 0;
  for (int base = start; base < end; base += kBlockPixels) {
    // Stop when every pixel of the tile is done.
    if (__syncthreads_count(done) == kBlockPixels) break;
    if (base + thread < end) batch[thread] = splats[point_list[base + thread]];
    __syncthreads();
    const int count = min(kBlockPixels, end - base);
    for (int j = 0; !done && j < count; j++) {
      const Splat& s = batch[j];
      const float dy = s.y - (float)py;
      const float power = splat_power(s, s.x - (float)px, dy);
      if (power > 0.0f) continue;
      const float alpha = splat_alpha(s.opacity, exp_nonpositive(power));
      if (alpha < ALPHA_MIN) continue;
      const float test_T = T * (1.0f - alpha);
      if (test_T < TRANSMITTANCE_MIN) {
        done = true;
        continue;
      }
      const float w = alpha * T;
      R += w * s.r, G += w * s.g, B += w * s.b, D += w * s.inv_depth;
      T = test_T;
      last = base - start + j + 1;
    }
  }
  if (!inside) return;
  const int64_t HW = (int64_t)cam.width * cam.height, pix = (int64_t)py * cam.width + px;
  color[pix] = R + T * bg[0];
  color[HW + pix] = G + T * bg[1];
  color[2 * HW + pix] = B + T * bg[2];
  invdepth[pix] = D;
  final_T[pix] = T;
  n_contrib[pix] = last;
}

__global__ void __launch_bounds__(kBlockPixels)
    blend_backward_kernel(RasterCamera cam, const int32_t* ranges, const int32_t* point_list,
                          const Splat* splats, const float* bg, const float* final_T,
                          const int32_t* n_contrib, const float* dL_dcolor,
                          const float* dL_dinvdepth, SplatGrad* splat_grads) {
  const int tile = blockIdx.y * cam.grid_x + blockIdx.x;
  const int px = blockIdx.x * BLOCK_X + threadIdx.x, py = blockIdx.y * BLOCK_Y + threadIdx.y;
  const bool inside = px < cam.width && py < cam.height;
  const int start = ranges[2 * tile], end = ranges[2 * tile + 1];
  const int thread = threadIdx.y * BLOCK_X + threadIdx.x;
  __shared__ Splat batch[kBlockPixels];
  __shared__ int32_t batch_ids[kBlockPixels];

  const int64_t HW = (int64_t)cam.width * cam.height, pix = (int64_t)py * cam.width + px;
  BackwardPixel<float> p{};
  int32_t contrib = 0;
  if (inside) {
    contrib = n_contrib[pix];
    p = backward_pixel(final_T[pix], dL_dcolor[pix], dL_dcolor[HW + pix], dL_dcolor[2 * HW + pix],
                       dL_dinvdepth ? dL_dinvdepth[pix] : 0.0f, bg);
  }
  const float half_w = 0.5f * cam.width, half_h = 0.5f * cam.height;
  // Back to front, in batches loaded from the end of the tile's list.
  for (int top = end; top > start; top -= kBlockPixels) {
    __syncthreads();
    const int k = top - 1 - thread;
    if (k >= start) {
      batch_ids[thread] = point_list[k];
      batch[thread] = splats[batch_ids[thread]];
    }
    __syncthreads();
    const int count = min(kBlockPixels, top - start);
    for (int j = 0; j < count; j++) {
      const int position = top - j - start;  // 1-based position in the tile's list
      if (!inside || position > contrib) continue;
      const Splat& s = batch[j];
      const float dx = s.x - (float)px, dy = s.y - (float)py;
      const float power = splat_power(s, dx, dy);
      if (power > 0.0f) continue;
      const float G = exp_nonpositive(power);
      const float alpha = splat_alpha(s.opacity, G);
      if (alpha < ALPHA_MIN) continue;
      SplatGradSums<float> m{};
      blend_backward_step(s, dx, dy, G, alpha, true, p, m);
      const SplatGrad g = splat_grad(s, m.x, m.y, m.xx, m.xy, m.yy, m.op, m.r, m.g, m.b, m.d,
                                     half_w, half_h);
      float* out = reinterpret_cast<float*>(splat_grads + batch_ids[j]);
      const float* add = reinterpret_cast<const float*>(&g);
      for (int f = 0; f < SPLAT_GRAD_FLOATS; f++) atomicAdd(out + f, add[f]);
    }
  }
}

__global__ void preprocess_backward_kernel(int64_t P, GaussianArrays in, GaussianGradArrays out,
                                           const uint8_t* clamped, const int32_t* radii,
                                           RasterCamera cam, int sh_degree,
                                           const SplatGrad* splat_grads) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= P || radii[i] <= 0) return;
  preprocess_backward_one(i, in, out, clamped, cam, sh_degree, splat_grads[i]);
}

__global__ void mark_visible_kernel(int64_t P, const float* means3D, const float* view,
                                    bool* visible) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= P) return;
  visible[i] = transform_point4x3(view, load3(means3D + 3 * i)).z > NEAR_PLANE;
}

}  // namespace

void preprocess(int64_t P, const GaussianArrays& in, const RasterCamera& cam, int sh_degree,
                Splat* splats, uint8_t* clamped, int32_t* radii, float* depths, TileRect* rects,
                int32_t* tiles_touched, cudaStream_t stream) {
  if (P == 0) return;
  preprocess_kernel<<<blocks_for(P), kThreads, 0, stream>>>(P, in, cam, sh_degree, splats,
                                                            clamped, radii, depths, rects,
                                                            tiles_touched);
}

size_t scan_temp_bytes(int64_t P) {
  size_t bytes = 0;
  cub::DeviceScan::InclusiveSum(nullptr, bytes, (const int32_t*)nullptr, (int64_t*)nullptr,
                                (int)P);
  return bytes;
}

void scan_tiles(void* temp, size_t temp_bytes, const int32_t* tiles_touched, int64_t* offsets,
                int64_t P, cudaStream_t stream) {
  cub::DeviceScan::InclusiveSum(temp, temp_bytes, tiles_touched, offsets, (int)P, stream);
}

void duplicate_with_keys(int64_t P, const Splat* splats, const TileRect* rects,
                         const float* depths, const int32_t* tiles_touched,
                         const int64_t* offsets, const RasterCamera& cam, uint64_t* keys,
                         int32_t* values, cudaStream_t stream) {
  if (P == 0) return;
  duplicate_kernel<<<blocks_for(P), kThreads, 0, stream>>>(P, splats, rects, depths,
                                                           tiles_touched, offsets, cam, keys,
                                                           values);
}

int key_end_bit(int64_t num_tiles) {
  int bits = 1;
  while ((int64_t{1} << bits) <= num_tiles) bits++;
  return 32 + bits;
}

size_t sort_temp_bytes(int64_t N, int end_bit) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint64_t*)nullptr, (uint64_t*)nullptr,
                                  (const int32_t*)nullptr, (int32_t*)nullptr, (int)N, 0,
                                  end_bit);
  return bytes;
}

void sort_pairs(void* temp, size_t temp_bytes, const uint64_t* keys_in, uint64_t* keys_out,
                const int32_t* values_in, int32_t* values_out, int64_t N, int end_bit,
                cudaStream_t stream) {
  cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, values_out,
                                  (int)N, 0, end_bit, stream);
}

void tile_ranges(int64_t N, const uint64_t* sorted_keys, int64_t num_tiles, int32_t* ranges,
                 cudaStream_t stream) {
  cudaMemsetAsync(ranges, 0, sizeof(int32_t) * 2 * num_tiles, stream);
  if (N == 0) return;
  tile_ranges_kernel<<<blocks_for(N), kThreads, 0, stream>>>(N, sorted_keys, ranges);
}

void blend(const RasterCamera& cam, const int32_t* ranges, const int32_t* point_list,
           const Splat* splats, const float* bg, float* color, float* invdepth, float* final_T,
           int32_t* n_contrib, cudaStream_t stream) {
  const dim3 grid(cam.grid_x, cam.grid_y), block(BLOCK_X, BLOCK_Y);
  blend_kernel<<<grid, block, 0, stream>>>(cam, ranges, point_list, splats, bg, color, invdepth,
                                           final_T, n_contrib);
}

void blend_backward(const RasterCamera& cam, const int32_t* ranges, const int32_t* point_list,
                    const Splat* splats, const float* bg, const float* final_T,
                    const int32_t* n_contrib, const float* dL_dcolor, const float* dL_dinvdepth,
                    SplatGrad* splat_grads, cudaStream_t stream) {
  const dim3 grid(cam.grid_x, cam.grid_y), block(BLOCK_X, BLOCK_Y);
  blend_backward_kernel<<<grid, block, 0, stream>>>(cam, ranges, point_list, splats, bg, final_T,
                                                    n_contrib, dL_dcolor, dL_dinvdepth,
                                                    splat_grads);
}

void preprocess_backward(int64_t P, const GaussianArrays& in, const GaussianGradArrays& out,
                         const uint8_t* clamped, const int32_t* radii, const RasterCamera& cam,
                         int sh_degree, const SplatGrad* splat_grads, cudaStream_t stream) {
  if (P == 0) return;
  preprocess_backward_kernel<<<blocks_for(P), kThreads, 0, stream>>>(P, in, out, clamped, radii,
                                                                     cam, sh_degree, splat_grads);
}

void mark_visible(int64_t P, const float* means3D, const float* view, bool* visible,
                  cudaStream_t stream) {
  if (P == 0) return;
  mark_visible_kernel<<<blocks_for(P), kThreads, 0, stream>>>(P, means3D, view, visible);
}

}  // namespace cuda
}  // namespace dgr
