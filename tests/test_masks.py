"""--masks and --alpha_as_mask: masked pixels add nothing to the loss or its gradient, masks
follow their photos' size, bad masks are one clear error, and scoring counts only the pixels a
mask keeps."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

import metrics
import render
import train
from arguments import ModelParams
from conftest import SAMPLE
from dataset_factory import random_image, write_colmap_dataset
from scene import GaussianModel, Scene
from utils.errors import DatasetError
from utils.image_utils import psnr
from utils.loss_utils import photometric_loss


def write_masks(folder, names, size, seed=0):
    """Random rectangles of black on white, one mask per image name; returns them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    masks = {}
    for name in names:
        mask = np.full((size[1], size[0]), 255, np.uint8)
        x, y = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
        mask[y:y + size[1] // 3, x:x + size[0] // 3] = 0
        Image.fromarray(mask).save(folder / (name.rsplit(".", 1)[0] + ".png"))
        masks[name] = mask
    return masks


def scene_with_masks(tmp_path, **overrides):
    root, _, images, _ = write_colmap_dataset(tmp_path / "data", n_images=4, size=(32, 24))
    masks = write_masks(tmp_path / "masks", [im[4] for im in images], (32, 24))
    params = ModelParams(source_path=str(root), model_path=str(tmp_path / "out"),
                         masks=str(tmp_path / "masks"))
    for key, value in overrides.items():
        setattr(params, key, value)
    return Scene(params, GaussianModel(3)), masks


def test_masked_pixels_have_exactly_zero_gradient(tmp_path):
    scene, masks = scene_with_masks(tmp_path)
    cam = scene.getTrainCameras()[0]
    expected = masks[cam.image_name + ".png"]
    np.testing.assert_array_equal(cam.mask[0].numpy(), expected)
    image = torch.rand(3, cam.image_height, cam.image_width, requires_grad=True)
    for fused in (True, False):
        image.grad = None
        loss, _ = photometric_loss(*cam.training_pair(image), 0.2, fused=fused)
        loss.backward()
        masked = torch.from_numpy(expected == 0).expand(3, -1, -1)
        assert torch.all(image.grad[masked] == 0)
        assert torch.all(image.grad[~masked] != 0)


def test_masks_follow_the_resolution_and_the_coarse_levels(tmp_path):
    scene, masks = scene_with_masks(tmp_path, resolution=2)
    cam = scene.getTrainCameras()[0]
    assert cam.mask.shape == (1, 12, 16) and cam.alpha_mask.shape == (1, 12, 16)
    coarse = cam.at_scale(2)
    assert coarse.mask.shape == (1, 6, 8) and coarse.alpha_mask.shape == (1, 6, 8)
    assert coarse.original_image.shape == (3, 6, 8)


@pytest.mark.parametrize("problem", ["missing", "black", "jpeg"])
def test_a_bad_mask_is_one_clear_error_naming_it(tmp_path, problem):
    root, _, images, _ = write_colmap_dataset(tmp_path / "data", n_images=3)
    folder = tmp_path / "masks"
    write_masks(folder, [im[4] for im in images], (32, 24))
    victim = folder / "view_001.png"
    if problem == "missing":
        victim.unlink()
    elif problem == "black":
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(victim)
    else:
        Image.fromarray(np.full((24, 32), 255, np.uint8)).save(victim, format="JPEG")
    params = ModelParams(source_path=str(root), model_path=str(tmp_path / "out"),
                         masks=str(folder))
    with pytest.raises(DatasetError, match="view_001") as error:
        Scene(params, GaussianModel(3))
    assert {"missing": "missing", "black": "all black", "jpeg": "PNG"}[problem] in str(error.value)


def test_alpha_as_mask_keeps_the_colours_and_masks_the_transparent_pixels(tmp_path):
    root, _, images, _ = write_colmap_dataset(tmp_path / "data", n_images=3)
    name = images[0][4]
    rgba = random_image(root / "images" / name, (32, 24), seed=5, mode="RGBA")
    params = ModelParams(source_path=str(root), model_path=str(tmp_path / "out"),
                         alpha_as_mask=True)
    cam = Scene(params, GaussianModel(3), shuffle=False).getTrainCameras()[0]
    np.testing.assert_array_equal(cam.mask[0].numpy(), rgba[..., 3])
    np.testing.assert_array_equal(cam.original_image.permute(1, 2, 0).numpy(),
                                  rgba[..., :3].astype(np.float32) / 255)


def test_metrics_score_only_what_the_mask_keeps(tmp_path):
    method = tmp_path / "model" / "test" / "ours_1"
    for sub in ("renders", "gt", "masks"):
        (method / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    noisy = np.clip(gt.astype(int) + rng.integers(-8, 9, gt.shape), 0, 255).astype(np.uint8)
    noisy[:, :10] = 255 - gt[:, :10]  # a passer-by where the mask is black
    mask = np.full((24, 32), 255, np.uint8)
    mask[:, :10] = 0
    Image.fromarray(gt).save(method / "gt" / "00000.png")
    Image.fromarray(noisy).save(method / "renders" / "00000.png")
    Image.fromarray(mask).save(method / "masks" / "00000.png")
    results = metrics.evaluate([str(tmp_path / "model")], quiet=True)[str(tmp_path / "model")]
    as_float = lambda a: torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) / 255)  # noqa: E731
    kept = psnr(as_float(noisy[:, 10:]), as_float(gt[:, 10:])).item()
    assert results["ours_1"]["PSNR"] == pytest.approx(kept, abs=1e-4)
    whole = psnr(as_float(noisy), as_float(gt)).item()
    assert whole < kept - 10


def test_training_rendering_and_scoring_with_masks(tmp_path):
    dataset = tmp_path / "dataset"
    shutil.copytree(SAMPLE, dataset)
    names = sorted(p.name for p in (dataset / "images").iterdir())
    write_masks(tmp_path / "masks", names, (320, 240))
    model = tmp_path / "model"
    assert train.main(["-s", str(dataset), "-m", str(model), "--quiet", "-r", "4", "--eval",
                       "--iterations", "20", "--test_iterations", "20", "--disable_viewer",
                       "--masks", str(tmp_path / "masks")]) == 0
    assert render.main(["-m", str(model), "--quiet", "--skip_train"]) == 0
    written = sorted(p.name for p in (model / "test" / "ours_20" / "masks").iterdir())
    assert len(written) == 6 and Image.open(model / "test" / "ours_20" / "masks" /
                                            written[0]).size == (80, 60)
    assert metrics.main(["-m", str(model)]) == 0
    assert json.loads((model / "results.json").read_text())["ours_20"]["PSNR"] > 5
