"""The CUDA backend against the CPU backend (values and gradients), distCUDA2 on CUDA tensors,
and a few training iterations on CUDA. They run wherever torch sees a GPU and the extension was
built with CUDA; elsewhere they are skipped with the reason shown by `pytest -rs`."""
import pytest
import torch

import diff_gaussian_rasterization as dgr
from diff_gaussian_rasterization.testing import look_at_settings, random_cloud

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and dgr._C.has_cuda),
    reason="needs a CUDA GPU and the CUDA build of the rasterizer (none on this machine)")


def to_device(settings, device):
    fields = settings._asdict()
    for key in ("bg", "viewmatrix", "projmatrix", "campos"):
        fields[key] = fields[key].to(device)
    return type(settings)(**fields)


def render_with_grads(settings, cloud, device, grad_seed=0):
    inputs = {
        "means3D": cloud.means3D.to(device).requires_grad_(True),
        "means2D": torch.zeros(cloud.means3D.shape[0], 3, device=device, requires_grad=True),
        "opacities": cloud.opacities.to(device).requires_grad_(True),
        "shs": cloud.shs.to(device).requires_grad_(True),
        "scales": cloud.scales.to(device).requires_grad_(True),
        "rotations": cloud.rotations.to(device).requires_grad_(True),
    }
    rasterizer = dgr.GaussianRasterizer(to_device(settings, device))
    color, radii, invdepth = rasterizer(**inputs)
    g = torch.Generator().manual_seed(grad_seed)
    grad_color = torch.randn(color.shape, generator=g).to(device)
    grad_depth = torch.randn(invdepth.shape, generator=g).to(device)
    torch.autograd.backward([color, invdepth], [grad_color, grad_depth])
    return color, radii, invdepth, {k: v.grad for k, v in inputs.items()}


@pytest.mark.parametrize("antialiasing", [False, True])
def test_cuda_matches_cpu(antialiasing):
    settings = look_at_settings(97, 61, sh_degree=3, bg=(0.2, 0.3, 0.4),
                                antialiasing=antialiasing)
    cloud = random_cloud(800, seed=1)
    cpu = render_with_grads(settings, cloud, "cpu")
    gpu = render_with_grads(settings, cloud, "cuda")
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=0, atol=1e-4)
    assert torch.equal(gpu[1].cpu(), cpu[1])
    torch.testing.assert_close(gpu[2].cpu(), cpu[2], rtol=0, atol=1e-4)
    for name, grad in cpu[3].items():
        scale = grad.abs().max().item() + 1e-12
        torch.testing.assert_close(gpu[3][name].cpu(), grad, rtol=1e-3, atol=1e-4 * scale,
                                   msg=name)


def test_distCUDA2_on_cuda_equals_cpu():
    from simple_knn._C import distCUDA2
    points = torch.rand(5000, 3)
    torch.testing.assert_close(distCUDA2(points.cuda()).cpu(), distCUDA2(points))


def test_fused_ssim_on_cuda_equals_cpu():
    import fused_ssim
    assert fused_ssim.has_cuda, "the fused SSIM was built without its CUDA kernels"
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 61, 97, generator=g)
    reference = torch.rand(3, 61, 97, generator=g)
    results = []
    for device in ("cpu", "cuda"):
        x = image.to(device).requires_grad_(True)
        ssim, l1 = fused_ssim.ssim_l1(x, reference.to(device))
        (0.2 * (1 - ssim) + 0.8 * l1).backward()
        results.append((ssim.item(), l1.item(), x.grad.cpu()))
    (ssim_cpu, l1_cpu, grad_cpu), (ssim_gpu, l1_gpu, grad_gpu) = results
    assert abs(ssim_cpu - ssim_gpu) < 1e-6 and abs(l1_cpu - l1_gpu) < 1e-6
    torch.testing.assert_close(grad_gpu, grad_cpu, rtol=1e-4, atol=1e-9)


def test_training_runs_on_cuda(tmp_path):
    from pathlib import Path
    import train
    sample = Path(__file__).resolve().parents[1] / "data" / "garden_dev"
    assert train.main(["-s", str(sample), "-m", str(tmp_path), "--quiet", "-r", "4",
                       "--iterations", "30", "--device", "cuda", "--test_iterations", "30",
                       "--eval", "--disable_viewer"]) == 0
