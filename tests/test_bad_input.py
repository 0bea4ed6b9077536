"""Broken datasets through train.py: one line naming the file and the problem, a non-zero exit
code and no traceback."""
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from dataset_factory import write_blender_dataset, write_colmap_dataset
from conftest import REPO



def run_train(source, tmp_path, *extra):
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-s", str(source), "-m", str(tmp_path / "out"),
         "--iterations", "2", "--quiet", "--disable_viewer", *extra],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    return result


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def truncate(path: Path, keep: int):
    data = path.read_bytes()
    path.write_bytes(data[:keep])


def colmap(tmp_path):
    root, *_ = write_colmap_dataset(tmp_path / "data", n_images=3)
    return root, root / "sparse" / "0"


def no_sparse(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    return root, ("not a dataset", "sparse")


def truncated(name):
    def make(tmp_path):
        root, sparse = colmap(tmp_path)
        truncate(sparse / name, 30)
        return root, (name, "truncated")
    make.__name__ = f"truncated_{name}"
    return make


def unknown_model(tmp_path):
    root, sparse = colmap(tmp_path)
    data = bytearray((sparse / "cameras.bin").read_bytes())
    data[12:16] = struct.pack("<i", 42)  # model id of the first camera
    (sparse / "cameras.bin").write_bytes(bytes(data))
    return root, ("cameras.bin", "42")


def distorted(tmp_path):
    root, *_ = write_colmap_dataset(tmp_path / "data", n_images=3, model="THIN_PRISM_FISHEYE")
    return root, ("cameras.bin", "THIN_PRISM_FISHEYE", "cannot be undistorted")


def missing_image(tmp_path):
    root, _ = colmap(tmp_path)
    (root / "images" / "view_001.png").unlink()
    return root, ("view_001.png", "missing")


def not_an_image(tmp_path):
    root, _ = colmap(tmp_path)
    (root / "images" / "view_002.png").write_text("this is not a PNG")
    return root, ("view_002.png", "not a readable image")


def nan_pose(tmp_path):
    root, sparse = colmap(tmp_path)
    data = bytearray((sparse / "images.bin").read_bytes())
    data[8 + 4 + 8 * 4:8 + 4 + 8 * 5] = struct.pack("<d", float("nan"))  # tx of the first image
    (sparse / "images.bin").write_bytes(bytes(data))
    return root, ("images.bin", "non-finite")


def no_frames(tmp_path):
    root = write_blender_dataset(tmp_path / "data")
    (root / "transforms_train.json").write_text(json.dumps({"camera_angle_x": 0.7, "frames": []}))
    return root, ("transforms_train.json", "no frames")


def empty_points(tmp_path):
    root, sparse = colmap(tmp_path)
    (sparse / "points3D.bin").write_bytes(struct.pack("<Q", 0))
    return root, ("points3D.bin", "no 3D points")


CASES = [no_sparse, truncated("cameras.bin"), truncated("images.bin"), truncated("points3D.bin"),
         unknown_model, distorted, missing_image, not_an_image, nan_pose, no_frames, empty_points]


@pytest.mark.parametrize("make", CASES, ids=lambda f: f.__name__)
def test_broken_dataset_gives_one_line(make, tmp_path):
    source, fragments = make(tmp_path)
    assert_one_line_error(run_train(source, tmp_path), *fragments)


def test_missing_checkpoint_gives_one_line(tmp_path):
    root, _ = colmap(tmp_path)
    result = run_train(root, tmp_path, "--start_checkpoint", str(tmp_path / "nope.pth"))
    assert_one_line_error(result, "nope.pth", "not found")
