"""Differentiable tile-based Gaussian rasterizer with the original 3DGS Python API.

    settings = GaussianRasterizationSettings(image_height, image_width, tanfovx, tanfovy, bg,
                                             scale_modifier, viewmatrix, projmatrix, sh_degree,
                                             campos, prefiltered, debug, antialiasing=False)
    color, radii, invdepth = GaussianRasterizer(settings)(means3D, means2D, opacities, shs=...,
                                                          scales=..., rotations=...)

color is [3, H, W], radii int32 [P] (0 = not rendered), invdepth [1, H, W] (sum of alpha*T/z).
As in the 2024 "3dgs_accel" rasterizer, the DC SH terms may come apart: `dc=` [P, 1, 3] with
`shs=` holding the other coefficients [P, M - 1, 3], which saves concatenating (and, in the
backward pass, splitting) every Gaussian's coefficients each step.
Gradients flow to every differentiable input; the gradient that lands on means2D is
dL/d(projected mean in NDC), which densification reads. With `sh_adam=` (ShAdamStep, CPU) the
backward pass applies torch's fused Adam step to `shs` in place instead of returning its
gradient, which then never exists for all Gaussians at once.
"""
from typing import NamedTuple, Optional

import torch
from torch import nn

from . import _C
from ._validation import check_inputs, check_settings
from .adam import ShAdamStep, adam_matches_torch
from .constants import LOW_PASS_VARIANCE

__all__ = ["GaussianRasterizationSettings", "GaussianRasterizer", "rasterize_gaussians",
           "ShAdamStep", "adam_matches_torch"]


class GaussianRasterizationSettings(NamedTuple):
    image_height: int
    image_width: int
    tanfovx: float  # tan(FoVx / 2)
    tanfovy: float
    bg: torch.Tensor  # [3] background colour
    scale_modifier: float
    viewmatrix: torch.Tensor  # [4, 4] world-to-view, transposed (row-vector convention)
    projmatrix: torch.Tensor  # [4, 4] world-to-clip (full projection), transposed
    sh_degree: int  # active SH degree
    campos: torch.Tensor  # [3] camera centre in world space
    prefiltered: bool
    debug: bool
    antialiasing: bool = False
    # Variance (pixels²) added to each projected covariance's diagonal: the original's constant
    # 0.3. A render at 1/s of a camera's resolution that should match the full-resolution
    # render shrunk by s gives 0.3 / s² (the same filter in full-resolution pixels).
    low_pass_variance: float = LOW_PASS_VARIANCE


def _empty_like(reference: torch.Tensor) -> torch.Tensor:
    return torch.empty(0, dtype=reference.dtype, device=reference.device)


def rasterize_gaussians(means3D, means2D, sh, colors_precomp, opacities, scales, rotations,
                        cov3Ds_precomp, raster_settings, dc=None, sh_adam=None):
    """Functional form of GaussianRasterizer.forward; missing inputs are empty tensors."""
    if dc is None:
        dc = _empty_like(means3D)
    return _RasterizeGaussians.apply(means3D, means2D, sh, colors_precomp, opacities, scales,
                                     rotations, cov3Ds_precomp, raster_settings, dc, sh_adam)


def _forward(s, means3D, sh, dc, colors_precomp, opacities, scales, rotations, cov3Ds_precomp):
    """The extension's forward call, the one place that knows its argument order. Returns
    (num_rendered, color, radii, invdepth, state)."""
    return _C.rasterize_gaussians(
        s.bg, means3D, colors_precomp, opacities, scales, rotations, s.scale_modifier,
        cov3Ds_precomp, s.viewmatrix, s.projmatrix, s.tanfovx, s.tanfovy, s.image_height,
        s.image_width, sh, dc, s.sh_degree, s.campos, s.prefiltered, s.antialiasing,
        s.low_pass_variance, s.debug)


