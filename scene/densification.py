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


class DensificationStats:
    """The default strategy's per-Gaussian statistics between two densifications, under the
    original's names: xyz_gradient_accum [N, 1] (sum of view-space gradient norms), denom [N, 1]
    (views that saw the Gaussian), max_radii2D [N] (largest screen radius). They belong to the
    strategy; row edits carry them along as extra per-row tensors (`rows` / `from_rows`)."""
    NAMES = ("xyz_gradient_accum", "denom", "max_radii2D")

    def __init__(self, xyz_gradient_accum: torch.Tensor, denom: torch.Tensor,
                 max_radii2D: torch.Tensor):
        self.xyz_gradient_accum = xyz_gradient_accum
        self.denom = denom
        self.max_radii2D = max_radii2D

    @classmethod
    def zeros(cls, num_points: int, device) -> "DensificationStats":
        return cls(torch.zeros((num_points, 1), device=device),
                   torch.zeros((num_points, 1), device=device),
                   torch.zeros(num_points, device=device))

    @classmethod
    def from_rows(cls, rows: dict) -> "DensificationStats":
        return cls(*(rows[name] for name in cls.NAMES))

    def rows(self) -> dict:
        return {name: getattr(self, name) for name in self.NAMES}

    def add(self, viewspace_grad: torch.Tensor, update_filter: torch.Tensor) -> None:
        """One view's statistics: viewspace_grad [N, 2], update_filter [N] bool (visible) or
        indices. Written without masked indexing: the rasterizer's gradient is exactly 0 for
        invisible Gaussians, so adding the full norm and the visibility as 0/1 gives the same
        numbers as the original's masked update."""
        visible = torch.zeros(self.denom.shape[0], 1, device=self.denom.device)
        visible[update_filter] = 1.0
        self.xyz_gradient_accum += torch.norm(viewspace_grad, dim=-1, keepdim=True) * visible
        self.denom += visible

    def update_max_radii(self, radii: torch.Tensor) -> None:
        """max_radii2D = max(max_radii2D, radii) (radii are 0 where invisible, and the maxima
        are >= 0, so this equals the original's update on visible Gaussians only)."""
        torch.maximum(self.max_radii2D, radii.to(self.max_radii2D.dtype), out=self.max_radii2D)

    def mean_grads(self) -> torch.Tensor:
        """[N, 1] mean view-space gradient norm (0 where no view saw the Gaussian)."""
        grads = self.xyz_gradient_accum / self.denom
        grads[grads.isnan()] = 0.0
        return grads

    def reset(self, keep_max_radii: bool = False) -> None:
        """Zero the statistics (after each densification, as the original); max_radii2D too,
        unless keep_max_radii (the working screen-size prune: it survives until the prune)."""
        n, device = self.denom.shape[0], self.denom.device
        self.xyz_gradient_accum = torch.zeros((n, 1), device=device)
        self.denom = torch.zeros((n, 1), device=device)
        if not keep_max_radii:
            self.max_radii2D = torch.zeros(n, device=device)
