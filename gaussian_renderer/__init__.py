"""render(): one view of a GaussianModel through our rasterizer, as a typed result."""
import math
from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
from diff_gaussian_rasterization import GaussianRasterizationSettings, GaussianRasterizer, ShAdamStep
from diff_gaussian_rasterization.constants import LOW_PASS_VARIANCE

from utils.sh_utils import eval_sh


@dataclass
class RenderResult:
    render: torch.Tensor  # [3, H, W] colour (not clamped, as the original's training render)
    # [N, 3] receives dL/d(projected mean) in NDC units (x, y) (not with viewspace_gradient off)
    viewspace_points: torch.Tensor
    visibility_filter: torch.Tensor  # [N] bool, radii > 0
    radii: torch.Tensor  # [N] int, screen radius in pixels (0 = not drawn)
    depth: torch.Tensor  # [1, H, W] alpha-blended inverse depth

    def __getitem__(self, key):
        """Dict-style access (`out["render"]`) for code written against the original."""
        return getattr(self, key)


def raster_settings(camera, sh_degree, bg_color, pipe, scaling_modifier=1.0):
    # A view at 1/s of its camera's resolution (coarse-to-fine training) low-passes with the
    # original's 0.3 px² of the full-resolution image, 0.3 / s² of its own pixels: its render is
    # then the full-resolution render sampled coarser, and Gaussians fitted at one level keep
    # their footprint and brightness at the next. With 0.3 of the coarse pixels every small
    # Gaussian would be drawn s² times larger in area at level s than at full resolution.
    # Camera objects from elsewhere (the original's MiniCam) have no factor: full resolution.
    low_pass = LOW_PASS_VARIANCE / getattr(camera, "resolution_factor", 1) ** 2
    return GaussianRasterizationSettings(
        image_height=int(camera.image_height), image_width=int(camera.image_width),
        tanfovx=math.tan(camera.FoVx * 0.5), tanfovy=math.tan(camera.FoVy * 0.5),
        bg=bg_color, scale_modifier=scaling_modifier,
        viewmatrix=camera.world_view_transform, projmatrix=camera.full_proj_transform,
        sh_degree=sh_degree, campos=camera.camera_center, prefiltered=False,
        debug=pipe.debug, antialiasing=pipe.antialiasing, low_pass_variance=low_pass)


class ShRestUse(NamedTuple):
    """What a training render's backward pass does with the gradient of f_rest: makes it
    (`gradient`) and leaves it to the optimizer step, or applies `adam` (GaussianModel.
    sh_rest_adam) to f_rest with it on the spot, leaving none; `gradient` False: makes none,
    because no optimizer step will read it."""
    gradient: bool = True
    adam: Optional[ShAdamStep] = None


@dataclass(frozen=True)
class RenderOptions:
    """scaling_modifier, override_color: the original's. use_trained_exp: apply the camera's
    exposure (--train_test_exp) to the image, when the model has one for it. sh_rest: see
    ShRestUse. viewspace_gradient: whether the result's viewspace_points receive
    dL/d(projected mean) (what densification reads; MCMC reads none)."""
    scaling_modifier: float = 1.0
    override_color: Optional[torch.Tensor] = None
    use_trained_exp: bool = False
    sh_rest: ShRestUse = ShRestUse()
    viewspace_gradient: bool = True


def render(viewpoint_camera, pc, pipe, bg_color: torch.Tensor, scaling_modifier=1.0,
           override_color=None, use_trained_exp=False) -> RenderResult:
    """The original's call (RenderOptions says what the options do)."""
    return render_with(viewpoint_camera, pc, pipe, bg_color,
                       RenderOptions(scaling_modifier, override_color, use_trained_exp))


def render_with(viewpoint_camera, pc, pipe, bg_color: torch.Tensor,
                options: RenderOptions = RenderOptions()) -> RenderResult:
    scaling_modifier, override_color = options.scaling_modifier, options.override_color
    # A zero tensor whose .grad receives the screen-space mean gradient: the rasterizer never
    # reads its values, only returns dL/d(means2D) through it (densification statistics). A
    # leaf gets its .grad without the original's `+ 0` and retain_grad (one [N, 3] copy less).
    if torch.is_grad_enabled() and options.viewspace_gradient:
        screenspace_points = torch.zeros_like(pc.get_xyz, requires_grad=True)
    else:  # one zero row seen N times: nothing [N, 3] is allocated, and no gradient made
        screenspace_points = pc.get_xyz.new_zeros(1, 3).expand(pc.num_points, 3)
    rasterizer = GaussianRasterizer(
        raster_settings(viewpoint_camera, pc.active_sh_degree, bg_color, pipe, scaling_modifier))

    scales = rotations = cov3D_precomp = None
    if pipe.compute_cov3D_python:
        cov3D_precomp = pc.get_covariance(scaling_modifier)
    else:
        scales, rotations = pc.get_scaling, pc.get_rotation

    shs = colors_precomp = dc = None
    if override_color is not None:
        colors_precomp = override_color
    elif pipe.convert_SHs_python:
        dirs = pc.get_xyz - viewpoint_camera.camera_center
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        sh2rgb = eval_sh(pc.active_sh_degree, pc.get_features, dirs)  # features [N, M, 3]
        colors_precomp = torch.clamp_min(sh2rgb + 0.5, 0.0)
    else:
        # The DC terms apart, as the 2024 original's separate_sh: no [N, 16, 3] concatenation
        # forward, and no split and copy of its gradient backward, each step.
        dc, shs = pc.get_features_dc, pc.get_features_rest

    if shs is not None and not options.sh_rest.gradient:
        shs = shs.detach()
    sh_adam = options.sh_rest.adam if shs is not None else None  # not for colours from Python
    image, radii, depth = rasterizer(
        means3D=pc.get_xyz, means2D=screenspace_points, shs=shs, colors_precomp=colors_precomp,
        opacities=pc.get_opacity, scales=scales, rotations=rotations,
        cov3D_precomp=cov3D_precomp, dc=dc, sh_adam=sh_adam)
    if options.use_trained_exp and pc.exposures is not None:
        # Clamped as the 2024 original clamps every render: a photo's clipped highlights then
        # ask nothing of an exposure with a gain above 1 (our renders without exposure stay
        # unclamped in training, as before).
        image = pc.exposures.apply(image, viewpoint_camera.image_name).clamp(0.0, 1.0)
    return RenderResult(render=image, viewspace_points=screenspace_points,
                        visibility_filter=radii > 0, radii=radii, depth=depth)
