"""Densification policy: when to densify, prune and reset opacities, and which Gaussians each
step selects. Pure functions of tensors and named thresholds, kept apart from the model's data
so a researcher can read them in one place and swap them.
"""
from dataclasses import dataclass
from typing import Optional

import torch

from utils.general_utils import build_rotation

PRUNE_MIN_OPACITY = 0.005  # train.py's hard-coded prune threshold in the original
SPLIT_SAMPLES = 2  # a large Gaussian is replaced by this many samples of itself
SPLIT_SCALE_DIVISOR = 0.8 * SPLIT_SAMPLES  # their scale is the parent's / 1.6
OPACITY_RESET_CEILING = 0.01  # opacity reset sets every opacity to min(opacity, 0.01)
SCREEN_SIZE_PRUNE_PIXELS = 20  # screen-radius prune threshold, active after the first reset
WORLD_SIZE_PRUNE_FRACTION = 0.1  # prune Gaussians larger than 0.1 x the scene extent (same time)


@dataclass(frozen=True)
class DensificationPolicy:
    grad_threshold: float = 0.0002
    percent_dense: float = 0.01
    min_opacity: float = PRUNE_MIN_OPACITY
    densify_from_iter: int = 500
    densify_until_iter: int = 15_000
    densification_interval: int = 100
    opacity_reset_interval: int = 3000
    white_background: bool = False
    # False reproduces the original, whose screen-size prune never fires (see README).
    screen_size_prune: bool = False

    @classmethod
    def from_params(cls, opt, white_background: bool = False) -> "DensificationPolicy":
        return cls(grad_threshold=opt.densify_grad_threshold, percent_dense=opt.percent_dense,
                   densify_from_iter=opt.densify_from_iter,
                   densify_until_iter=opt.densify_until_iter,
                   densification_interval=opt.densification_interval,
                   opacity_reset_interval=opt.opacity_reset_interval,
                   white_background=white_background, screen_size_prune=opt.screen_size_prune)

    def collects_statistics(self, iteration: int) -> bool:
        return iteration < self.densify_until_iter

    def densifies_at(self, iteration: int) -> bool:
        return (self.collects_statistics(iteration) and iteration > self.densify_from_iter
                and iteration % self.densification_interval == 0)

    def max_screen_size(self, iteration: int) -> Optional[int]:
        return SCREEN_SIZE_PRUNE_PIXELS if iteration > self.opacity_reset_interval else None

    def resets_opacity_at(self, iteration: int) -> bool:
        return self.collects_statistics(iteration) and (
            iteration % self.opacity_reset_interval == 0
            or (self.white_background and iteration == self.densify_from_iter))


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
