// Raw views of the torch-facing structs, shared by the CPU backend and the CUDA adapter: the
// camera, the per-Gaussian input arrays and the gradient arrays the backends write.
#pragma once

#include <ATen/ATen.h>

#include "math/config.h"
#include "math/gaussian.h"
#include "rasterize_api.h"

namespace dgr {

template <class T>
const T* ptr_or_null(const at::Tensor& t) {
  return t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}
template <class T>
T* mut_ptr_or_null(const at::Tensor& t) {
  return t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

// The matrices are read where they live (host or device); campos_host is a CPU copy of the
// camera position, which the camera holds by value.
inline RasterCamera make_camera(const RasterSettings& s, const at::Tensor& campos_host) {
  RasterCamera cam;
  cam.width = s.image_width;
  cam.height = s.image_height;
  cam.tanfovx = s.tan_fovx;
  cam.tanfovy = s.tan_fovy;
  cam.focal_x = s.image_width / (2.0f * s.tan_fovx);
  cam.focal_y = s.image_height / (2.0f * s.tan_fovy);
  cam.view = s.viewmatrix.data_ptr<float>();
  cam.proj = s.projmatrix.data_ptr<float>();
  cam.campos = load3(campos_host.data_ptr<float>());
  cam.scale_modifier = s.scale_modifier;
  cam.antialiasing = s.antialiasing;
  cam.low_pass = s.low_pass_variance;
  cam.grid_x = (s.image_width + BLOCK_X - 1) / BLOCK_X;
  cam.grid_y = (s.image_height + BLOCK_Y - 1) / BLOCK_Y;
  return cam;
}

inline GaussianArrays gaussian_arrays(const GaussianTensors& g) {
  GaussianArrays a;
  a.means3D = g.means3D.data_ptr<float>();
  a.opacities = ptr_or_null<float>(g.opacities);
  a.sh = ptr_or_null<float>(g.sh);
  a.sh_dc = ptr_or_null<float>(g.sh_dc);
  a.colors = ptr_or_null<float>(g.colors);
  a.scales = ptr_or_null<float>(g.scales);
  a.rotations = ptr_or_null<float>(g.rotations);
  a.cov3D = ptr_or_null<float>(g.cov3D_precomp);
  a.sh_stride = g.sh.numel() > 0 ? g.sh.size(1) * 3 : 0;
  return a;
}

// Gradients for every input that was given (empty tensors for the others), on the device of
// the inputs; zeroed, or left for the backend to write every element (GaussianGradArrays::zero_row).
// sh_tensor false: the gradient of sh is used up inside the backward pass (ShGradient), none here;
// means2D false: no gradient of means2D either (its array is then null).
inline BackwardResult allocate_gradients(const GaussianTensors& g, bool zeroed,
                                         bool sh_tensor = true, bool means2D = true) {
  const int64_t P = g.means3D.size(0);
  const auto opts = g.means3D.options();
  auto like_or_empty = [&](const at::Tensor& t) {
    if (t.numel() == 0) return at::empty({0}, opts);
    return zeroed ? at::zeros_like(t) : at::empty_like(t);
  };
  auto make = [&](at::IntArrayRef shape) { return zeroed ? at::zeros(shape, opts) : at::empty(shape, opts); };
  BackwardResult res;
  res.dL_dmeans2D = means2D ? make({P, 3}) : at::empty({0}, opts);
  res.dL_dmeans3D = make({P, 3});
  res.dL_dopacity = make({P, 1});
  res.dL_dcolors = like_or_empty(g.colors);
  res.dL_dsh = sh_tensor ? like_or_empty(g.sh) : at::empty({0}, opts);
  res.dL_dsh_dc = like_or_empty(g.sh_dc);
  res.dL_dscales = like_or_empty(g.scales);
  res.dL_drotations = like_or_empty(g.rotations);
  res.dL_dcov3D = like_or_empty(g.cov3D_precomp);
  return res;
}

inline GaussianGradArrays gradient_arrays(const BackwardResult& res, int64_t sh_stride) {
  GaussianGradArrays grads;
  grads.means2D = mut_ptr_or_null<float>(res.dL_dmeans2D);
  grads.means3D = res.dL_dmeans3D.data_ptr<float>();
  grads.opacities = res.dL_dopacity.data_ptr<float>();
  grads.colors = mut_ptr_or_null<float>(res.dL_dcolors);
  grads.sh = mut_ptr_or_null<float>(res.dL_dsh);
  grads.sh_dc = mut_ptr_or_null<float>(res.dL_dsh_dc);
  grads.scales = mut_ptr_or_null<float>(res.dL_dscales);
  grads.rotations = mut_ptr_or_null<float>(res.dL_drotations);
  grads.cov3D = mut_ptr_or_null<float>(res.dL_dcov3D);
  grads.sh_stride = sh_stride;
  return grads;
}

}  // namespace dgr
