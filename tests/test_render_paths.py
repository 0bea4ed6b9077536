"""render()'s Python paths (the original's --convert_SHs_python and --compute_cov3D_python:
colours from SH and 3D covariances computed in PyTorch and passed to the rasterizer precomputed)
give the same image and the same parameter gradients as the rasterizer's own SH and covariance
code, at SH degree 3 with random rotations and anisotropic scales.

Tolerances: image within 1e-5; gradients within rtol 1e-3 plus 1e-5 x the largest entry.
"""
import numpy as np
import pytest
import torch

from arguments import PipelineParams
from gaussian_renderer import render
from scene.cameras import Camera
from scene.gaussian_model import PARAMETER_ATTRIBUTES, GaussianModel
from scene.synthetic import random_point_cloud

HEIGHT, WIDTH = 48, 64


def textured_model(n=300, seed=0) -> GaussianModel:
    model = GaussianModel(3)
    model.create_from_pcd(random_point_cloud(n, seed), None, 1.0)
    g = torch.Generator().manual_seed(seed)
    model._set_parameters(
        f_rest=0.2 * torch.randn(model._features_rest.shape, generator=g),
        rotation=torch.randn(n, 4, generator=g),
        scaling=model._scaling + 0.5 * torch.randn(n, 3, generator=g),
        opacity=torch.randn(n, 1, generator=g))
    model.active_sh_degree = 3
    return model


def camera() -> Camera:
    # World-to-camera translation (0, 0, 4): the cloud fills the view 3 to 5 units ahead,
    # seen slightly from the side so the SH directions vary across the image.
    angle = 0.3
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return Camera(colmap_id=0, R=R, T=np.array([0.0, 0.0, 4.0]), FoVx=1.2, FoVy=0.95,
                  image=torch.zeros(3, HEIGHT, WIDTH), image_name="view", uid=0)


def image_and_gradients(model, pipe):
    for attr in PARAMETER_ATTRIBUTES.values():
        getattr(model, attr).grad = None
    out = render(camera(), model, pipe, torch.tensor([0.1, 0.2, 0.3]))
    weights = torch.randn(out.render.shape, generator=torch.Generator().manual_seed(1))
    (out.render * weights).sum().backward()
    grads = {attr: getattr(model, attr).grad.clone() for attr in PARAMETER_ATTRIBUTES.values()}
    return out.render.detach(), grads


@pytest.mark.parametrize("python_path", ["convert_SHs_python", "compute_cov3D_python"])
def test_python_render_paths_match_the_rasterizer(python_path):
    model = textured_model()
    image, grads = image_and_gradients(model, PipelineParams())
    image_py, grads_py = image_and_gradients(model, PipelineParams(**{python_path: True}))
    assert image.abs().max() > 0.1  # the view is not empty
    torch.testing.assert_close(image_py, image, rtol=0, atol=1e-5)
    for attr, grad in grads.items():
        assert grad.abs().max() > 0, attr  # every parameter gets a gradient
        torch.testing.assert_close(grads_py[attr], grad, rtol=1e-3,
                                   atol=1e-5 * float(grad.abs().max()), msg=attr)
