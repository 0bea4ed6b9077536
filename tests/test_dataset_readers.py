"""Dataset readers, cameras and Scene on small generated datasets: split and resolution rules,
the principal point, Blender compositing, nerfstudio intrinsics, cameras.json."""
import json
import math
from argparse import Namespace

import numpy as np
import pytest
import torch
from PIL import Image

from arguments import ModelParams
from dataset_factory import (look_at_w2c, orbit_eyes, write_binary, write_blender_dataset,
                             write_colmap_dataset, write_nerfstudio_dataset)
from gaussian_renderer import render
from scene import GaussianModel, Scene
from scene.dataset_readers import (RANDOM_INIT_POINTS, readColmapSceneInfo,
                                   readNerfSyntheticInfo, readNerfstudioInfo,
                                   storePly)
from scene.cameras import loadCam
from utils.camera_utils import LARGE_IMAGE_NOTICE, target_size


def model_params(source, model_path="", **overrides):
    params = ModelParams(source_path=str(source), model_path=str(model_path))
    for key, value in overrides.items():
        setattr(params, key, value)
    return params


def test_colmap_split_every_eighth_by_sorted_name(tmp_path):
    names = [f"img_{i:02d}.png" for i in (5, 3, 17, 0, 9, 12, 1, 8, 16, 2, 11, 4, 7, 6, 10, 15,
                                          13, 14)]
    write_colmap_dataset(tmp_path, names=names)
    info = readColmapSceneInfo(str(tmp_path), "images", eval=True)
    ordered = sorted(n[:-4] for n in names)
    assert [c.image_name for c in info.test_cameras] == ordered[::8]
    assert [c.image_name for c in info.train_cameras] == [n for i, n in enumerate(ordered)
                                                          if i % 8]
    everything = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    assert not everything.test_cameras and len(everything.train_cameras) == len(names)


def test_colmap_text_model_and_simple_pinhole(tmp_path):
    write_colmap_dataset(tmp_path, model="SIMPLE_PINHOLE", text=True)
    info = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    cam = info.train_cameras[0]
    assert cam.FovX == pytest.approx(2 * math.atan(32 / 60))
    assert cam.FovY == pytest.approx(2 * math.atan(24 / 60))
    assert (cam.cx, cam.cy) == (16.0, 12.0)


def test_points_come_from_points3d_bin_and_nothing_is_written(tmp_path):
    """No points3D.ply cache in the dataset (the original writes one and prefers it ever after);
    a new structure-from-motion result changes the points; a dataset that ships only a
    points3D.ply still loads from it."""
    _, cameras, images, points = write_colmap_dataset(tmp_path)
    sparse = tmp_path / "sparse" / "0"
    before = sorted(p.name for p in sparse.iterdir())
    info = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    assert sorted(p.name for p in sparse.iterdir()) == before == \
        ["cameras.bin", "images.bin", "points3D.bin"]
    np.testing.assert_array_equal(info.point_cloud.points,
                                  np.stack([p[1] for p in points]).astype(np.float32))
    np.testing.assert_allclose(info.point_cloud.colors * 255, np.stack([p[2] for p in points]))
    assert info.ply_path is None and info.source_files[-1] == str(sparse / "points3D.bin")
    # A re-run of SfM: other points, even next to a stale points3D.ply.
    storePly(str(sparse / "points3D.ply"), info.point_cloud.points, np.zeros((50, 3)))
    moved = [(i, xyz + 1.0, rgb, err, track) for i, xyz, rgb, err, track in points]
    write_binary(sparse, cameras, images, moved)
    again = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    np.testing.assert_array_equal(again.point_cloud.points,
                                  np.stack([p[1] for p in moved]).astype(np.float32))
    # Only a PLY: the original's layout still loads.
    (sparse / "points3D.bin").unlink()
    only_ply = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    np.testing.assert_array_equal(only_ply.point_cloud.points, info.point_cloud.points)
    assert only_ply.ply_path == str(sparse / "points3D.ply")


def test_scene_extent_is_1_1_times_largest_camera_distance(tmp_path):
    write_colmap_dataset(tmp_path, n_images=6)
    info = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    centres = np.array(orbit_eyes(6))
    expected = 1.1 * np.linalg.norm(centres - centres.mean(0), axis=1).max()
    assert info.nerf_normalization["radius"] == pytest.approx(expected, rel=1e-6)


