"""Cameras and Gaussian clouds for tests and benchmarks of the rasterizer."""
import math
from dataclasses import dataclass
from typing import Optional

import torch

from . import GaussianRasterizationSettings


def look_at_settings(width: int, height: int, fovx_deg: float = 60.0,
                     eye=(0.0, 0.0, -5.0), target=(0.0, 0.0, 0.0), up=(0.0, -1.0, 0.0),
                     bg=(0.0, 0.0, 0.0), sh_degree: int = 0, scale_modifier: float = 1.0,
                     antialiasing: bool = False, znear: float = 0.01, zfar: float = 100.0,
                     debug: bool = False) -> GaussianRasterizationSettings:
    """Settings for a pinhole camera at `eye` looking at `target`, with the original's matrix
    conventions (COLMAP axes: x right, y down, z forward; matrices stored transposed)."""
    eye_t = torch.tensor(eye, dtype=torch.float64)
    forward = torch.tensor(target, dtype=torch.float64) - eye_t
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, torch.tensor(up, dtype=torch.float64))
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ eye_t
    tanfovx = math.tan(math.radians(fovx_deg) / 2)
    tanfovy = tanfovx * height / width
    proj = torch.zeros(4, 4, dtype=torch.float64)
    proj[0, 0] = 1 / tanfovx
    proj[1, 1] = 1 / tanfovy
    proj[2, 2] = zfar / (zfar - znear)
    proj[2, 3] = -zfar * znear / (zfar - znear)
    proj[3, 2] = 1.0
    return GaussianRasterizationSettings(
        image_height=height, image_width=width, tanfovx=tanfovx, tanfovy=tanfovy,
        bg=torch.tensor(bg, dtype=torch.float32), scale_modifier=scale_modifier,
        viewmatrix=w2c.T.contiguous().float(), projmatrix=(proj @ w2c).T.contiguous().float(),
        sh_degree=sh_degree, campos=eye_t.float(), prefiltered=False, debug=debug,
        antialiasing=antialiasing)


@dataclass
class GaussianCloud:
    means3D: torch.Tensor  # [P, 3]
    opacities: torch.Tensor  # [P, 1] activated
    scales: torch.Tensor  # [P, 3] activated
    rotations: torch.Tensor  # [P, 4] unit quaternions (r, x, y, z)
    shs: torch.Tensor  # [P, 16, 3]
    colors: torch.Tensor  # [P, 3]

    def to(self, dtype: torch.dtype) -> "GaussianCloud":
        return GaussianCloud(*(t.to(dtype) for t in (self.means3D, self.opacities, self.scales,
                                                      self.rotations, self.shs, self.colors)))

    def cov3D(self, scale_modifier: float = 1.0) -> torch.Tensor:
        """[P, 6] upper-triangular covariance entries, for the precomputed-covariance path."""
        from .reference import covariance_3d
        S = covariance_3d(self.scales, self.rotations, scale_modifier)
        return torch.stack([S[:, 0, 0], S[:, 0, 1], S[:, 0, 2], S[:, 1, 1], S[:, 1, 2],
                            S[:, 2, 2]], 1)


def random_cloud(P: int, seed: int = 0, extent: float = 1.5, depth_range=(-1.0, 1.0),
                 log_scale_mean: float = -3.0, log_scale_std: float = 0.5,
                 opacity_logit_mean: float = 0.0, opacity_logit_std: float = 1.5,
                 sh_std: float = 0.3, generator: Optional[torch.Generator] = None) -> GaussianCloud:
    """Gaussians scattered in a box around the origin (seen by look_at_settings' default camera
    at distance 5). Scales are log-normal, opacities sigmoid of a normal: a mix of faint and
    nearly opaque, small and large splats, like a trained scene rather than uniform dots."""
    g = generator or torch.Generator().manual_seed(seed)
    means = torch.empty(P, 3)
    means[:, :2] = (torch.rand(P, 2, generator=g) * 2 - 1) * extent
    means[:, 2] = depth_range[0] + torch.rand(P, generator=g) * (depth_range[1] - depth_range[0])
    scales = torch.exp(log_scale_mean + log_scale_std * torch.randn(P, 3, generator=g))
    quats = torch.randn(P, 4, generator=g)
    quats = quats / quats.norm(dim=1, keepdim=True)
    opacities = torch.sigmoid(opacity_logit_mean + opacity_logit_std * torch.randn(P, 1, generator=g))
    shs = sh_std * torch.randn(P, 16, 3, generator=g)
    shs[:, 0] = (torch.rand(P, 3, generator=g) - 0.5) / 0.28209479177387814  # DC: colour in [0,1]
    colors = torch.rand(P, 3, generator=g)
    return GaussianCloud(means, opacities, scales, quats, shs, colors)
