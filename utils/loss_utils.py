"""Photometric losses of the original: L1 and SSIM with an 11×11 Gaussian window (σ = 1.5).

The window is separable, so SSIM runs as two 1-D convolutions per statistic instead of one 2-D
(11 + 11 taps instead of 121) — same values, up to float rounding."""
import functools

import torch
import torch.nn.functional as F
import fused_ssim
from fused_ssim import ssim_l1

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01 ** 2  # (K1·L)² with K1 = 0.01 and dynamic range L = 1
SSIM_C2 = 0.03 ** 2  # (K2·L)² with K2 = 0.03


def l1_loss(image: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    return (image - gt).abs().mean()


@functools.lru_cache(maxsize=8)
def gaussian_window_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                       dtype=torch.float32, device="cpu") -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur with zero padding, per channel: x [B, C, H, W]."""
    channels = x.shape[1]
    pad = window.numel() // 2
    kx = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    ky = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    x = F.conv2d(x, kx, padding=(0, pad), groups=channels)
    return F.conv2d(x, ky, padding=(pad, 0), groups=channels)


def ssim_map(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of [C, H, W] or [B, C, H, W] images in [0, 1]."""
    if img1.dim() == 3:
        img1, img2 = img1.unsqueeze(0), img2.unsqueeze(0)
    window = gaussian_window_1d(SSIM_WINDOW, SSIM_SIGMA, img1.dtype, img1.device)
    mu1, mu2 = _blur(img1, window), _blur(img2, window)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _blur(img1 * img1, window) - mu1_sq
    sigma2_sq = _blur(img2 * img2, window) - mu2_sq
    sigma12 = _blur(img1 * img2, window) - mu12
    return ((2 * mu12 + SSIM_C1) * (2 * sigma12 + SSIM_C2)
            / ((mu1_sq + mu2_sq + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2)))


def ssim(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over the whole map (the original's `ssim(..., size_average=True)`)."""
    return ssim_map(img1, img2).mean()


def photometric_loss(image: torch.Tensor, gt: torch.Tensor, lambda_dssim: float,
                     fused: bool = True):
    """(1 − λ)·L1 + λ·(1 − SSIM); returns (loss, l1).

    fused: SSIM and L1 (values and gradient) in one C++ pass (submodules/fused-ssim), for
    float32 images on the CPU (or CUDA, in CUDA builds); otherwise the PyTorch functions above,
    which are its reference."""
    on_supported_device = image.device.type == "cpu" or (image.is_cuda and fused_ssim.has_cuda)
    if fused and on_supported_device and image.dtype == torch.float32:
        s, l1 = ssim_l1(image, gt)
    else:
        s, l1 = ssim(image, gt), l1_loss(image, gt)
    return (1.0 - lambda_dssim) * l1 + lambda_dssim * (1.0 - s), l1
