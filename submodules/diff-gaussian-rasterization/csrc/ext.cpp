// Python bindings: the original's entry points (rasterize_gaussians, rasterize_gaussians_backward,
// mark_visible) with the original's argument order, dispatched by device.
#include <torch/extension.h>

#include "math/blend.h"
#include "math/config.h"
#include "math/sh.h"
#include "rasterize_api.h"

namespace {

using dgr::GaussianTensors;
using dgr::RasterSettings;

#ifdef DGR_WITH_CUDA
constexpr bool kHasCuda = true;
#else
constexpr bool kHasCuda = false;
#endif

// The Python layer validates shapes and dtypes with messages naming each argument; this is the
// last line of defence against anything that would read out of bounds.
// `reference`: the tensor whose device the others must share (named in the error).
void check_float(const at::Tensor& t, const char* name, const at::Device& device,
                 const char* reference = "means3D") {
  if (t.numel() == 0) return;
  TORCH_CHECK_VALUE(t.device() == device, name, " is on ", t.device(), " but ", reference,
                    " is on ", device);
  TORCH_CHECK_VALUE(device.is_cpu() || kHasCuda, name, " is a CUDA tensor, but this build has "
                    "no CUDA backend");
  TORCH_CHECK_VALUE(t.scalar_type() == at::kFloat, name, " must be float32");
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

RasterSettings make_settings(const at::Tensor& background, const at::Tensor& viewmatrix,
                             const at::Tensor& projmatrix, const at::Tensor& campos,
                             float scale_modifier, float tan_fovx, float tan_fovy,
                             int image_height, int image_width, int sh_degree, bool prefiltered,
                             bool antialiasing, float low_pass_variance, bool debug,
                             const at::Device& device) {
  check_float(background, "bg", device);
  check_float(viewmatrix, "viewmatrix", device);
  check_float(projmatrix, "projmatrix", device);
  check_float(campos, "campos", device);
  TORCH_CHECK_VALUE(background.numel() == 3, "bg must have 3 elements");
  TORCH_CHECK_VALUE(viewmatrix.numel() == 16, "viewmatrix must be 4x4");
  TORCH_CHECK_VALUE(projmatrix.numel() == 16, "projmatrix must be 4x4");
  TORCH_CHECK_VALUE(campos.numel() == 3, "campos must have 3 elements");
  TORCH_CHECK_VALUE(image_height > 0 && image_width > 0, "image size must be positive");
  // The conic's determinant floor lp (a + c) - lp^2 is positive only for lp > 0.
  TORCH_CHECK_VALUE(low_pass_variance > 0.0f, "low_pass_variance must be positive");
  TORCH_CHECK_VALUE(sh_degree >= 0 && sh_degree <= dgr::MAX_SH_DEGREE, "sh_degree must be 0..",
                    dgr::MAX_SH_DEGREE);
  return {background, viewmatrix, projmatrix, campos, scale_modifier, tan_fovx, tan_fovy,
          image_height, image_width, sh_degree, prefiltered, antialiasing, low_pass_variance,
          debug};
}

GaussianTensors make_gaussians(const at::Tensor& means3D, const at::Tensor& opacities,
                               const at::Tensor& sh, const at::Tensor& sh_dc,
                               const at::Tensor& colors,
                               const at::Tensor& scales, const at::Tensor& rotations,
                               const at::Tensor& cov3D_precomp, int sh_degree) {
  const int64_t P = means3D.size(0);
  const at::Device device = means3D.device();
  check_float(means3D, "means3D", device);
  check_float(opacities, "opacities", device);
  check_float(sh, "shs", device);
  check_float(sh_dc, "dc", device);
  check_float(colors, "colors_precomp", device);
  check_float(scales, "scales", device);
  check_float(rotations, "rotations", device);
  check_float(cov3D_precomp, "cov3D_precomp", device);
  TORCH_CHECK_VALUE(means3D.dim() == 2 && means3D.size(1) == 3, "means3D must be [P, 3]");
  TORCH_CHECK_VALUE(opacities.numel() == P, "opacities must have P elements");
  const bool has_sh = sh.numel() > 0 || sh_dc.numel() > 0;
  TORCH_CHECK_VALUE(P == 0 || has_sh != (colors.numel() > 0),
                    "give exactly one of shs and colors_precomp");
  // With the DC terms apart, sh holds the other coefficients (possibly none at degree 0).
  const int64_t dc_coeffs = sh_dc.numel() > 0 ? 1 : 0;
  if (dc_coeffs) {
    TORCH_CHECK_VALUE(sh_dc.dim() == 3 && sh_dc.size(0) == P && sh_dc.size(1) == 1 &&
                          sh_dc.size(2) == 3, "dc must be [P, 1, 3]");
  }
  if (has_sh) {
    const int64_t coeffs = dc_coeffs + (sh.numel() > 0 ? sh.size(1) : 0);
    TORCH_CHECK_VALUE(sh.numel() == 0 || (sh.dim() == 3 && sh.size(0) == P && sh.size(2) == 3),
                      "shs must be [P, M, 3]");
    TORCH_CHECK_VALUE(coeffs >= (sh_degree + 1) * (sh_degree + 1),
                      "shs (with dc) must hold M >= (sh_degree + 1)^2 coefficients");
  }
  if (colors.numel() > 0) TORCH_CHECK_VALUE(colors.numel() == 3 * P, "colors_precomp must be [P, 3]");
  if (cov3D_precomp.numel() > 0) {
    TORCH_CHECK_VALUE(cov3D_precomp.numel() == 6 * P, "cov3D_precomp must be [P, 6]");
  } else if (P > 0) {
    TORCH_CHECK_VALUE(scales.numel() == 3 * P && rotations.numel() == 4 * P,
                      "scales must be [P, 3] and rotations [P, 4]");
  }
  return {means3D, opacities, sh, sh_dc, colors, scales, rotations, cov3D_precomp};
}

// The backward pass's use of the gradient of sh (rasterize_api.h, ShGradient): 0 tensor,
// 1 discard, 2 Adam with moments [exp_avg, exp_avg_sq] and hyperparameters [lr, beta1, beta2,
// eps, step, torch_lanes, visible_only].
// `param`: the tensor Adam updates (sh, in the backward pass).
dgr::ShGradient make_sh_gradient(int use, const std::vector<at::Tensor>& moments,
                                 const std::vector<double>& hyper, const at::Tensor& param) {
  TORCH_CHECK_VALUE(use >= 0 && use <= 2, "sh_gradient_use must be 0, 1 or 2");
  dgr::ShGradient out;
  out.use = static_cast<dgr::ShGradientUse>(use);
  if (out.use != dgr::ShGradientUse::kAdam) return out;
  TORCH_CHECK_VALUE(moments.size() == 2 && hyper.size() == 7,
                    "the Adam update needs [exp_avg, exp_avg_sq] and 7 hyperparameters");
  TORCH_CHECK_VALUE(param.device().is_cpu(), "the Adam update runs on the CPU only");
  for (const at::Tensor& moment : moments) {
    check_float(moment, "exp_avg", param.device(), "the parameter");
    TORCH_CHECK_VALUE(moment.sizes() == param.sizes(), "the Adam moments must be shaped as "
                      "their parameter");
  }
  out.exp_avg = moments[0], out.exp_avg_sq = moments[1];
  out.lr = hyper[0], out.beta1 = hyper[1], out.beta2 = hyper[2], out.eps = hyper[3];
  out.step = hyper[4];
  out.torch_lanes = static_cast<int64_t>(hyper[5]);
  out.visible_only = hyper[6] != 0;
  TORCH_CHECK_VALUE(out.torch_lanes >= 1, "torch_lanes must be positive");
  return out;
}

py::tuple rasterize_gaussians(const at::Tensor& background, const at::Tensor& means3D,
                              const at::Tensor& colors, const at::Tensor& opacity,
                              const at::Tensor& scales, const at::Tensor& rotations,
                              float scale_modifier, const at::Tensor& cov3D_precomp,
                              const at::Tensor& viewmatrix, const at::Tensor& projmatrix,
                              float tan_fovx, float tan_fovy, int image_height, int image_width,
                              const at::Tensor& sh, const at::Tensor& sh_dc, int degree,
                              const at::Tensor& campos, bool prefiltered, bool antialiasing,
                              float low_pass_variance, bool debug) {
  const RasterSettings s =
      make_settings(background, viewmatrix, projmatrix, campos, scale_modifier, tan_fovx,
                    tan_fovy, image_height, image_width, degree, prefiltered, antialiasing,
                    low_pass_variance, debug, means3D.device());
  const GaussianTensors g =
      make_gaussians(means3D, opacity, sh, sh_dc, colors, scales, rotations, cov3D_precomp, degree);
#ifdef DGR_WITH_CUDA
  dgr::ForwardResult r = means3D.is_cuda() ? dgr::rasterize_forward_cuda(s, g)
                                           : dgr::rasterize_forward_cpu(s, g);
#else
  dgr::ForwardResult r = dgr::rasterize_forward_cpu(s, g);
#endif
  return py::make_tuple(r.num_rendered, r.color, r.radii, r.invdepth, r.state.to_list());
}

py::tuple rasterize_gaussians_backward(
    const at::Tensor& background, const at::Tensor& means3D, const at::Tensor& colors,
    const at::Tensor& opacity, const at::Tensor& scales, const at::Tensor& rotations,
    float scale_modifier, const at::Tensor& cov3D_precomp, const at::Tensor& viewmatrix,
    const at::Tensor& projmatrix, float tan_fovx, float tan_fovy, const at::Tensor& grad_color,
    const at::Tensor& grad_invdepth, const at::Tensor& sh, const at::Tensor& sh_dc, int degree,
    const at::Tensor& campos,
    const std::vector<at::Tensor>& state, bool antialiasing, float low_pass_variance, bool debug,
    int sh_gradient_use,
    const std::vector<at::Tensor>& sh_adam_moments, const std::vector<double>& sh_adam_hyper,
    bool means2D_gradient) {
  const int image_height = grad_color.size(1), image_width = grad_color.size(2);
  const RasterSettings s =
      make_settings(background, viewmatrix, projmatrix, campos, scale_modifier, tan_fovx,
                    tan_fovy, image_height, image_width, degree, false, antialiasing,
                    low_pass_variance, debug, means3D.device());
  const GaussianTensors g =
      make_gaussians(means3D, opacity, sh, sh_dc, colors, scales, rotations, cov3D_precomp, degree);
  check_float(grad_color, "grad_out_color", means3D.device());
  check_float(grad_invdepth, "grad_out_invdepth", means3D.device());
  TORCH_CHECK_VALUE(grad_color.dim() == 3 && grad_color.size(0) == 3, "grad_out_color must be [3, H, W]");
  TORCH_CHECK_VALUE(grad_invdepth.numel() == 0 || grad_invdepth.numel() == image_height * image_width,
                    "grad_out_invdepth must be [1, H, W]");
  const dgr::ForwardState st = dgr::ForwardState::from_list(state);
  TORCH_CHECK_VALUE(st.final_T.size(0) == image_height && st.final_T.size(1) == image_width,
                    "grad_out_color does not match the rendered image size");
  dgr::GradientRequest request;
  request.sh = make_sh_gradient(sh_gradient_use, sh_adam_moments, sh_adam_hyper, sh);
  request.means2D = means2D_gradient;
  if (request.sh.use == dgr::ShGradientUse::kAdam && sh.numel() > 0) {
    TORCH_CHECK_VALUE(sh_dc.numel() > 0, "the Adam update of shs needs the DC terms apart (dc)");
    TORCH_CHECK_VALUE(sh.size(1) <= dgr::MAX_SH_COEFFS, "shs holds more coefficients than SH "
                      "degree ", dgr::MAX_SH_DEGREE, " has");
  }
#ifdef DGR_WITH_CUDA
  // CUDA makes every gradient (one not requested is simply dropped); kAdam is refused above.
  dgr::BackwardResult r =
      means3D.is_cuda()
          ? dgr::rasterize_backward_cuda(s, g, st, grad_color, grad_invdepth)
          : dgr::rasterize_backward_cpu(s, g, st, grad_color, grad_invdepth, request);
#else
  dgr::BackwardResult r =
      dgr::rasterize_backward_cpu(s, g, st, grad_color, grad_invdepth, request);
#endif
  return py::make_tuple(r.dL_dmeans2D, r.dL_dcolors, r.dL_dopacity, r.dL_dmeans3D, r.dL_dcov3D,
                        r.dL_dsh, r.dL_dscales, r.dL_drotations, r.dL_dsh_dc);
}

at::Tensor mark_visible(const at::Tensor& means3D, const at::Tensor& viewmatrix,
                        const at::Tensor& projmatrix) {
  check_float(means3D, "positions", means3D.device());
  check_float(viewmatrix, "viewmatrix", means3D.device());
  TORCH_CHECK_VALUE(means3D.dim() == 2 && means3D.size(1) == 3, "positions must be [P, 3]");
  (void)projmatrix;  // the original's signature; only the near plane decides visibility
#ifdef DGR_WITH_CUDA
  if (means3D.is_cuda()) return dgr::mark_visible_cuda(means3D, viewmatrix);
#endif
  return dgr::mark_visible_cpu(means3D, viewmatrix);
}

py::dict constants() {
  py::dict d;
  d["NUM_CHANNELS"] = dgr::NUM_CHANNELS;
  d["BLOCK_X"] = dgr::BLOCK_X;
  d["BLOCK_Y"] = dgr::BLOCK_Y;
  d["NEAR_PLANE"] = dgr::NEAR_PLANE;
  d["FRUSTUM_GUARD_BAND"] = dgr::FRUSTUM_GUARD_BAND;
  d["LOW_PASS_VARIANCE"] = dgr::LOW_PASS_VARIANCE;
  d["ANTIALIAS_MIN_DET_RATIO"] = dgr::ANTIALIAS_MIN_DET_RATIO;
  d["EIGEN_MIN_DISCRIMINANT"] = dgr::EIGEN_MIN_DISCRIMINANT;
  d["RADIUS_SIGMAS"] = dgr::RADIUS_SIGMAS;
  d["ALPHA_MIN"] = dgr::ALPHA_MIN;
  d["ALPHA_MAX"] = dgr::ALPHA_MAX;
  d["TRANSMITTANCE_MIN"] = dgr::TRANSMITTANCE_MIN;
  d["PROJECTION_W_EPS"] = dgr::PROJECTION_W_EPS;
  d["MAX_SH_DEGREE"] = dgr::MAX_SH_DEGREE;
  d["SH_COLOR_OFFSET"] = dgr::SH_COLOR_OFFSET;
  d["SH_C0"] = dgr::SH_C0;
  d["SH_C1"] = dgr::SH_C1;
  constexpr dgr::ShFactors sh = dgr::sh_factors();
  d["SH_C2"] = std::vector<float>(sh.c2, sh.c2 + 5);
  d["SH_C3"] = std::vector<float>(sh.c3, sh.c3 + 7);
  return d;
}

// Exposed for tests of the exact exp used in blending.
at::Tensor exp_nonpositive(const at::Tensor& x) {
  check_float(x, "x", at::Device(at::kCPU));
  at::Tensor y = at::empty_like(x);
  const float* in = x.data_ptr<float>();
  float* out = y.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); i++) out[i] = dgr::exp_nonpositive(in[i]);
  return y;
}

