"""Distorted cameras load as PINHOLE cameras with undistorted photos, as COLMAP's
image_undistorter makes them (compared with the colmap command where it is installed), cached
outside the dataset."""
import math
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE
from dataset_factory import write_binary, write_colmap_dataset, write_nerfstudio_dataset
from scene.colmap_loader import read_intrinsics_binary
from scene.dataset_readers import read_scene_info
from scene.undistortion import (MODEL_PARAMS, LensCamera, undistort_image, undistorted_camera,
                                undistorted_file)
from utils.errors import DatasetError

LENSES = {
    "SIMPLE_RADIAL": (250.0, 160.5, 119.5, -0.08),
    "RADIAL": (250.0, 160.5, 119.5, -0.1, 0.02),
    "OPENCV": (255.0, 245.0, 158.0, 121.0, -0.12, 0.03, 0.001, -0.002),
    "FULL_OPENCV": (255.0, 245.0, 158.0, 121.0, -0.1, 0.02, 0.001, -0.001, 0.004, 0.01, 0.0, 0.0),
    "OPENCV_FISHEYE": (230.0, 232.0, 160.0, 120.0, 0.05, -0.01, 0.002, -0.0005),
}


@pytest.mark.parametrize("model", sorted(MODEL_PARAMS))
def test_undistorting_a_distorted_point_gives_it_back(model):
    lens = LensCamera(model, 320, 240, LENSES[model])
    u, v = np.meshgrid(np.linspace(-0.6, 0.6, 13), np.linspace(-0.45, 0.45, 11))
    x, y = lens.image_from_camera(u, v)
    back_u, back_v = lens.camera_from_image(x, y)
    np.testing.assert_allclose(back_u, u, atol=1e-10)
    np.testing.assert_allclose(back_v, v, atol=1e-10)


def test_the_pinhole_crop_holds_no_pixel_from_outside_the_photo():
    lens = LensCamera("OPENCV", 320, 240, LENSES["OPENCV"])
    pinhole = undistorted_camera(lens)
    assert (pinhole.fx, pinhole.fy) == (255.0, 245.0)  # focal lengths kept, as COLMAP
    # Barrel distortion: the undistorted borders bulge out, the largest blank-free crop is wider.
    assert pinhole.width > 320 and pinhole.height > 240
    assert pinhole.cx == pytest.approx(158.0 * pinhole.width / 320)
    photo = np.full((240, 320, 3), 200, np.uint8)
    undistorted = undistort_image(photo, lens, pinhole)
    assert undistorted.shape == (pinhole.height, pinhole.width, 3)
    assert (undistorted > 190).mean() > 0.99  # (almost) no blank pixel


def write_distorted_colmap(root, model, n_images=3):
    """The sample's first photos (as PNG) declared as taken with `model`'s lens."""
    _, cameras, images, points = write_colmap_dataset(root, n_images=n_images, size=(320, 240))
    for image in images:
        source = SAMPLE / "images" / f"img_{image[0] - 1:03d}.jpg"
        Image.open(source).convert("RGB").save(root / "images" / image[4])
    cameras = [(1, model, 320, 240, np.asarray(LENSES[model]))]
    write_binary(root / "sparse" / "0", cameras, images, points)
    return root


@pytest.mark.skipif(shutil.which("colmap") is None, reason="needs the colmap command")
@pytest.mark.parametrize("model", ["OPENCV", "OPENCV_FISHEYE", "SIMPLE_RADIAL"])
def test_same_intrinsics_and_images_as_colmaps_image_undistorter(tmp_path, model):
    root = write_distorted_colmap(tmp_path / "data", model)
    out = tmp_path / "colmap"
    subprocess.run(["colmap", "image_undistorter", "--image_path", str(root / "images"),
                    "--input_path", str(root / "sparse" / "0"), "--output_path", str(out),
                    "--output_type", "COLMAP"], check=True, capture_output=True)
    (theirs,) = read_intrinsics_binary(str(out / "sparse" / "cameras.bin")).values()
    info = read_scene_info(str(root), "images", False, False, str(tmp_path / "cache"))
    assert theirs.model == "PINHOLE"
    for cam in info.train_cameras:
        assert (cam.width, cam.height) == (theirs.width, theirs.height)
        fx, fy, cx, cy = theirs.params
        np.testing.assert_allclose([cam.cx, cam.cy], [cx, cy], rtol=1e-6)
        np.testing.assert_allclose(
            [cam.width / 2 / math.tan(cam.FovX / 2), cam.height / 2 / math.tan(cam.FovY / 2)],
            [fx, fy], rtol=1e-6)
        ours = np.asarray(Image.open(cam.image_path), np.float64)
        colmaps = np.asarray(Image.open(out / "images" / (cam.image_name + ".png")).convert("RGB"),
                             np.float64)
        assert np.abs(ours - colmaps).mean() <= 2.0
        assert str(tmp_path / "cache") in cam.image_path  # not in the dataset


