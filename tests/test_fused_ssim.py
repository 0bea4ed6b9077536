"""Fused SSIM + L1 (C++) against the PyTorch reference in utils/loss_utils.py: values and
gradients to 1e-5, odd sizes and batches, determinism across thread counts."""
import pytest
import torch

from fused_ssim import fused_ssim, ssim_l1
from utils.loss_utils import l1_loss, photometric_loss, ssim


def pair(shape, seed, mix=0.6):
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, generator=g)
    image = (mix * gt + (1 - mix) * torch.rand(shape, generator=g)).requires_grad_(True)
    return image, gt


@pytest.mark.parametrize("shape", [(3, 240, 320), (3, 17, 9), (2, 3, 31, 40), (1, 4, 4),
                                   (3, 1, 23)])
def test_values_and_gradients_match_reference(shape):
    image, gt = pair(shape, seed=sum(shape))
    weights = (0.3, 0.7)  # arbitrary upstream weights for the two outputs
    s, l1 = ssim_l1(image, gt)
    (weights[0] * s + weights[1] * l1).backward()
    grad = image.grad.clone()
    image64 = image.detach().double().requires_grad_(True)
    s_ref, l1_ref = ssim(image64, gt.double()), l1_loss(image64, gt.double())
    (weights[0] * s_ref + weights[1] * l1_ref).backward()
    assert s.item() == pytest.approx(s_ref.item(), abs=1e-5)
    assert l1.item() == pytest.approx(l1_ref.item(), abs=1e-6)
    scale = image64.grad.abs().max().item()
    torch.testing.assert_close(grad.double(), image64.grad, rtol=0, atol=1e-5 * scale)


def test_training_loss_equals_reference():
    image, gt = pair((3, 60, 80), seed=3)
    loss, _ = photometric_loss(image, gt, 0.2, fused=True)
    loss.backward()
    grad = image.grad.clone()
    image.grad = None
    ref, _ = photometric_loss(image, gt, 0.2, fused=False)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), abs=1e-6)
    torch.testing.assert_close(grad, image.grad, rtol=0, atol=1e-5 * image.grad.abs().max())


def test_identical_images_and_2024_signature():
    _, gt = pair((1, 3, 20, 30), seed=5)
    assert fused_ssim(gt.clone(), gt).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError):
        fused_ssim(gt, gt, padding="valid")


def test_same_bits_for_any_thread_count():
    image, gt = pair((3, 120, 160), seed=7)
    results = []
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            image.grad = None
            s, l1 = ssim_l1(image, gt)
            (s + l1).backward()
            results.append((s.item(), l1.item(), image.grad.clone()))
    finally:
        torch.set_num_threads(previous)
    assert results[0][:2] == results[1][:2] and torch.equal(results[0][2], results[1][2])


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="shape"):
        ssim_l1(torch.rand(3, 5, 5), torch.rand(3, 5, 6))
    with pytest.raises(ValueError, match="float32"):
        ssim_l1(torch.rand(3, 5, 5, dtype=torch.float64), torch.rand(3, 5, 5, dtype=torch.float64))
