// Torch adapter of the CUDA backend: allocates tensors and calls the kernel launchers of
// rasterize_kernels.h. Compiled only in CUDA builds (DGR_WITH_CUDA). It uses ATen's core API
// only (no c10/cuda headers), so `make cuda-check` can compile it against a CPU torch; kernels
// run on the legacy default stream, which is torch's current stream unless the caller switches
// streams.
#include <ATen/ATen.h>

#include "../rasterize_api.h"
#include "../tensor_views.h"
#include "rasterize_kernels.h"

namespace dgr {
namespace {

const cudaStream_t kDefaultStream = nullptr;

at::Tensor bytes(size_t n, const at::TensorOptions& opts) {
  return at::empty({(int64_t)std::max<size_t>(n, 1)}, opts.dtype(at::kByte));
}

}  // namespace

ForwardResult rasterize_forward_cuda(const RasterSettings& s, const GaussianTensors& g) {
  const int64_t P = g.means3D.size(0);
  const auto opts = g.means3D.options();
  cudaStream_t stream = kDefaultStream;
  const at::Tensor campos_host = s.campos.cpu();
  const RasterCamera cam = make_camera(s, campos_host);
  const GaussianArrays arrays = gaussian_arrays(g);
  const int64_t num_tiles = (int64_t)cam.grid_x * cam.grid_y;

  ForwardResult r;
  ForwardState& st = r.state;
  st.splats = at::empty({P, SPLAT_FLOATS}, opts);
  st.clamped = at::empty({P, 3}, opts.dtype(at::kByte));
  r.radii = at::empty({P}, opts.dtype(at::kInt));
  at::Tensor depths = at::empty({P}, opts);
  at::Tensor rects = at::empty({P, (int64_t)(sizeof(TileRect) / sizeof(int32_t))},
                               opts.dtype(at::kInt));
  at::Tensor touched = at::empty({P}, opts.dtype(at::kInt));
  Splat* splats = reinterpret_cast<Splat*>(st.splats.data_ptr<float>());
  TileRect* rect_ptr = reinterpret_cast<TileRect*>(rects.data_ptr<int32_t>());
  cuda::preprocess(P, arrays, cam, s.sh_degree, splats, st.clamped.data_ptr<uint8_t>(),
                   r.radii.data_ptr<int32_t>(), depths.data_ptr<float>(), rect_ptr,
                   touched.data_ptr<int32_t>(), stream);

  at::Tensor offsets = at::zeros({std::max<int64_t>(P, 1)}, opts.dtype(at::kLong));
  int64_t N = 0;
  if (P > 0) {
    const size_t scan_bytes = cuda::scan_temp_bytes(P);
    at::Tensor scan_temp = bytes(scan_bytes, opts);
    cuda::scan_tiles(scan_temp.data_ptr(), scan_bytes, touched.data_ptr<int32_t>(),
                     offsets.data_ptr<int64_t>(), P, stream);
    N = offsets[P - 1].item<int64_t>();
  }
  at::Tensor keys = at::empty({N}, opts.dtype(at::kLong));
  at::Tensor values = at::empty({N}, opts.dtype(at::kInt));
  cuda::duplicate_with_keys(P, splats, rect_ptr, depths.data_ptr<float>(),
                            touched.data_ptr<int32_t>(), offsets.data_ptr<int64_t>(), cam,
                            reinterpret_cast<uint64_t*>(keys.data_ptr<int64_t>()),
                            values.data_ptr<int32_t>(), stream);
  at::Tensor sorted_keys = at::empty({N}, opts.dtype(at::kLong));
  st.point_list = at::empty({N}, opts.dtype(at::kInt));
  if (N > 0) {
    const int end_bit = cuda::key_end_bit(num_tiles);
    const size_t sort_bytes = cuda::sort_temp_bytes(N, end_bit);
    at::Tensor sort_temp = bytes(sort_bytes, opts);
    cuda::sort_pairs(sort_temp.data_ptr(), sort_bytes,
                     reinterpret_cast<const uint64_t*>(keys.data_ptr<int64_t>()),
                     reinterpret_cast<uint64_t*>(sorted_keys.data_ptr<int64_t>()),
                     values.data_ptr<int32_t>(), st.point_list.data_ptr<int32_t>(), N, end_bit,
                     stream);
  }
  st.tile_ranges = at::empty({num_tiles, 2}, opts.dtype(at::kInt));
  cuda::tile_ranges(N, reinterpret_cast<const uint64_t*>(sorted_keys.data_ptr<int64_t>()),
                    num_tiles, st.tile_ranges.data_ptr<int32_t>(), stream);

  r.color = at::empty({3, s.image_height, s.image_width}, opts);
  r.invdepth = at::empty({1, s.image_height, s.image_width}, opts);
  st.final_T = at::empty({s.image_height, s.image_width}, opts);
  st.n_contrib = at::empty({s.image_height, s.image_width}, opts.dtype(at::kInt));
  cuda::blend(cam, st.tile_ranges.data_ptr<int32_t>(), st.point_list.data_ptr<int32_t>(), splats,
              s.background.data_ptr<float>(), r.color.data_ptr<float>(),
              r.invdepth.data_ptr<float>(), st.final_T.data_ptr<float>(),
              st.n_contrib.data_ptr<int32_t>(), stream);
  // The CPU backend's per-entry bookkeeping is not needed here (the backward uses atomics).
  st.entry_offsets = at::empty({0}, opts.dtype(at::kLong));
  st.entry_slots = at::empty({0}, opts.dtype(at::kInt));
  st.radii = r.radii;
  r.num_rendered = N;
  return r;
}

BackwardResult rasterize_backward_cuda(const RasterSettings& s, const GaussianTensors& g,
                                       const ForwardState& st, const at::Tensor& grad_color,
                                       const at::Tensor& grad_invdepth) {
  const int64_t P = g.means3D.size(0);
  const auto opts = g.means3D.options();
  cudaStream_t stream = kDefaultStream;
  const at::Tensor campos_host = s.campos.cpu();
  const RasterCamera cam = make_camera(s, campos_host);
  const GaussianArrays arrays = gaussian_arrays(g);
  const Splat* splats = reinterpret_cast<const Splat*>(st.splats.data_ptr<float>());

  at::Tensor splat_grads = at::zeros({P, SPLAT_GRAD_FLOATS}, opts);
  SplatGrad* sg = reinterpret_cast<SplatGrad*>(splat_grads.data_ptr<float>());
  const at::Tensor grad_color_c = grad_color.contiguous();
  const at::Tensor grad_invdepth_c = grad_invdepth.contiguous();
  cuda::blend_backward(cam, st.tile_ranges.data_ptr<int32_t>(), st.point_list.data_ptr<int32_t>(),
                       splats, s.background.data_ptr<float>(), st.final_T.data_ptr<float>(),
                       st.n_contrib.data_ptr<int32_t>(), grad_color_c.data_ptr<float>(),
                       ptr_or_null<float>(grad_invdepth_c), sg, stream);

  BackwardResult res = allocate_gradients(g, /*zeroed=*/true);  // kernels write visible rows only
  const GaussianGradArrays grads = gradient_arrays(res, arrays.sh_stride);
  cuda::preprocess_backward(P, arrays, grads, st.clamped.data_ptr<uint8_t>(),
                            st.radii.data_ptr<int32_t>(), cam, s.sh_degree, sg, stream);
  return res;
}

at::Tensor mark_visible_cuda(const at::Tensor& means3D, const at::Tensor& viewmatrix) {
  const int64_t P = means3D.size(0);
  at::Tensor visible = at::empty({P}, means3D.options().dtype(at::kBool));
  cuda::mark_visible(P, means3D.data_ptr<float>(), viewmatrix.data_ptr<float>(),
                     visible.data_ptr<bool>(), kDefaultStream);
  return visible;
}

}  // namespace dgr
