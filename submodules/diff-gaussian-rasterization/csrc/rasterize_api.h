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
  float low_pass_variance;  // pixels^2 added to each 2D covariance's diagonal (0.3 by default)
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
// buffers), as named tensors so that Python can hold them between the two calls. Each backend
// reads only the state its own forward wrote; where their layouts differ, both are given.
struct ForwardState {
  at::Tensor splats;         // [P, SPLAT_FLOATS] float: what blending reads of each Gaussian
  at::Tensor clamped;        // [P, 3] uint8: colour channels clamped at 0 by the SH evaluation
  // CPU: [P + 1] int64, Gaussian g owns entries [off[g], off[g+1]). CUDA: empty (its backward
  // accumulates per Gaussian with atomics and needs no per-entry bookkeeping).
  at::Tensor entry_offsets;
  at::Tensor entry_slots;    // CPU: [N] int32, position in point_list of each entry. CUDA: empty
  at::Tensor point_list;     // [N] int32: Gaussian ids sorted by (tile, depth)
  // CPU: [tiles + 1] int64 offsets, tile t blends point_list[r[t], r[t+1]).
  // CUDA: [tiles, 2] int32 (start, end) pairs, as the original's `ranges`.
  at::Tensor tile_ranges;
  at::Tensor final_T;        // [H, W] float: transmittance left after blending
  at::Tensor n_contrib;      // [H, W] int32: 1-based list position of the last contributor
  at::Tensor radii;          // [P] int32: 0 = culled (the forward's radii output)

  // The tuple Python holds between forward and backward (both backends, same order).
  std::vector<at::Tensor> to_list() const {
    return {splats, clamped, entry_offsets, entry_slots, point_list,
            tile_ranges, final_T, n_contrib, radii};
  }
  static ForwardState from_list(const std::vector<at::Tensor>& l) {
    TORCH_CHECK(l.size() == 9, "rasterizer: the saved forward state has ", l.size(),
                " tensors, expected 9");
    return {l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8]};
  }
};

struct ForwardResult {
  int64_t num_rendered;  // tile entries after binning
  at::Tensor color;      // [3, H, W]
  at::Tensor radii;      // [P] int32
  at::Tensor invdepth;   // [1, H, W]
  ForwardState state;
};

struct BackwardResult {
  at::Tensor dL_dmeans2D;    // [P, 3] (z = 0), NDC units; empty when not requested
  at::Tensor dL_dcolors;     // [P, 3] or empty
  at::Tensor dL_dopacity;    // [P, 1]
  at::Tensor dL_dmeans3D;    // [P, 3]
  at::Tensor dL_dcov3D;      // [P, 6] or empty
  at::Tensor dL_dsh;         // shaped as sh, or empty
  at::Tensor dL_dsh_dc;      // shaped as sh_dc, or empty
  at::Tensor dL_dscales;     // [P, 3] or empty
  at::Tensor dL_drotations;  // [P, 4] or empty
};

// What the backward pass does with the gradient of `sh` (the coefficients after the DC term,
// which must then come apart in sh_dc).
enum class ShGradientUse {
  kTensor,   // returned as dL_dsh
  kDiscard,  // not wanted (no optimizer step will read it): never stored
  kAdam,     // torch's fused Adam step applied to each row as soon as it is known (CPU only)
};

struct ShGradient {
  ShGradientUse use = ShGradientUse::kTensor;
  // kAdam: `sh` itself is updated in place, with its Adam moments (shaped as sh) ...
  at::Tensor exp_avg, exp_avg_sq;
  // ... the group's hyperparameters, this step's number (after its increment) ...
  double lr = 0, beta1 = 0, beta2 = 0, eps = 0, step = 0;
  // ... and torch's float vector width, which decides the rounding of a few elements (cpu/adam.h).
  int64_t torch_lanes = 8;
  // Only the rows of Gaussians drawn in this view (radius > 0), the others untouched: the
  // original's sparse_adam (then torch's arithmetic is not the reference).
  bool visible_only = false;
};

// Which gradients a backward pass makes beyond the defaults (CPU; CUDA makes all).
struct GradientRequest {
  ShGradient sh;
  bool means2D = true;  // false: nothing reads dL/d(means2D) (no densification statistics)
};

ForwardResult rasterize_forward_cpu(const RasterSettings& s, const GaussianTensors& g);
BackwardResult rasterize_backward_cpu(const RasterSettings& s, const GaussianTensors& g,
                                      const ForwardState& state, const at::Tensor& grad_color,
                                      const at::Tensor& grad_invdepth,
                                      const GradientRequest& request = GradientRequest());
// cpu/rasterize_cpu.cpp: ShGradient::kAdam's arithmetic over a whole tensor (p, m, v updated in
// place from grad), for the check against torch and the tests.
void adam_step_cpu(at::Tensor& param, const at::Tensor& grad, const ShGradient& adam);
// The same arithmetic on the rows of param ([N, ...]) whose `rows` flag ([N] bool) is set.
void adam_rows_cpu(at::Tensor& param, const at::Tensor& grad, const ShGradient& adam,
                   const at::Tensor& rows);
at::Tensor mark_visible_cpu(const at::Tensor& means3D, const at::Tensor& viewmatrix);
// cpu/mcmc_noise.cpp: 3DGS-MCMC's position noise added to xyz in place, from raw parameters,
// with ε drawn from the counter-based stream `key` (draw 3i + j is component j of Gaussian i).
struct NoiseKey {
  uint32_t words[2];
};
void mcmc_position_noise_cpu(at::Tensor& xyz, const at::Tensor& log_scales,
                             const at::Tensor& quats, const at::Tensor& opacity_logits,
                             const NoiseKey& key, double scale, double gate_sharpness,
                             double gate_centre);
// The ε that mcmc_position_noise_cpu draws for n Gaussians with `key`, [n, 3] (for tests).
at::Tensor mcmc_noise_draws_cpu(int64_t n, const NoiseKey& key);
// cpu/normalize_rows.cpp: x / max(|x|, 1e-12) row by row ([N, K] float32, contiguous), returning
// (out, 1/max(|x|, 1e-12) [N, 1]), and its backward pass from those two.
std::tuple<at::Tensor, at::Tensor> normalize_rows_cpu(const at::Tensor& x);
at::Tensor normalize_rows_backward_cpu(const at::Tensor& grad, const at::Tensor& out,
                                       const at::Tensor& inv_norm);
// Which vector code path of cpu/simd.h this build compiled: "avx512", "avx2" or "generic".
const char* cpu_instruction_set();

#ifdef DGR_WITH_CUDA
// cuda/rasterize_cuda.cpp: the same contract on CUDA tensors.
ForwardResult rasterize_forward_cuda(const RasterSettings& s, const GaussianTensors& g);
BackwardResult rasterize_backward_cuda(const RasterSettings& s, const GaussianTensors& g,
                                       const ForwardState& state, const at::Tensor& grad_color,
                                       const at::Tensor& grad_invdepth);
at::Tensor mark_visible_cuda(const at::Tensor& means3D, const at::Tensor& viewmatrix);
#endif

}  // namespace dgr
