"""Scale and offset that align monocular inverse-depth maps with the COLMAP points (the 2024
original's utils/make_depth_scale.py, same arguments):

    python utils/make_depth_scale.py --base_dir <dataset> --depths_dir <dataset>/depths

For each image, the points it observes give their inverse depth 1/z in its camera; the map is
sampled (bilinearly) at the same keypoints, and a robust fit
    scale = mean|d_colmap − median(d_colmap)| / mean|d_map − median(d_map)|
    offset = median(d_colmap) − median(d_map) · scale
maps the map onto the points (scale = offset = 0 with 10 points or fewer, or a range of 1e-3
or less). Writes <base_dir>/sparse/0/depth_params.json {image name without extension:
{"scale": s, "offset": o}}. Maps: 16-bit PNGs (value / 2^16, as the original writes them) or
.npy float arrays, named like the images.
"""
import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as a script: python utils/make_depth_scale.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.cli import run_main  # noqa: E402
from utils.colmap_loader import (qvec2rotmat, read_extrinsics_binary,  # noqa: E402
                                 read_model_file,
                                 read_extrinsics_text, read_intrinsics_binary,
                                 read_intrinsics_text, read_points3D_binary, read_points3D_text)
from utils.errors import DatasetError, UsageError  # noqa: E402
from utils.system_utils import write_text_atomic  # noqa: E402

PNG_DEPTH_DIVISOR = 2.0 ** 16  # 16-bit PNG value → inverse depth, as the original
MIN_POINTS = 10  # a fit needs more observed points than this
MIN_RANGE = 1e-3  # ... and a wider range of COLMAP inverse depths than this
DEPTH_PARAMS_FILE = "depth_params.json"


def depth_map_path(depths_dir: str, image_name: str) -> str:
    """The map of image `image_name` (no extension): <name>.png, else <name>.npy."""
    for extension in (".png", ".npy"):
        path = os.path.join(depths_dir, image_name + extension)
        if os.path.exists(path):
            return path
    raise DatasetError(os.path.join(depths_dir, image_name + ".png"),
                       f"no depth map for image {image_name} (neither .png nor .npy)")


def read_inverse_depth(path: str, png_divisor: float = PNG_DEPTH_DIVISOR) -> np.ndarray:
    """[H, W] float32 inverse depth from a 16-bit PNG (÷ png_divisor) or a .npy array."""
    try:
        if path.endswith(".npy"):
            values = np.load(path).astype(np.float32)
        else:
            from PIL import Image
            with Image.open(path) as image:
                values = np.asarray(image).astype(np.float32) / png_divisor
    except (OSError, ValueError) as exc:
        raise DatasetError(path, f"not a readable depth map ({exc})") from None
    if values.ndim == 3:
        values = values[..., 0]
    if values.ndim != 2:
        raise DatasetError(path, f"a depth map must be one channel, not shape {values.shape}")
    return values


def sample_bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """image [H, W] at pixel positions xy [K, 2] (x right, y down; pixel centres at integers),
    clamped at the border."""
    h, w = image.shape
    x = np.clip(xy[:, 0], 0, w - 1)
    y = np.clip(xy[:, 1], 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
    bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def fit_scale_offset(inv_colmap: np.ndarray, inv_map: np.ndarray):
    """(scale, offset) with inv_colmap ≈ inv_map · scale + offset (the original's robust fit);
    (0, 0) when there are too few points or too little range."""
    if len(inv_colmap) <= MIN_POINTS or np.ptp(inv_colmap) <= MIN_RANGE:
        return 0.0, 0.0
    t_colmap, t_map = np.median(inv_colmap), np.median(inv_map)
    s_colmap = np.mean(np.abs(inv_colmap - t_colmap))
    s_map = np.mean(np.abs(inv_map - t_map))
    if s_map <= 0:
        return 0.0, 0.0
    scale = s_colmap / s_map
    return float(scale), float(t_colmap - t_map * scale)


def depth_params(base_dir: str, depths_dir: str) -> dict:
    sparse = os.path.join(base_dir, "sparse", "0")
    cameras, _ = read_model_file(sparse, "cameras", read_intrinsics_binary,
                                 read_intrinsics_text)
    images, _ = read_model_file(sparse, "images", read_extrinsics_binary, read_extrinsics_text)
    (xyzs, _, _, ids), _ = read_model_file(sparse, "points3D", read_points3D_binary,
                                           read_points3D_text, with_ids=True)
    index_of = {int(i): k for k, i in enumerate(ids)}
    params = {}
    for image in sorted(images.values(), key=lambda im: im.name):
        name = os.path.splitext(image.name)[0]
        inv_map = read_inverse_depth(depth_map_path(depths_dir, name))
        observed = [(k, index_of[int(p)]) for k, p in enumerate(image.point3D_ids)
                    if int(p) >= 0 and int(p) in index_of]
        keypoints = image.xys[[k for k, _ in observed]] if observed else np.zeros((0, 2))
        points = xyzs[[j for _, j in observed]] if observed else np.zeros((0, 3))
        in_camera = points @ qvec2rotmat(image.qvec).T + np.asarray(image.tvec)
        inv_colmap = 1.0 / np.where(in_camera[:, 2] > 0, in_camera[:, 2], np.inf)
        # The map may be smaller or larger than the photo the keypoints refer to.
        camera = cameras[image.camera_id]
        xy = keypoints * np.array([inv_map.shape[1] / camera.width,
                                   inv_map.shape[0] / camera.height])
        # A keypoint at pixel-edge coordinates (COLMAP: the first pixel covers [0, 1)) is at
        # x - 0.5 in pixel-centre coordinates.
        xy = xy - 0.5
        inside = ((xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] <= inv_map.shape[1] - 1)
                  & (xy[:, 1] <= inv_map.shape[0] - 1) & (inv_colmap > 0))
        scale, offset = fit_scale_offset(inv_colmap[inside],
                                         sample_bilinear(inv_map, xy[inside]))
        params[name] = {"scale": scale, "offset": offset}
    return params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base_dir", required=True, help="the COLMAP dataset (with sparse/0)")
    parser.add_argument("--depths_dir", required=True, help="the inverse-depth maps")
    parser.add_argument("--model_type", default="bin", help="accepted (bin or txt is detected)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.depths_dir):
        raise UsageError(f"--depths_dir {args.depths_dir}: no such folder")
    params = depth_params(args.base_dir, args.depths_dir)
    path = os.path.join(args.base_dir, "sparse", "0", DEPTH_PARAMS_FILE)
    write_text_atomic(path, json.dumps(params, indent=1))
    fitted = sum(1 for p in params.values() if p["scale"] > 0)
    print(f"Wrote {path}: {fitted} of {len(params)} images fitted")
    return 0


if __name__ == "__main__":
    run_main(main)
