"""Fused SSIM + L1 (forward and backward in C++, and in CUDA kernels in CUDA builds), for the
training loss.

    ssim, l1 = ssim_l1(image, gt)          # means over all pixels and channels
    value = fused_ssim(img1, img2)         # the 2024 original's fused_ssim call

SSIM is the original's: 11x11 Gaussian window (sigma 1.5, separable), zero padding, C1 = 0.01²,
C2 = 0.03². Gradients flow to the first image only (the second is the ground truth).
"""
import torch

from . import _C

has_cuda = bool(_C.has_cuda)  # whether CUDA tensors are supported by this build


class _SSIMAndL1(torch.autograd.Function):
    @staticmethod
    def forward(ctx, image, reference):
        ssim, l1, dmap = _C.ssim_l1_forward(image, reference)
        ctx.save_for_backward(image, reference, dmap)
        ctx.mark_non_differentiable(reference)
        return ssim, l1

    @staticmethod
    def backward(ctx, grad_ssim, grad_l1):
        image, reference, dmap = ctx.saved_tensors
        grad = _C.ssim_l1_backward(image, reference, dmap, float(grad_ssim), float(grad_l1))
        return grad, None


def ssim_l1(image: torch.Tensor, reference: torch.Tensor):
    """(mean SSIM, mean |image − reference|) of [..., H, W] float32 images (CPU, or CUDA when
    `has_cuda`)."""
    return _SSIMAndL1.apply(image, reference.detach())


def fused_ssim(img1: torch.Tensor, img2: torch.Tensor, padding: str = "same", train: bool = True):
    """Mean SSIM with the 2024 original's signature (only padding='same' is provided)."""
    if padding != "same":
        raise ValueError("fused_ssim: only padding='same' is implemented")
    return ssim_l1(img1, img2)[0]
