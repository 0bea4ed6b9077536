"""A trained model loaded back for a benchmark: its scene and Gaussians at a saved iteration, and
its test views scored (PSNR / SSIM / LPIPS). Shared by the benchmark scripts."""
import os
import statistics

import torch

import train
from arguments import TrainingConfig
from gaussian_renderer import render
from scene import GaussianModel, Scene
from utils.image_utils import psnr
from utils.loss_utils import ssim
from utils.lpips import lpips

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "garden_dev")


def load_scene(model_path, iteration, optimizer_type="default", extra_argv=(), source=SAMPLE):
    """(scene, gaussians, TrainingConfig) of `model_path` at `iteration` (-1: the latest),
    with train.py's flags `extra_argv` (for example -r 2)."""
    parser = train.build_parser()
    args = parser.parse_args(["-s", source, "-m", model_path, "--eval",
                              "--optimizer_type", optimizer_type, *extra_argv])
    config = TrainingConfig.from_args(args)
    gaussians = GaussianModel(config.model.sh_degree, config.optimization.optimizer_type)
    scene = Scene(config.model, gaussians, load_iteration=iteration, shuffle=False)
    return scene, gaussians, config


@torch.no_grad()
def test_scores(scene, gaussians, pipe) -> dict:
    """Mean PSNR, SSIM and LPIPS (VGG) over the scene's test views."""
    background = scene.background
    values = {"PSNR": [], "SSIM": [], "LPIPS": []}
    for cam in scene.getTestCameras():
        image = render(cam, gaussians, pipe, background).render.clamp(0, 1)
        gt = cam.original_image
        values["PSNR"].append(psnr(image, gt).item())
        values["SSIM"].append(ssim(image, gt).item())
        values["LPIPS"].append(lpips(image, gt).item())
    return {k: statistics.mean(v) for k, v in values.items()}