// 3DGS-MCMC's position noise (cpu/mcmc_noise.cpp), in place on xyz; CPU only (on CUDA the
// caller uses torch operations). key: two 32-bit words choosing the step's draws.
dgr::NoiseKey noise_key(const std::vector<int64_t>& key) {
  TORCH_CHECK_VALUE(key.size() == 2 && key[0] >= 0 && key[1] >= 0 && key[0] < (1LL << 32) &&
                        key[1] < (1LL << 32),
                    "key must be two integers in [0, 2^32)");
  return {{(uint32_t)key[0], (uint32_t)key[1]}};
}

void mcmc_position_noise_(at::Tensor& xyz, const at::Tensor& log_scales, const at::Tensor& quats,
                          const at::Tensor& opacity_logits, const std::vector<int64_t>& key,
                          double scale, double gate_sharpness, double gate_centre) {
  const at::Device cpu(at::kCPU);
  TORCH_CHECK_VALUE(xyz.device().is_cpu(), "xyz must be a CPU tensor");
  check_float(xyz, "xyz", cpu);
  check_float(log_scales, "log_scales", cpu, "xyz");
  check_float(quats, "quats", cpu, "xyz");
  check_float(opacity_logits, "opacity_logits", cpu, "xyz");
  TORCH_CHECK_VALUE(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be [P, 3]");
  const int64_t P = xyz.size(0);
  TORCH_CHECK_VALUE(log_scales.numel() == 3 * P, "log_scales must be [P, 3]");
  TORCH_CHECK_VALUE(quats.numel() == 4 * P, "quats must be [P, 4]");
  TORCH_CHECK_VALUE(opacity_logits.numel() == P, "opacity_logits must have P elements");
  dgr::mcmc_position_noise_cpu(xyz, log_scales, quats, opacity_logits, noise_key(key), scale,
                               gate_sharpness, gate_centre);
}

at::Tensor mcmc_noise_draws(int64_t n, const std::vector<int64_t>& key) {
  TORCH_CHECK_VALUE(n >= 0, "n must be non-negative");
  return dgr::mcmc_noise_draws_cpu(n, noise_key(key));
}

// Rows scaled to unit length and the backward pass (cpu/normalize_rows.cpp); CPU only (on CUDA
// the caller uses torch operations).
void check_rows(const at::Tensor& t, const char* name, const char* reference = "x") {
  const at::Device cpu(at::kCPU);
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be a CPU tensor");
  check_float(t, name, cpu, reference);
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(1) > 0, name, " must be [N, K] with K > 0");
}