def test_undistorted_copies_are_made_once_and_redone_when_the_photo_changes(tmp_path):
    root = write_distorted_colmap(tmp_path / "data", "OPENCV", n_images=1)
    photo = root / "images" / "view_000.png"
    lens = LensCamera("OPENCV", 320, 240, LENSES["OPENCV"])
    path, _ = undistorted_file(str(photo), lens, str(tmp_path / "cache"))
    stamp = (tmp_path / "cache" / "view_000.png").stat().st_mtime_ns
    assert undistorted_file(str(photo), lens, str(tmp_path / "cache"))[0] == path
    assert (tmp_path / "cache" / "view_000.png").stat().st_mtime_ns == stamp
    Image.new("RGB", (320, 240), (9, 9, 9)).save(photo)
    undistorted_file(str(photo), lens, str(tmp_path / "cache"))
    assert np.asarray(Image.open(path)).max() <= 9


def test_nerfstudio_opencv_coefficients_are_undistorted(tmp_path):
    root = write_nerfstudio_dataset(tmp_path / "ns")
    import json
    contents = json.loads((root / "transforms.json").read_text())
    contents.update(k1=-0.05, p1=0.001, camera_model="OPENCV")
    (root / "transforms.json").write_text(json.dumps(contents))
    with pytest.raises(DatasetError, match="folder for undistorted"):
        read_scene_info(str(root), "images", False, False)
    info = read_scene_info(str(root), "images", False, False, str(tmp_path / "cache"))
    cam = info.train_cameras[0]
    assert str(tmp_path / "cache") in cam.image_path
    size = Image.open(cam.image_path).size
    assert size == (cam.width, cam.height)
    contents["camera_model"] = "EQUIRECTANGULAR"
    (root / "transforms.json").write_text(json.dumps(contents))
    with pytest.raises(DatasetError, match="only OPENCV and OPENCV_FISHEYE"):
        read_scene_info(str(root), "images", False, False, str(tmp_path / "cache2"))


@pytest.mark.parametrize("model", ["OPENCV", "OPENCV_FISHEYE"])
def test_a_nerfstudio_capture_undistorts_like_the_same_colmap_camera(tmp_path, model):
    """The same photos and lens as transforms.json (nerfstudio's k1 k2 k3 k4 p1 p2) and as
    cameras.bin (checked against the colmap command above) load to the same pinhole cameras and
    the same undistorted images."""
    import json
    colmap_root = write_distorted_colmap(tmp_path / "colmap", model)
    from_colmap = read_scene_info(str(colmap_root), "images", False, False,
                                  str(tmp_path / "cache_colmap"))
    ns_root = write_nerfstudio_dataset(tmp_path / "ns", n_images=3, size=(320, 240))
    contents = json.loads((ns_root / "transforms.json").read_text())
    fx, fy, cx, cy, *k = LENSES[model]
    coefficients = ({"k1": k[0], "k2": k[1], "p1": k[2], "p2": k[3]} if model == "OPENCV"
                    else {"k1": k[0], "k2": k[1], "k3": k[2], "k4": k[3]})
    contents.update(fl_x=fx, fl_y=fy, cx=cx, cy=cy, camera_model=model, **coefficients)
    (ns_root / "transforms.json").write_text(json.dumps(contents))
    for i, cam in enumerate(sorted(from_colmap.train_cameras, key=lambda c: c.image_name)):
        shutil.copy(cam.image_path.replace(str(tmp_path / "cache_colmap"),
                                           str(colmap_root / "images")),
                    ns_root / "images" / f"frame_{i:05d}.jpg")
    # (PNG data under the .jpg names the factory wrote: Pillow reads by content)
    from_ns = read_scene_info(str(ns_root), "images", False, False, str(tmp_path / "cache_ns"))
    for a, b in zip(sorted(from_colmap.train_cameras, key=lambda c: c.image_name),
                    sorted(from_ns.train_cameras, key=lambda c: c.image_name)):
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_allclose([a.FovX, a.FovY, a.cx, a.cy], [b.FovX, b.FovY, b.cx, b.cy],
                                   rtol=1e-12)
        np.testing.assert_array_equal(np.asarray(Image.open(a.image_path)),
                                      np.asarray(Image.open(b.image_path)))
