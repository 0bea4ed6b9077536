"""Small datasets written from scratch for tests: COLMAP (binary and text), NeRF-synthetic and
nerfstudio folders with real image files and known cameras."""
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from scene.colmap_loader import CAMERA_MODEL_NAMES, rotmat2qvec


def write_binary(folder: Path, cameras, images, points):
    with open(folder / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for cam_id, model, w, h, params in cameras:
            f.write(struct.pack("<iiQQ", cam_id, CAMERA_MODEL_NAMES[model].model_id, w, h))
            f.write(np.asarray(params, "<f8").tobytes())
    with open(folder / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for image_id, q, t, cam_id, name, xys, ids in images:
            f.write(struct.pack("<idddddddi", image_id, *q, *t, cam_id))
            f.write(name.encode() + b"\x00")
            f.write(struct.pack("<Q", len(xys)))
            for (x, y), pid in zip(xys, ids):
                f.write(struct.pack("<ddq", x, y, pid))
    with open(folder / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(points)))
        for pid, xyz, rgb, err, track in points:
            f.write(struct.pack("<QdddBBBdQ", pid, *xyz, *rgb, err, len(track)))
            f.write(np.asarray(track, "<i4").tobytes())


def write_text(folder: Path, cameras, images, points):
    with open(folder / "cameras.txt", "w") as f:
        f.write("# Camera list with one line of data per camera:\n")
        for cam_id, model, w, h, params in cameras:
            f.write(f"{cam_id} {model} {w} {h} " + " ".join(repr(float(p)) for p in params) + "\n")
    with open(folder / "images.txt", "w") as f:
        f.write("# Image list with two lines of data per image:\n")
        for image_id, q, t, cam_id, name, xys, ids in images:
            f.write(" ".join(str(v) for v in [image_id, *map(repr, map(float, q)),
                                                *map(repr, map(float, t)), cam_id, name]) + "\n")
            f.write(" ".join(f"{x!r} {y!r} {int(p)}" for (x, y), p in zip(xys.tolist(), ids)) + "\n")
    with open(folder / "points3D.txt", "w") as f:
        f.write("# 3D point list with one line of data per point:\n")
        for pid, xyz, rgb, err, track in points:
            f.write(" ".join(str(v) for v in [pid, *map(repr, map(float, xyz)), *map(int, rgb),
                                                repr(err), *np.asarray(track).ravel().tolist()]) + "\n")


def look_at_w2c(eye, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)):
    """World-to-camera (R, t) in COLMAP axes (x right, y down, z forward)."""
    eye = np.asarray(eye, float)
    forward = np.asarray(target, float) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    return R, -R @ eye


def orbit_eyes(n, radius=4.0, height=1.0):
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [(radius * np.cos(a), radius * np.sin(a), height) for a in angles]


def random_image(path: Path, size, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    channels = len(mode)
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array if channels > 1 else array[..., 0], mode).save(path)
    return array


def write_colmap_dataset(root: Path, n_images=10, size=(32, 24), model="PINHOLE", params=None,
                         n_points=50, names=None, text=False):
    """An orbit of cameras around random points; returns (root, cameras, images, points)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "sparse" / "0").mkdir(parents=True, exist_ok=True)
    w, h = size
    if params is None:
        params = {"PINHOLE": [30.0, 31.0, w / 2 + 1.5, h / 2 - 2.0],
                  "SIMPLE_PINHOLE": [30.0, w / 2, h / 2]}.get(model)
        if params is None:
            params = [30.0] * CAMERA_MODEL_NAMES[model].num_params
    cameras = [(1, model, w, h, np.asarray(params, float))]
    names = names or [f"view_{i:03d}.png" for i in range(n_images)]
    images = []
    for i, (name, eye) in enumerate(zip(names, orbit_eyes(len(names)))):
        R, t = look_at_w2c(eye)
        images.append((i + 1, rotmat2qvec(R), t, 1, name, np.zeros((0, 2)), np.zeros(0, int)))
        random_image(root / "images" / name, size, seed=i)
    rng = np.random.default_rng(1)
    points = [(i + 1, rng.uniform(-1, 1, 3), rng.integers(0, 256, 3), 0.5, np.zeros((1, 2), int))
              for i in range(n_points)]
    (write_text if text else write_binary)(root / "sparse" / "0", cameras, images, points)
    return root, cameras, images, points


def opengl_c2w(eye):
    """Camera-to-world 4x4 in OpenGL axes (y up, z backward) for a camera at eye looking at 0."""
    R, t = look_at_w2c(eye)
    c2w = np.eye(4)
    c2w[:3, :3] = R.T
    c2w[:3, 3] = eye
    c2w[:3, 1:3] *= -1
    return c2w


def write_blender_dataset(root: Path, n_train=4, n_test=2, size=(16, 12), fovx=0.7):
    root = Path(root)
    for split, count in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for i, eye in enumerate(orbit_eyes(count, radius=3.0)):
            random_image(root / split / f"r_{i}.png", size, seed=100 * (split == "test") + i,
                         mode="RGBA")
            frames.append({"file_path": f"./{split}/r_{i}",
                           "transform_matrix": opengl_c2w(eye).tolist()})
        (root / f"transforms_{split}.json").write_text(
            json.dumps({"camera_angle_x": fovx, "frames": frames}))
    return root


def write_nerfstudio_dataset(root: Path, n_images=9, size=(20, 16), per_frame=False,
                             intrinsics=(25.0, 26.0, 11.0, 7.0)):
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    fx, fy, cx, cy = intrinsics
    shared = {"fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": size[0], "h": size[1]}
    frames = []
    for i, eye in enumerate(orbit_eyes(n_images, radius=3.0)):
        random_image(root / "images" / f"frame_{i:05d}.jpg", size, seed=i)
        frame = {"file_path": f"images/frame_{i:05d}.jpg",
                 "transform_matrix": opengl_c2w(eye).tolist()}
        if per_frame:
            frame.update(shared)
        frames.append(frame)
    contents = {"camera_model": "OPENCV", "frames": frames}
    if not per_frame:
        contents.update(shared)
    (root / "transforms.json").write_text(json.dumps(contents))
    return root
