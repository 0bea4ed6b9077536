"""The original's densification decisions: which Gaussians clone, split and prune, as pure
functions of tensors and named thresholds (scene/strategies.py's DefaultStrategy applies them).
"""
from typing import Optional

import torch

from utils.general_utils import build_rotation

INIT_OPACITY = 0.1  # every Gaussian starts at this opacity in the original
PRUNE_MIN_OPACITY = 0.005  # train.py's hard-coded prune threshold in the original
SPLIT_SAMPLES = 2  # a large Gaussian is replaced by this many samples of itself
SPLIT_SCALE_DIVISOR = 0.8 * SPLIT_SAMPLES  # their scale is the parent's / 1.6
OPACITY_RESET_CEILING = 0.01  # opacity reset sets every opacity to min(opacity, 0.01)
SCREEN_SIZE_PRUNE_PIXELS = 20  # screen-radius prune threshold, active after the first reset
WORLD_SIZE_PRUNE_FRACTION = 0.1  # prune Gaussians larger than 0.1 x the scene extent (same time)


def clone_mask(grad_norms: torch.Tensor, scales: torch.Tensor, grad_threshold: float,
               percent_dense: float, extent: float) -> torch.Tensor:
    """[N] bool: under-reconstructed (large mean view-space gradient) and small → copy."""
    return (grad_norms >= grad_threshold) & (scales.max(dim=1).values <= percent_dense * extent)


def split_mask(grad_norms: torch.Tensor, scales: torch.Tensor, grad_threshold: float,
               percent_dense: float, extent: float) -> torch.Tensor:
    """[N] bool: large mean view-space gradient and large → split."""
    return (grad_norms >= grad_threshold) & (scales.max(dim=1).values > percent_dense * extent)


def prune_mask(opacities: torch.Tensor, scales: torch.Tensor, max_radii2D: torch.Tensor,
               min_opacity: float, extent: float, max_screen_size: Optional[float]):
    """[N] bool: nearly transparent, or (when max_screen_size is given) too big on screen or in
    the world."""
    mask = opacities.squeeze(1) < min_opacity
    if max_screen_size is not None:
        mask |= max_radii2D > max_screen_size
        mask |= scales.max(dim=1).values > WORLD_SIZE_PRUNE_FRACTION * extent
    return mask


def split_samples(xyz: torch.Tensor, scales: torch.Tensor, quats: torch.Tensor,
                  n: int = SPLIT_SAMPLES):
    """n samples per Gaussian drawn from the Gaussian itself, and the shrunk scale.
    xyz [K, 3], scales [K, 3] activated, quats [K, 4] → positions [n·K, 3], scales [n·K, 3]."""
    stds = scales.repeat(n, 1)
    samples = torch.normal(mean=torch.zeros_like(stds), std=stds)
    rotations = build_rotation(quats).repeat(n, 1, 1)
    positions = torch.bmm(rotations, samples.unsqueeze(-1)).squeeze(-1) + xyz.repeat(n, 1)
    return positions, stds / SPLIT_SCALE_DIVISOR
