// The torch-facing API of the rasterizer: arguments as tensors, one implementation per device.
// The Python layer validates every argument before it gets here (ValueError naming it); the
// backends only re-check what would otherwise corrupt memory.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace dgr {

struct RasterSettings {
  at::Tensor background;   // [3]
  at::Tensor viewmatrix;   // [4, 4] world->view, transposed
  at::Tensor projmatrix;   // [4, 4] world->clip, transposed
  at::Tensor campos;       // [3]
  float scale_modifier;
  float tan_fovx, tan_fovy;
  int image_height, image_width;
  int sh_degree;
  bool prefiltered;
  bool antialiasing;
  bool debug;
};

// Per-Gaussian inputs; optional ones are empty tensors (numel 0) when not given.
struct GaussianTensors {
  at::Tensor means3D;        // [P, 3]
  at::Tensor opacities;      // [P, 1]
  at::Tensor sh;             // [P, M, 3]; [P, M - 1, 3] when sh_dc is given; or empty
  at::Tensor sh_dc;          // [P, 1, 3] DC terms apart from sh (the 2024 `dc` argument) or empty
  at::Tensor colors;         // [P, 3] or empty
  at::Tensor scales;         // [P, 3] or empty
  at::Tensor rotations;      // [P, 4] or empty
  at::Tensor cov3D_precomp;  // [P, 6] or empty
};

// What the forward pass keeps for the backward pass (the original's geometry, binning and image
// buffers), as named tensors so that Python can hold them between the two calls.
struct ForwardState {
  at::Tensor splats;         // [P, SPLAT_FLOATS] float: what blending reads of each Gaussian
  at::Tensor clamped;        // [P, 3] uint8: colour channels clamped at 0 by the SH evaluation
  at::Tensor entry_offsets;  // [P + 1] int64: Gaussian g owns entries [off[g], off[g+1])
  at::Tensor entry_slots;    // [N] int32: position in point_list of each Gaussian's entries
  at::Tensor point_list;     // [N] int32: Gaussian ids sorted by (tile, depth)
  at::Tensor tile_ranges;    // [tiles + 1] int64: tile t blends point_list[r[t], r[t+1])
  at::Tensor final_T;        // [H, W] float: transmittance left after blending
  at::Tensor n_contrib;      // [H, W] int32: 1-based list position of the last contributor
  at::Tensor radii;          // [P] int32: 0 = culled (the forward's radii output)

  std::vector<at::Tensor> to_list() const;
  static ForwardState from_list(const std::vector<at::Tensor>& list);
};

struct ForwardResult {
  int64_t num_rendered;  // tile entries after binning
  at::Tensor color;      // [3, H, W]
  at::Tensor radii;      // [P] int32
  at::Tensor invdepth;   // [1, H, W]
  ForwardState state;
};

struct BackwardResult {
  at::Tensor dL_dmeans2D;    // [P, 3] (z = 0), NDC units
  at::Tensor dL_dcolors;     // [P, 3] or empty
  at::Tensor dL_dopacity;    // [P, 1]
  at::Tensor dL_dmeans3D;    // [P, 3]
  at::Tensor dL_dcov3D;      // [P, 6] or empty
  at::Tensor dL_dsh;         // shaped as sh, or empty
  at::Tensor dL_dsh_dc;      // shaped as sh_dc, or empty
  at::Tensor dL_dscales;     // [P, 3] or empty
  at::Tensor dL_drotations;  // [P, 4] or empty
};

ForwardResult rasterize_forward_cpu(const RasterSettings& s, const GaussianTensors& g);
BackwardResult rasterize_backward_cpu(const RasterSettings& s, const GaussianTensors& g,
                                      const ForwardState& state, const at::Tensor& grad_color,
                                      const at::Tensor& grad_invdepth);
at::Tensor mark_visible_cpu(const at::Tensor& means3D, const at::Tensor& viewmatrix);

#ifdef DGR_WITH_CUDA
// cuda/rasterize_cuda.cpp: the same contract on CUDA tensors.
ForwardResult rasterize_forward_cuda(const RasterSettings& s, const GaussianTensors& g);
BackwardResult rasterize_backward_cuda(const RasterSettings& s, const GaussianTensors& g,
                                       const ForwardState& state, const at::Tensor& grad_color,
                                       const at::Tensor& grad_invdepth);
at::Tensor mark_visible_cuda(const at::Tensor& means3D, const at::Tensor& viewmatrix);
#endif

}  // namespace dgr