class _RasterizeGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means3D, means2D, sh, colors_precomp, opacities, scales, rotations,
                cov3Ds_precomp, raster_settings, dc, sh_adam):
        s = raster_settings
        num_rendered, color, radii, invdepth, state = _forward(
            s, means3D, sh, dc, colors_precomp, opacities, scales, rotations, cov3Ds_precomp)
        ctx.raster_settings = s
        ctx.num_rendered = num_rendered
        ctx.means2D_shape = means2D.shape
        ctx.sh_adam = sh_adam
        ctx.save_for_backward(means3D, sh, dc, colors_precomp, opacities, scales, rotations,
                              cov3Ds_precomp)
        # The forward state is neither an input nor an output: kept on ctx, so that the
        # backward pass can take it over and free parts of it as soon as it is done with them.
        ctx.state = state
        ctx.mark_non_differentiable(radii)
        # Unused outputs (often invdepth) then arrive in backward as None instead of zeros.
        ctx.set_materialize_grads(False)
        return color, radii, invdepth

    @staticmethod
    def backward(ctx, grad_out_color, _grad_radii, grad_out_invdepth):
        s = ctx.raster_settings
        means3D, sh, dc, colors_precomp, opacities, scales, rotations, cov3Ds_precomp = (
            ctx.saved_tensors)
        state, ctx.state = ctx.state, None
        if state is None:
            raise RuntimeError("the rasterizer's backward pass ran twice on one forward pass; "
                               "it frees the forward state as it goes (retain_graph is not "
                               "supported)")
        H, W = s.image_height, s.image_width
        if grad_out_color is None:
            grad_out_color = torch.zeros(3, H, W, dtype=means3D.dtype, device=means3D.device)
        if grad_out_invdepth is None:
            grad_out_invdepth = _empty_like(means3D)
        # What becomes of the gradient of sh: returned (0), not computed because nothing asks
        # for it (1), or used up by Adam on the spot (2).
        use, moments, hyper = (0 if ctx.needs_input_grad[2] else 1), [], []
        if ctx.sh_adam is not None:
            a = ctx.sh_adam
            a.step.add_(1)  # as torch's step does before its update
            use, moments, hyper = 2, [a.exp_avg, a.exp_avg_sq], a.hyperparameters()
        (d_means2D, d_colors, d_opacities, d_means3D, d_cov3D, d_sh, d_scales, d_rotations,
         d_dc) = _C.rasterize_gaussians_backward(
            s.bg, means3D, colors_precomp, opacities, scales, rotations, s.scale_modifier,
            cov3Ds_precomp, s.viewmatrix, s.projmatrix, s.tanfovx, s.tanfovy,
            grad_out_color.contiguous(), grad_out_invdepth.contiguous(), sh, dc, s.sh_degree,
            s.campos, state, s.antialiasing, s.low_pass_variance, s.debug, use, moments, hyper,
            ctx.needs_input_grad[1])

        def shaped(grad, given):
            # Inputs that were not given arrive as 1-D empty tensors; given ones are 2-D or 3-D.
            return grad.reshape(given.shape) if given.dim() > 1 else None

        means2D_shape = ctx.means2D_shape
        d_means2D = (d_means2D[:, : means2D_shape[-1]].reshape(means2D_shape)
                     if ctx.needs_input_grad[1] else None)
        return (d_means3D, d_means2D, shaped(d_sh, sh) if use == 0 else None,
                shaped(d_colors, colors_precomp), d_opacities.view(opacities.shape),
                shaped(d_scales, scales), shaped(d_rotations, rotations),
                shaped(d_cov3D, cov3Ds_precomp), None, shaped(d_dc, dc), None)


class GaussianRasterizer(nn.Module):
    def __init__(self, raster_settings: GaussianRasterizationSettings):
        super().__init__()
        self.raster_settings = raster_settings

    def markVisible(self, positions: torch.Tensor) -> torch.Tensor:
        """Bool [P]: which points lie in front of the near plane (the renderer's only cull)."""
        s = self.raster_settings
        check_settings(s, positions)
        with torch.no_grad():
            return _C.mark_visible(positions.contiguous(), s.viewmatrix.contiguous(),
                                   s.projmatrix.contiguous())

    def _checked(self, means3D, means2D, opacities, shs, colors_precomp, scales, rotations,
                 cov3D_precomp, dc):
        """(settings, inputs in _forward's order): validated, contiguous, missing = empty."""
        s = check_settings(self.raster_settings, means3D)
        check_inputs(s, means3D, means2D, opacities, shs, colors_precomp, scales, rotations,
                     cov3D_precomp, dc)
        empty = _empty_like(means3D)

        def given(t):
            return empty if t is None else t.contiguous()

        return s, dict(means3D=means3D.contiguous(), sh=given(shs), dc=given(dc),
                       colors_precomp=given(colors_precomp), opacities=opacities.contiguous(),
                       scales=given(scales), rotations=given(rotations),
                       cov3Ds_precomp=given(cov3D_precomp))

    def forward(self, means3D: torch.Tensor, means2D: torch.Tensor, opacities: torch.Tensor,
                shs: Optional[torch.Tensor] = None, colors_precomp: Optional[torch.Tensor] = None,
                scales: Optional[torch.Tensor] = None, rotations: Optional[torch.Tensor] = None,
                cov3D_precomp: Optional[torch.Tensor] = None, dc: Optional[torch.Tensor] = None,
                sh_adam: Optional[ShAdamStep] = None):
        s, t = self._checked(means3D, means2D, opacities, shs, colors_precomp, scales, rotations,
                             cov3D_precomp, dc)
        if sh_adam is not None:
            if dc is None or shs is None or t["sh"].data_ptr() != shs.data_ptr():
                raise ValueError("sh_adam needs dc= apart and a contiguous shs (it is updated "
                                 "in place)")
            if not shs.device.type == "cpu":
                raise ValueError("sh_adam runs on the CPU only")
        return rasterize_gaussians(t["means3D"], means2D, t["sh"], t["colors_precomp"],
                                   t["opacities"], t["scales"], t["rotations"],
                                   t["cov3Ds_precomp"], s, t["dc"], sh_adam)

    def count_tile_entries(self, means3D: torch.Tensor, opacities: torch.Tensor,
                           shs: Optional[torch.Tensor] = None,
                           colors_precomp: Optional[torch.Tensor] = None,
                           scales: Optional[torch.Tensor] = None,
                           rotations: Optional[torch.Tensor] = None,
                           cov3D_precomp: Optional[torch.Tensor] = None,
                           dc: Optional[torch.Tensor] = None) -> int:
        """(tile, Gaussian) entries the forward pass blends for these inputs (the original's
        num_rendered; benchmarks count work with it). Runs one forward pass without autograd."""
        no_means2D = torch.empty_like(means3D)  # no gradient is taken: a placeholder
        s, t = self._checked(means3D, no_means2D, opacities, shs, colors_precomp, scales,
                             rotations, cov3D_precomp, dc)
        with torch.no_grad():
            return int(_forward(s, **t)[0])