def pixel_of(camera, point):
    """Where a world point lands, through the Camera's stored (transposed) matrices, in pixel-
    index coordinates (pixel centres at integers, as the rasterizer samples)."""
    clip = torch.tensor([*point, 1.0]) @ camera.full_proj_transform
    ndc = clip[:2] / clip[3]
    return (((ndc[0] + 1) * camera.image_width - 1) / 2).item(), \
        (((ndc[1] + 1) * camera.image_height - 1) / 2).item()


def test_off_centre_principal_point_projection(tmp_path):
    fx, fy, cx, cy = 30.0, 31.0, 20.5, 9.0  # image 32 x 24: centre would be (16, 12)
    write_colmap_dataset(tmp_path, n_images=3, params=[fx, fy, cx, cy])
    info = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    args = Namespace(resolution=1)
    for cam_info, eye in zip(info.train_cameras, orbit_eyes(3)):
        camera = loadCam(args, cam_info, 1.0, [0, 0, 0], "cpu", "cpu")
        R, t = look_at_w2c(eye)
        for point in ([0.1, -0.2, 0.3], [0.5, 0.4, -0.2]):
            Xc = R @ np.asarray(point) + t
            # COLMAP: pixel (u, v) with the top-left pixel's centre at (0.5, 0.5).
            u, v = fx * Xc[0] / Xc[2] + cx, fy * Xc[1] / Xc[2] + cy
            got = pixel_of(camera, point)
            assert got == pytest.approx((u - 0.5, v - 0.5), abs=1e-3)


def test_rendered_splat_lands_on_the_projected_pixel(tmp_path):
    """End to end: a small bright Gaussian rendered through the Camera appears where numpy says,
    with an off-centre principal point."""
    fx, fy, cx, cy = 30.0, 30.0, 22.0, 7.0
    write_colmap_dataset(tmp_path, n_images=1, params=[fx, fy, cx, cy])
    info = readColmapSceneInfo(str(tmp_path), "images", eval=False)
    camera = loadCam(Namespace(resolution=1), info.train_cameras[0], 1.0, [0, 0, 0], "cpu", "cpu")
    R, t = look_at_w2c(orbit_eyes(1)[0])
    point = np.array([0.05, 0.1, 0.15])
    Xc = R @ point + t
    u, v = fx * Xc[0] / Xc[2] + cx - 0.5, fy * Xc[1] / Xc[2] + cy - 0.5
    model = GaussianModel(0)
    model._xyz = torch.tensor(point[None], dtype=torch.float32)
    model._features_dc = torch.full((1, 1, 3), 2.0)
    model._features_rest = torch.zeros(1, 0, 3)
    model._scaling = torch.log(torch.full((1, 3), 0.02))
    model._rotation = torch.tensor([[1.0, 0, 0, 0]])
    model._opacity = torch.tensor([[4.0]])
    pipe = Namespace(debug=False, antialiasing=False, compute_cov3D_python=False,
                     convert_SHs_python=False)
    image = render(camera, model, pipe, torch.zeros(3)).render[0]
    ys, xs = torch.meshgrid(torch.arange(image.shape[0]), torch.arange(image.shape[1]),
                            indexing="ij")
    weight = image / image.sum()
    assert (weight * xs).sum().item() == pytest.approx(u, abs=0.05)
    assert (weight * ys).sum().item() == pytest.approx(v, abs=0.05)


@pytest.mark.parametrize("size,resolution,expected", [
    ((320, 240), -1, (320, 240)),
    ((3200, 1800), -1, (1600, 900)),
    ((320, 240), 2, (160, 120)),
    ((322, 242), 4, (80, 60)),  # round(80.5) = 80 (banker's), round(60.5) = 60
    ((320, 240), 8, (40, 30)),
    ((320, 240), 100, (100, 75)),
    ((333, 250), 100, (100, 75)),  # int(250 / 3.33) = 75: truncation, as the original
])
def test_resolution_rules(size, resolution, expected):
    assert target_size(*size, resolution) == expected


def test_large_images_shrink_with_one_notice(tmp_path, capsys):
    write_colmap_dataset(tmp_path, n_images=2, size=(1700, 20), params=[900, 900, 850, 10])
    scene = Scene(model_params(tmp_path, tmp_path / "out"), GaussianModel(0), shuffle=False)
    assert scene.getTrainCameras()[0].image_width == 1600
    assert capsys.readouterr().out.count(LARGE_IMAGE_NOTICE) == 1


