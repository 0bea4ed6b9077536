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


def masked_psnr(img1: torch.Tensor, img2: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """PSNR of [C, H, W] images over the pixels a mask keeps: the squared error weighted by
    weight [1, H, W] in [0, 1] (black = not scored) and divided by the weights' sum."""
    mse = ((img1 - img2) ** 2 * weight).sum() / (weight.sum() * img1.shape[0])
    return 20 * torch.log10(1.0 / torch.sqrt(mse))
