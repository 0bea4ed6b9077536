"""Depth regularisation (-d, GS-2024) and utils/make_depth_scale.py: the robust scale/offset fit,
maps rendered from a trained model aligned to SfM points on its surfaces (exactly) and to the
sample's own SfM points (roughly), the depth loss lowering the depth error, and one-line errors
for missing maps or parameters."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train
from utils.make_depth_scale import fit_scale_offset, sample_bilinear
from conftest import REPO, SAMPLE

TRUE_SCALE, TRUE_OFFSET = 2.0, 0.05  # maps hold (inverse depth − offset) / scale


def test_fit_recovers_an_exact_affine():
    rng = np.random.default_rng(0)
    inv_colmap = rng.uniform(0.05, 0.8, 200)
    scale, offset = fit_scale_offset(inv_colmap, (inv_colmap - 0.1) / 2.5)
    assert abs(scale - 2.5) < 1e-9 and abs(offset - 0.1) < 1e-9
    assert fit_scale_offset(inv_colmap[:10], inv_colmap[:10]) == (0.0, 0.0)  # too few points
    assert fit_scale_offset(np.full(50, 0.3), rng.uniform(0, 1, 50)) == (0.0, 0.0)  # no range


def test_bilinear_sampling_at_pixel_centres_and_between():
    image = np.arange(12, dtype=np.float64).reshape(3, 4)
    xy = np.array([[0.0, 0.0], [3.0, 2.0], [1.5, 0.0], [1.0, 0.5]])
    assert np.allclose(sample_bilinear(image, xy), [0.0, 11.0, 1.5, 3.0])


def load(model, data, extra=()):
    from arguments import ModelParams, PipelineParams, extract
    from scene import GaussianModel, Scene
    args = train.build_parser().parse_args(["-s", str(data), "-m", str(model), "-r", "4",
                                            *extra])
    gaussians = GaussianModel(3)
    scene = Scene(extract(ModelParams, args), gaussians, load_iteration=-1, shuffle=False)
    return scene, gaussians, extract(PipelineParams, args), extract(ModelParams, args)


COMMON = ["--quiet", "-r", "4", "--test_iterations", "-1", "--disable_viewer"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A 600-iteration model of the sample at 80×60 and its rendered "monocular" maps:
    16-bit PNGs of (rendered inverse depth − TRUE_OFFSET) / TRUE_SCALE, one per image."""
    from gaussian_renderer import render
    model = tmp_path_factory.mktemp("reference")
    assert train.main(["-s", str(SAMPLE), "-m", str(model), "--iterations", "600",
                       *COMMON]) == 0
    maps = tmp_path_factory.mktemp("maps")
    scene, gaussians, pipe, _ = load(model, SAMPLE)
    with torch.no_grad():
        for cam in scene.getTrainCameras():
            inverse = render(cam, gaussians, pipe, scene.background).depth[0].numpy()
            mono = (inverse - TRUE_OFFSET) / TRUE_SCALE
            Image.fromarray(np.clip(np.round(mono * 65536), 0, 65535).astype(np.uint16)).save(
                maps / f"{cam.image_name}.png")
    return model, maps


