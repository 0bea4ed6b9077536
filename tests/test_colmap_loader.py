"""COLMAP readers: binary and text forms of the same model parse to identical records; every
camera model parses; broken files raise DatasetError naming the file."""
import struct
from pathlib import Path

import numpy as np
import pytest

from scene.colmap_loader import (CAMERA_MODEL_IDS, CAMERA_MODEL_NAMES, qvec2rotmat,
                                 read_extrinsics_binary, read_extrinsics_text,
                                 read_intrinsics_binary, read_intrinsics_text,
                                 read_points3D_binary, read_points3D_text, rotmat2qvec)
from utils.errors import DatasetError
from dataset_factory import write_binary, write_text

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "garden_dev" / "sparse" / "0"


def make_model(seed=0):
    """A small random model with one camera of every COLMAP model."""
    rng = np.random.default_rng(seed)
    cameras = []
    for cam_id, model in sorted(CAMERA_MODEL_IDS.items()):
        cameras.append((cam_id + 1, model.model_name, 640 + cam_id, 480 - cam_id,
                        rng.uniform(-1, 500, model.num_params)))
    images = []
    for image_id in range(1, 6):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        n_pts = int(rng.integers(0, 5))
        images.append((image_id, q, rng.normal(size=3), int(rng.integers(1, len(cameras) + 1)),
                       f"img_{image_id:03d}.png", rng.uniform(0, 600, (n_pts, 2)),
                       rng.integers(-1, 50, n_pts)))
    points = []
    for point_id in range(1, 21):
        track = rng.integers(0, 30, (int(rng.integers(1, 4)), 2))
        points.append((point_id, rng.normal(size=3), rng.integers(0, 256, 3), float(rng.uniform(0, 2)),
                       track))
    return cameras, images, points


@pytest.fixture
def model_dir(tmp_path):
    model = make_model()
    write_binary(tmp_path, *model)
    write_text(tmp_path, *model)
    return tmp_path, model


def assert_same_records(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        for field in a[key]._fields:
            va, vb = getattr(a[key], field), getattr(b[key], field)
            if isinstance(va, np.ndarray):
                np.testing.assert_array_equal(va, vb, err_msg=field)
            else:
                assert va == vb, field


def test_binary_and_text_parse_identically(model_dir):
    folder, (cameras, images, points) = model_dir
    cams_b = read_intrinsics_binary(folder / "cameras.bin")
    cams_t = read_intrinsics_text(folder / "cameras.txt")
    assert_same_records(cams_b, cams_t)
    assert {c.model for c in cams_b.values()} == set(CAMERA_MODEL_NAMES)
    for cam_id, model, w, h, params in cameras:
        assert cams_b[cam_id].model == model and cams_b[cam_id].width == w
        np.testing.assert_array_equal(cams_b[cam_id].params, params)
    imgs_b = read_extrinsics_binary(folder / "images.bin")
    imgs_t = read_extrinsics_text(folder / "images.txt")
    assert_same_records(imgs_b, imgs_t)
    for image_id, q, t, cam_id, name, xys, ids in images:
        rec = imgs_b[image_id]
        assert rec.name == name and rec.camera_id == cam_id
        np.testing.assert_array_equal(rec.qvec, q)
        np.testing.assert_array_equal(rec.xys, xys.reshape(-1, 2))
        np.testing.assert_array_equal(rec.point3D_ids, ids)
    pb = read_points3D_binary(folder / "points3D.bin")
    pt = read_points3D_text(folder / "points3D.txt")
    for xb, xt in zip(pb, pt):
        np.testing.assert_array_equal(xb, xt)
    np.testing.assert_array_equal(pb[0], np.array([p[1] for p in points]))
    assert pb[1].dtype == np.uint8 and pb[2].shape == (len(points), 1)


@pytest.mark.parametrize("name,reader", [("cameras.bin", read_intrinsics_binary),
                                         ("images.bin", read_extrinsics_binary),
                                         ("points3D.bin", read_points3D_binary)])
def test_truncated_binary_files(model_dir, name, reader):
    folder, _ = model_dir
    path = folder / name
    data = path.read_bytes()
    for cut in (3, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(DatasetError, match="truncated") as info:
            reader(path)
        assert name in str(info.value)


def test_unknown_camera_model_id(tmp_path):
    path = tmp_path / "cameras.bin"
    path.write_bytes(struct.pack("<QiiQQ", 1, 1, 42, 10, 10) + b"\x00" * 32)
    with pytest.raises(DatasetError, match="unknown camera model id 42"):
        read_intrinsics_binary(path)


def test_bad_text_lines(tmp_path):
    path = tmp_path / "cameras.txt"
    path.write_text("1 PINHOLE 10 10 1 2 3\n")
    with pytest.raises(DatasetError, match="line 1: PINHOLE has 4 parameters"):
        read_intrinsics_text(path)
    path.write_text("1 NOT_A_MODEL 10 10 1\n")
    with pytest.raises(DatasetError, match="unknown camera model 'NOT_A_MODEL'"):
        read_intrinsics_text(path)


def test_quaternion_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        R = qvec2rotmat(q)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(rotmat2qvec(R), q, atol=1e-10)


def test_sample_scene_parses():
    cams = read_intrinsics_binary(SAMPLE / "cameras.bin")
    imgs = read_extrinsics_binary(SAMPLE / "images.bin")
    xyz, rgb, err = read_points3D_binary(SAMPLE / "points3D.bin")
    assert len(imgs) == 48 and all(c.model == "PINHOLE" for c in cams.values())
    assert len(xyz) > 100 and np.isfinite(xyz).all()