def test_resolution_divisor_gives_smaller_images_same_fov(tmp_path):
    write_colmap_dataset(tmp_path, n_images=2)
    full = Scene(model_params(tmp_path, tmp_path / "a", resolution=1), GaussianModel(0),
                 shuffle=False)
    half = Scene(model_params(tmp_path, tmp_path / "b", resolution=2), GaussianModel(0),
                 shuffle=False)
    a, b = full.getTrainCameras()[0], half.getTrainCameras()[0]
    assert (b.image_width, b.image_height) == (16, 12)
    assert a.FoVx == b.FoVx and a.original_image.dtype == torch.float32
    torch.testing.assert_close(a.full_proj_transform, b.full_proj_transform)


def test_blender_reader_composites_alpha_and_merges_test_without_eval(tmp_path):
    write_blender_dataset(tmp_path, n_train=4, n_test=2, size=(16, 12), fovx=0.7)
    info = readNerfSyntheticInfo(str(tmp_path), white_background=True, eval=True)
    assert len(info.train_cameras) == 4 and len(info.test_cameras) == 2
    cam = info.train_cameras[1]
    assert cam.FovY == pytest.approx(2 * math.atan(12 / 2 / (16 / 2 / math.tan(0.35))))
    assert (cam.cx, cam.cy) == (8.0, 6.0)
    # Camera centre = the eye the frame was written with (OpenGL → COLMAP conversion).
    centre = -cam.R @ cam.T
    np.testing.assert_allclose(centre, orbit_eyes(4, radius=3.0)[1], atol=1e-9)
    merged = readNerfSyntheticInfo(str(tmp_path), white_background=True, eval=False)
    assert len(merged.train_cameras) == 6 and not merged.test_cameras
    assert not (tmp_path / "points3d.ply").exists()  # made in memory, the dataset not written
    cloud = merged.point_cloud
    assert cloud.points.shape == (RANDOM_INIT_POINTS, 3)
    assert np.abs(cloud.points).max() <= 1.3 + 1e-6

    rgba = np.asarray(Image.open(tmp_path / "train" / "r_1.png"), dtype=np.float32) / 255
    expected = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
    camera = loadCam(Namespace(resolution=1), cam, 1.0, [1.0, 1.0, 1.0], "cpu", "cpu")
    np.testing.assert_allclose(camera.original_image.permute(1, 2, 0).numpy(), expected,
                               atol=1e-6)


def test_nerfstudio_shared_and_per_frame_intrinsics_agree(tmp_path):
    shared = readNerfstudioInfo(str(write_nerfstudio_dataset(tmp_path / "a")), eval=True)
    per_frame = readNerfstudioInfo(str(write_nerfstudio_dataset(tmp_path / "b", per_frame=True)),
                                   eval=True)
    assert len(shared.test_cameras) == 2 and len(shared.train_cameras) == 7  # frames 0 and 8
    for a, b in zip(shared.train_cameras, per_frame.train_cameras):
        assert (a.FovX, a.FovY, a.cx, a.cy) == (b.FovX, b.FovY, b.cx, b.cy)
        np.testing.assert_array_equal(a.R, b.R)
    cam = shared.train_cameras[0]
    assert cam.FovX == pytest.approx(2 * math.atan(20 / 50)) and (cam.cx, cam.cy) == (11.0, 7.0)
    np.testing.assert_allclose(-cam.R @ cam.T, orbit_eyes(9, radius=3.0)[1], atol=1e-9)


def test_scene_writes_cameras_json_and_input_ply(tmp_path):
    _, _, _, points = write_colmap_dataset(tmp_path, n_images=10)
    out = tmp_path / "out"
    scene = Scene(model_params(tmp_path, out, eval=True), GaussianModel(3))
    cams = json.loads((out / "cameras.json").read_text())
    assert [c["id"] for c in cams] == list(range(10))
    assert cams[0]["img_name"] == "view_000" and cams[1]["img_name"] == "view_008"  # test first
    assert set(cams[0]) == {"id", "img_name", "width", "height", "position", "rotation", "fx",
                            "fy"}
    assert cams[0]["fx"] == pytest.approx(30.0) and cams[0]["fy"] == pytest.approx(31.0)
    np.testing.assert_allclose(cams[0]["position"], orbit_eyes(10)[0], atol=1e-9)
    # The points of points3D.bin as the original's cached PLY holds them.
    _, xyz, rgb = zip(*[(p[0], p[1], p[2]) for p in points])
    storePly(str(tmp_path / "expected.ply"), np.stack(xyz), np.stack(rgb))
    assert (out / "input.ply").read_bytes() == (tmp_path / "expected.ply").read_bytes()
    assert not (tmp_path / "sparse" / "0" / "points3D.ply").exists()
    assert scene.gaussians.num_points == 50 and scene.cameras_extent > 0
