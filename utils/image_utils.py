"""Image quality measures."""
import torch


def psnr(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [0, 1], one value per image over all its pixels and channels:
    [C, H, W] → scalar, [B, C, H, W] → [B]. (The original's training report feeds [C, H, W] and
    so averages per-channel PSNRs; ours is the per-image PSNR that metrics.py reports.)"""
    if img1.dim() == 3:
        return psnr(img1.unsqueeze(0), img2.unsqueeze(0))[0]
    mse = ((img1 - img2) ** 2).flatten(1).mean(1)
    return 20 * torch.log10(1.0 / torch.sqrt(mse))