def make_depth_scale(data: Path, depths: Path) -> dict:
    """The original's command line; returns depth_params.json."""
    done = subprocess.run([sys.executable, "utils/make_depth_scale.py", "--base_dir", str(data),
                           "--depths_dir", str(depths)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "48 of 48 images fitted" in done.stdout
    return json.loads((data / "sparse" / "0" / "depth_params.json").read_text())


def test_maps_consistent_with_the_sfm_give_back_their_scale_and_offset(reference, tmp_path):
    """The sample's SfM points do not lie on a trained model's surfaces (docs/exposure-depth.md), so here the
    points are put there: for each image, 60 of its map's pixels are lifted to 3D with the map's
    own inverse depth and become its keypoints and points. make_depth_scale.py then has to undo
    the maps' affine through its whole chain (COLMAP files, pose, keypoint convention, map
    resolution vs the photo's, PNG decoding) to within 1 %."""
    from utils.colmap_loader import (read_extrinsics_binary, read_intrinsics_binary,
                                     qvec2rotmat)
    from dataset_factory import write_binary
    model, maps = reference
    sparse = SAMPLE / "sparse" / "0"
    cameras = read_intrinsics_binary(sparse / "cameras.bin")
    rng = np.random.default_rng(0)
    images, points = [], []
    for image in sorted(read_extrinsics_binary(sparse / "images.bin").values(),
                        key=lambda im: im.name):
        camera = cameras[image.camera_id]
        fx, fy, cx, cy = camera.params
        inverse = np.asarray(Image.open(maps / f"{Path(image.name).stem}.png"),
                             np.float64) / 65536 * TRUE_SCALE + TRUE_OFFSET
        h, w = inverse.shape
        v, u = np.nonzero(inverse > 0.05)
        pick = rng.choice(len(u), 60, replace=False)
        u, v = u[pick], v[pick]
        # Map pixel centre (u, v) is photo position ((u + 0.5)·W/w, (v + 0.5)·H/h) in COLMAP's
        # pixel-edge coordinates.
        xys = np.stack([(u + 0.5) * camera.width / w, (v + 0.5) * camera.height / h], 1)
        z = 1.0 / inverse[v, u]
        in_camera = np.stack([(xys[:, 0] - cx) / fx * z, (xys[:, 1] - cy) / fy * z, z], 1)
        R = qvec2rotmat(image.qvec)
        world = (in_camera - image.tvec) @ R  # R^T (p − t), row by row
        ids = np.arange(len(points) + 1, len(points) + 61)
        images.append((image.id, image.qvec, image.tvec, image.camera_id, image.name, xys, ids))
        points += [(int(i), p, (128, 128, 128), 0.5, np.array([[image.id, k]]))
                   for k, (i, p) in enumerate(zip(ids, world))]
    data = tmp_path / "data"
    (data / "sparse" / "0").mkdir(parents=True)
    camera_rows = [(c.id, c.model, c.width, c.height, c.params) for c in cameras.values()]
    write_binary(data / "sparse" / "0", camera_rows, images, points)
    params = make_depth_scale(data, maps)
    scales = np.array([p["scale"] for p in params.values()])
    offsets = np.array([p["offset"] for p in params.values()])
    print(f"scale {scales.min():.5f}-{scales.max():.5f}, offset {offsets.min():.5f}-"
          f"{offsets.max():.5f} (true {TRUE_SCALE}, {TRUE_OFFSET})")
    assert np.all(np.abs(scales / TRUE_SCALE - 1) < 0.01)
    assert np.all(np.abs(offsets / TRUE_OFFSET - 1) < 0.01)


def test_rendered_maps_align_and_the_depth_loss_follows_them(reference, tmp_path):
    from gaussian_renderer import render
    from scene import read_depth_setup
    from scene.cameras import aligned_inverse_depth
    from utils.make_depth_scale import depth_map_path

    model, maps = reference
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "sparse", data / "sparse")
    shutil.copytree(SAMPLE / "images", data / "images")
    shutil.copytree(maps, data / "depths")
    params = make_depth_scale(data, data / "depths")
    scales = np.array([p["scale"] for p in params.values()])
    # A trained model's rendered inverse depth is not the SfM points' (it puts the distant
    # background much nearer), so the fit finds the truth only roughly: 29 % off here, 9 % from
    # make demo's model (docs/exposure-depth.md). This guards against a broken fit (zero, inverted or unscaled
    # maps).
    print(f"recovered scale median {np.median(scales):.3f} (true {TRUE_SCALE})")
    assert abs(np.median(scales) / TRUE_SCALE - 1) < 0.5

    errors = {}
    for name, extra in (("with", ["-d", "depths"]), ("without", [])):
        model = tmp_path / name
        assert train.main(["-s", str(data), "-m", str(model), "--iterations", "400", *COMMON,
                           *extra]) == 0
        scene, gaussians, pipe, dataset = load(model, data, ["-d", "depths"])
        folder, params, median = read_depth_setup(dataset)
        values = []
        with torch.no_grad():
            for cam in scene.getTrainCameras():
                target, reliable = aligned_inverse_depth(
                    depth_map_path(folder, cam.image_name), (cam.image_width, cam.image_height),
                    params.get(cam.image_name), median)
                if reliable:
                    depth = render(cam, gaussians, pipe, scene.background).depth
                    values.append(torch.abs(depth - target).mean().item())
        errors[name] = float(np.mean(values))
    print(f"inverse-depth error: {errors['with']:.4f} with -d, {errors['without']:.4f} without")
    assert errors["with"] < 0.95 * errors["without"]  # measured 0.87x here


def run_train(*args):
    return subprocess.run([sys.executable, "train.py", "--quiet", "--iterations", "2",
                           "--disable_viewer", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_missing_depth_parameters_or_maps_are_one_line_errors(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "sparse", data / "sparse")
    shutil.copytree(SAMPLE / "images", data / "images")
    (data / "depths").mkdir()
    result = run_train("-s", str(data), "-m", str(tmp_path / "m"), "-d", "depths")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "depth_params.json: missing: run python utils/make_depth_scale.py" in line
    names = sorted(p.stem for p in (data / "images").iterdir())
    (data / "sparse" / "0" / "depth_params.json").write_text(
        json.dumps({n: {"scale": 1.0, "offset": 0.0} for n in names}))
    result = run_train("-s", str(data), "-m", str(tmp_path / "m"), "-d", "depths")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no depth map for image" in result.stderr.strip().splitlines()[-1]
