"""Finite-difference checks (float64) of the reference rasterizer on tiny scenes.

The scenes avoid the places where the renderer deliberately differs from the true derivative
(alpha at the 0.99 clamp, positions outside the guard band), so the analytic gradient of the
reference must equal the numerical one there.
"""
import pytest
import torch

from diff_gaussian_rasterization import GaussianRasterizer

from diff_gaussian_rasterization.reference import rasterize_reference
from diff_gaussian_rasterization.testing import look_at_settings, random_cloud


def tiny_scene(seed, P=4):
    cloud = random_cloud(P, seed=seed, extent=0.9, log_scale_mean=-1.8, log_scale_std=0.3,
                         opacity_logit_mean=0.0, opacity_logit_std=0.5).to(torch.float64)
    assert float(cloud.opacities.max()) < 0.95
    return cloud


@pytest.mark.parametrize("seed,antialiasing,sh_degree,low_pass",
                         [(0, False, 3, 0.3), (1, True, 2, 0.3), (2, False, 1, 0.3),
                          (4, True, 1, 0.075)])
def test_reference_gradcheck_scales_rotations(seed, antialiasing, sh_degree, low_pass):
    settings = look_at_settings(20, 16, sh_degree=sh_degree, antialiasing=antialiasing,
                                bg=(0.2, 0.5, 0.7), fovx_deg=40)
    settings = settings._replace(low_pass_variance=low_pass)
    cloud = tiny_scene(seed)
    weights_c = torch.randn(3, 16, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    weights_d = torch.randn(1, 16, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 100))
    P = cloud.means3D.shape[0]

    def loss(means3D, ndc_offset, opacities, shs, scales, rotations):
        color, _, invdepth = rasterize_reference(settings, means3D, None, opacities, shs=shs,
                                                 scales=scales, rotations=rotations,
                                                 ndc_offset=ndc_offset)
        return (color * weights_c).sum() + (invdepth * weights_d).sum()

    # ndc_offset stands in for means2D: the same gradient path, with values that move the splat.
    inputs = (cloud.means3D, torch.zeros(P, 2, dtype=torch.float64), cloud.opacities,
              cloud.shs[:, :(sh_degree + 1) ** 2], cloud.scales,
              cloud.rotations * 1.3)  # unnormalised on purpose: used as given
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_reference_gradcheck_precomputed_colors_and_covariances():
    settings = look_at_settings(18, 14, fovx_deg=40)
    cloud = tiny_scene(3, P=3)
    cov = cloud.cov3D()
    P = cov.shape[0]

    def loss(means3D, ndc_offset, opacities, colors, cov3D):
        color, _, invdepth = rasterize_reference(settings, means3D, None, opacities,
                                                 colors_precomp=colors, cov3D_precomp=cov3D,
                                                 ndc_offset=ndc_offset)
        return (color ** 2).sum() + invdepth.sum()

    inputs = (cloud.means3D, torch.zeros(P, 2, dtype=torch.float64), cloud.opacities,
              cloud.colors, cov)
    inputs = tuple(t.clone().requires_grad_() for t in inputs)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_means2D_gradient_equals_the_ndc_offset_gradient():
    """means2D receives exactly dL/d(NDC position): the quantity the finite differences above
    check through ndc_offset."""
    settings = look_at_settings(20, 16, fovx_deg=40, sh_degree=1)
    cloud = tiny_scene(4).to(torch.float32)
    P = cloud.means3D.shape[0]
    means2D = torch.zeros(P, 3, requires_grad=True)
    offset = torch.zeros(P, 2, requires_grad=True)
    color, _, _ = GaussianRasterizer(settings)(cloud.means3D, means2D, cloud.opacities,
                                               shs=cloud.shs[:, :4], scales=cloud.scales,
                                               rotations=cloud.rotations)
    color.square().sum().backward()
    r_color, _, _ = rasterize_reference(settings, cloud.means3D, None, cloud.opacities,
                                        shs=cloud.shs[:, :4], scales=cloud.scales,
                                        rotations=cloud.rotations, ndc_offset=offset)
    r_color.square().sum().backward()
    assert not means2D.grad[:, 2].any()
    torch.testing.assert_close(means2D.grad[:, :2], offset.grad, rtol=1e-3, atol=1e-5)