std::tuple<at::Tensor, at::Tensor> normalize_rows(const at::Tensor& x) {
  check_rows(x, "x");
  return dgr::normalize_rows_cpu(x);
}

at::Tensor normalize_rows_backward(const at::Tensor& grad, const at::Tensor& out,
                                   const at::Tensor& inv_norm) {
  check_rows(out, "out");
  check_rows(grad, "grad", "out");
  check_rows(inv_norm, "inv_norm", "out");
  TORCH_CHECK_VALUE(grad.sizes() == out.sizes() && inv_norm.size(0) == out.size(0) &&
                        inv_norm.size(1) == 1,
                    "grad must be shaped as out, inv_norm [N, 1]");
  return dgr::normalize_rows_backward_cpu(grad, out, inv_norm);
}

// A standalone Adam step's arguments, checked: param and grad float32 CPU tensors of one shape,
// the moments and hyperparameters as make_sh_gradient's.
dgr::ShGradient checked_adam(const at::Tensor& param, const at::Tensor& grad,
                             const std::vector<at::Tensor>& moments,
                             const std::vector<double>& hyper) {
  const at::Device cpu(at::kCPU);
  check_float(param, "param", cpu, "param");
  check_float(grad, "grad", cpu, "param");
  TORCH_CHECK_VALUE(param.device().is_cpu() && grad.sizes() == param.sizes(),
                    "param and grad must be CPU tensors of one shape");
  return make_sh_gradient(2, moments, hyper, param);
}

