"""Exposure compensation (--train_test_exp, GS-2024): the affine as the original applies it, its
learning-rate schedule, exposure.json, exact resume with exposures, and its effect on a copy of
the sample whose photos have known per-image colour gains."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from utils.model_folder import ModelFolder
from arguments import OptimizationParams
from scene.exposure import Exposures, apply_exposure
from conftest import SAMPLE

# full_eval.py --use_expcomp passes exactly these
FULL_EVAL_EXPOSURE = ["--exposure_lr_init", "0.001", "--exposure_lr_final", "0.0001",
                      "--exposure_lr_delay_steps", "5000", "--exposure_lr_delay_mult", "0.001",
                      "--train_test_exp"]


def test_apply_exposure_is_the_originals_affine():
    torch.manual_seed(0)
    image, exposure = torch.rand(3, 5, 7), torch.randn(3, 4)
    expected = (image.permute(1, 2, 0) @ exposure[:3, :3]).permute(2, 0, 1) \
        + exposure[:3, 3, None, None]
    assert torch.equal(apply_exposure(image, exposure), expected)
    assert torch.equal(apply_exposure(image, torch.eye(3, 4)), image)


def test_exposure_learning_rate_schedule_is_the_formula():
    opt = OptimizationParams(iterations=30_000, exposure_lr_init=0.001, exposure_lr_final=0.0001,
                             exposure_lr_delay_steps=5000, exposure_lr_delay_mult=0.001)
    exposures = Exposures(["a", "b"])
    exposures.training_setup(opt)
    for step in (0, 1, 2500, 5000, 15_000, 30_000, 40_000):
        exposures.update_learning_rate(step)
        delay = 0.001 + 0.999 * math.sin(0.5 * math.pi * min(step / 5000, 1.0))
        t = min(step / 30_000, 1.0)
        expected = delay * math.exp((1 - t) * math.log(0.001) + t * math.log(0.0001))
        assert exposures.optimizer.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)


def test_exposure_json_round_trip(tmp_path):
    exposures = Exposures(["img_a", "img_b"])
    with torch.no_grad():
        exposures._exposure.add_(torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1)))
    exposures.save(ModelFolder(tmp_path).exposure_json)
    loaded = Exposures.from_file(str(tmp_path / "exposure.json"))
    for name in ("img_a", "img_b"):
        assert torch.equal(loaded.matrix(name), exposures.matrix(name).detach())
    assert loaded.matrix("img_c") is None


def test_resume_with_exposures_is_exact(tmp_path):
    common = ["-s", str(SAMPLE), "--quiet", "-r", "4", "--eval", "--iterations", "60",
              "--test_iterations", "-1", "--disable_viewer", *FULL_EVAL_EXPOSURE]
    assert train.main(common + ["-m", str(tmp_path / "a"), "--checkpoint_iterations", "30"]) == 0
    assert train.main(common + ["-m", str(tmp_path / "b"), "--start_checkpoint",
                                str(tmp_path / "a" / "chkpnt30.pth")]) == 0
    ply = Path("point_cloud") / "iteration_60" / "point_cloud.ply"
    assert (tmp_path / "a" / ply).read_bytes() == (tmp_path / "b" / ply).read_bytes()
    exposure_a = json.loads((tmp_path / "a" / "exposure.json").read_text())
    assert exposure_a == json.loads((tmp_path / "b" / "exposure.json").read_text())
    # every training image has one, the test images (trained on their left half) included
    assert len(exposure_a) == 48 and exposure_a["img_000"] != np.eye(3, 4).tolist()


def gained_copy(folder: Path, seed: int = 0) -> dict:
    """The sample with each photo's RGB multiplied by a gain in [0.6, 1.5] per channel."""
    shutil.copytree(SAMPLE / "sparse", folder / "sparse")
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    gains = {}
    for path in sorted((SAMPLE / "images").iterdir()):
        gain = rng.uniform(0.6, 1.5, 3)
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        Image.fromarray(np.clip(np.round(image * gain * 255), 0, 255).astype(np.uint8)).save(
            folder / "images" / path.name, quality=95)
        gains[path.stem] = gain
    return gains


def test_exposures_follow_the_photos_gains_and_improve_test_psnr(tmp_path):
    from arguments import ModelParams, PipelineParams, extract
    from gaussian_renderer import render
    from scene import GaussianModel, Scene
    from scene.cameras import scored_part
    from utils.image_utils import psnr

    data = tmp_path / "data"
    gains = gained_copy(data)
    # The MCMC recipe (a smaller budget for 80×60 images): its exposures find the gains closer
    # than the default strategy's. The exposures' final learning rate is full_eval.py's 1e-4,
    # not the default 1e-3, whose Adam steps still move each exposure by up to ~1 % per draw of
    # its image at the end of the run. That closes the gap at this size and length only; at
    # 320×240 or 7,000 iterations the worst image is above 5 % (docs/lab/2026-11-30-exposure-gains.md).
    common = ["-s", str(data), "--quiet", "-r", "4", "--eval", "--iterations", "3000",
              "--strategy", "mcmc", "--cap_max", "30000", "--test_iterations", "-1",
              "--disable_viewer"]
    assert train.main(common + ["-m", str(tmp_path / "exp"), "--train_test_exp",
                                "--exposure_lr_final", "0.0001"]) == 0
    assert train.main(common + ["-m", str(tmp_path / "plain")]) == 0

    def load(model, exp):
        argv = ["-s", str(data), "-m", str(model), "--eval", "-r", "4"]
        args = train.build_parser().parse_args(argv + (["--train_test_exp"] if exp else []))
        gaussians = GaussianModel(3)
        scene = Scene(extract(ModelParams, args), gaussians, load_iteration=-1, shuffle=False)
        return scene, gaussians, extract(PipelineParams, args)

    results = {}
    for name, exp in (("exp", True), ("plain", False)):
        scene, gaussians, pipe = load(tmp_path / name, exp)
        with torch.no_grad():
            results[name] = np.mean([psnr(scored_part(render(
                cam, gaussians, pipe, scene.background, use_trained_exp=exp).render.clamp(0, 1),
                True), scored_part(cam.original_image, True)).item()
                for cam in scene.getTestCameras()])
            if exp:
                # The gain each exposure applies to its image's render (least squares per
                # channel), relative to the geometric mean over images, against the truth.
                estimated, true = [], []
                for cam in scene.getTrainCameras():
                    raw = render(cam, gaussians, pipe, scene.background).render.reshape(3, -1)
                    exposed = gaussians.exposures.apply(raw.reshape(3, 1, -1),
                                                        cam.image_name).reshape(3, -1)
                    estimated.append(((exposed * raw).sum(1) / (raw * raw).sum(1)).numpy())
                    true.append(gains[cam.image_name])
    geo = lambda a: np.exp(np.log(a).mean(0))  # noqa: E731
    estimated, true = np.array(estimated), np.array(true)
    # per image, its worst channel
    error = np.abs((estimated / geo(estimated)) / (true / geo(true)) - 1).max(axis=1)
    print(f"right-half test PSNR: {results['exp']:.2f} dB with exposures, "
          f"{results['plain']:.2f} dB without; gain error median {np.median(error):.3f}, "
          f"max {error.max():.3f}, within 5 %: {np.mean(error < 0.05):.2f}")
    assert results["exp"] > results["plain"] + 3.0
    # Measured with these flags (training seeds 0-4): median 1.5-1.6 %, worst 4.2-4.7 % (the
    # images with the most clipped pixels); PSNR 22.1 vs 14.5 dB (seed 0).
    assert np.median(error) < 0.03
    assert error.max() < 0.05
