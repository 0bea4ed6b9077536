"""Small Gaussian models for tests: a random cloud of the rasterizer's test helper as a model."""
import torch

from diff_gaussian_rasterization.testing import random_cloud
from scene import GaussianModel
from utils.general_utils import inverse_sigmoid


def random_model(count: int, seed: int, scale_factor: float = 1.0) -> GaussianModel:
    """`count` Gaussians of random_cloud(count, seed), scales × scale_factor, SH degree 3."""
    cloud = random_cloud(count, seed=seed)
    model = GaussianModel(3)
    model._set_parameters(xyz=cloud.means3D, f_dc=cloud.shs[:, :1], f_rest=cloud.shs[:, 1:],
                          opacity=inverse_sigmoid(cloud.opacities),
                          scaling=torch.log(cloud.scales * scale_factor), rotation=cloud.rotations)
    model.active_sh_degree = 3
    return model