// ShGradient::kAdam's arithmetic over a whole tensor, in place (the check against torch's
// fused Adam, and tests).
void adam_step_(at::Tensor& param, const at::Tensor& grad, const std::vector<at::Tensor>& moments,
                const std::vector<double>& hyper) {
  dgr::adam_step_cpu(param, grad, checked_adam(param, grad, moments, hyper));
}

// Adam on the flagged rows of param only (sparse_adam's optimizer step for the groups the
// backward pass does not update).
void adam_rows_(at::Tensor& param, const at::Tensor& grad, const std::vector<at::Tensor>& moments,
                const std::vector<double>& hyper, const at::Tensor& rows) {
  const dgr::ShGradient adam = checked_adam(param, grad, moments, hyper);
  TORCH_CHECK_VALUE(param.dim() >= 1 && rows.device().is_cpu() && rows.scalar_type() == at::kBool &&
                        rows.is_contiguous() && rows.numel() == param.size(0),
                    "rows must be a contiguous bool CPU tensor with one flag per row of param");
  dgr::adam_rows_cpu(param, grad, adam, rows);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rasterize_gaussians", &rasterize_gaussians);
  m.def("rasterize_gaussians_backward", &rasterize_gaussians_backward);
  m.def("mark_visible", &mark_visible);
  m.def("constants", &constants);
  m.def("exp_nonpositive", &exp_nonpositive);
  m.def("mcmc_position_noise_", &mcmc_position_noise_);
  m.def("mcmc_noise_draws", &mcmc_noise_draws);
  m.def("normalize_rows", &normalize_rows);
  m.def("normalize_rows_backward", &normalize_rows_backward);
  m.def("adam_step_", &adam_step_);
  m.def("adam_rows_", &adam_rows_);
  m.attr("has_cuda") = kHasCuda;
  m.attr("cpu_instruction_set") = dgr::cpu_instruction_set();
}
