"""Lens distortion removed at load time, following COLMAP's `image_undistorter` (its defaults:
no blank pixels, scale clamped to [0.2, 2]).

A distorted camera (COLMAP's SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, OPENCV_FISHEYE, or
nerfstudio's OPENCV / OPENCV_FISHEYE coefficients) becomes a PINHOLE camera with the same focal
lengths; its size is the distorted size scaled so that the undistorted image holds no pixel from
outside the photo (the borders of the photo, undistorted, bound the crop), and its principal
point scales with the size. Each pixel of the undistorted image samples the photo bilinearly at
its distorted position (pixel centres at +0.5, as COLMAP), 0 outside, rounded to 8 bits.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Tuple

import numpy as np
from PIL import Image

from utils.errors import DatasetError
from utils.system_utils import atomic_path, write_text_atomic

# COLMAP's parameter order for each model it can undistort.
MODEL_PARAMS = {
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
    "OPENCV_FISHEYE": ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4"),
}
MIN_SCALE, MAX_SCALE = 0.2, 2.0  # image_undistorter's --min_scale, --max_scale
NEWTON_STEPS = 100
NEWTON_TOLERANCE = 1e-14  # squared step norm in normalised coordinates


@dataclass(frozen=True)
class LensCamera:
    """A camera with lens distortion: COLMAP model name, size, parameters in COLMAP's order."""
    model: str
    width: int
    height: int
    params: Tuple[float, ...]

    def __post_init__(self):
        if self.model not in MODEL_PARAMS:
            raise ValueError(f"unknown distorted camera model {self.model}")
        if len(self.params) != len(MODEL_PARAMS[self.model]):
            raise ValueError(f"{self.model} takes {len(MODEL_PARAMS[self.model])} parameters")

    @property
    def named(self) -> Dict[str, float]:
        return dict(zip(MODEL_PARAMS[self.model], self.params))

    @property
    def focal(self) -> Tuple[float, float]:
        p = self.named
        return (p["f"], p["f"]) if "f" in p else (p["fx"], p["fy"])

    @property
    def principal(self) -> Tuple[float, float]:
        p = self.named
        return p["cx"], p["cy"]

    def distortion(self, u: np.ndarray, v: np.ndarray):
        """(du, dv): the model's offset of normalised image coordinates (u, v), as COLMAP's
        Distortion() (the distorted point is (u + du, v + dv))."""
        p = self.named
        u2, v2, uv = u * u, v * v, u * v
        r2 = u2 + v2
        if self.model == "SIMPLE_RADIAL":
            radial = p["k"] * r2
            return u * radial, v * radial
        if self.model == "RADIAL":
            radial = p["k1"] * r2 + p["k2"] * r2 * r2
            return u * radial, v * radial
        if self.model == "OPENCV":
            radial = p["k1"] * r2 + p["k2"] * r2 * r2
            return (u * radial + 2 * p["p1"] * uv + p["p2"] * (r2 + 2 * u2),
                    v * radial + 2 * p["p2"] * uv + p["p1"] * (r2 + 2 * v2))
        if self.model == "FULL_OPENCV":
            r4, r6 = r2 * r2, r2 * r2 * r2
            radial = ((1 + p["k1"] * r2 + p["k2"] * r4 + p["k3"] * r6)
                      / (1 + p["k4"] * r2 + p["k5"] * r4 + p["k6"] * r6))
            return (u * radial + 2 * p["p1"] * uv + p["p2"] * (r2 + 2 * u2) - u,
                    v * radial + 2 * p["p2"] * uv + p["p1"] * (r2 + 2 * v2) - v)
        # OPENCV_FISHEYE: the angle from the axis is what the polynomial distorts.
        r = np.sqrt(r2)
        safe = np.where(r > np.finfo(np.float64).eps, r, 1.0)
        theta = np.arctan(r)
        t2 = theta * theta
        thetad = theta * (1 + p["k1"] * t2 + p["k2"] * t2 ** 2 + p["k3"] * t2 ** 3
                          + p["k4"] * t2 ** 4)
        factor = np.where(r > np.finfo(np.float64).eps, thetad / safe, 1.0)
        return u * factor - u, v * factor - v

    def image_from_camera(self, u: np.ndarray, v: np.ndarray):
        """Pixel coordinates (x, y) of normalised undistorted coordinates (u, v)."""
        du, dv = self.distortion(u, v)
        (fx, fy), (cx, cy) = self.focal, self.principal
        return fx * (u + du) + cx, fy * (v + dv) + cy

    def camera_from_image(self, x: np.ndarray, y: np.ndarray):
        """Normalised undistorted coordinates of pixel coordinates: the distortion inverted by
        Newton's method (central-difference Jacobian, as COLMAP's IterativeUndistortion)."""
        (fx, fy), (cx, cy) = self.focal, self.principal
        target_u, target_v = (np.asarray(x, np.float64) - cx) / fx, (np.asarray(y, np.float64) - cy) / fy
        u, v = target_u.copy(), target_v.copy()
        for _ in range(NEWTON_STEPS):
            step_u = np.maximum(np.finfo(np.float64).eps, np.abs(1e-6 * u))
            step_v = np.maximum(np.finfo(np.float64).eps, np.abs(1e-6 * v))
            du, dv = self.distortion(u, v)
            du_uf, dv_uf = self.distortion(u + step_u, v)
            du_ub, dv_ub = self.distortion(u - step_u, v)
            du_vf, dv_vf = self.distortion(u, v + step_v)
            du_vb, dv_vb = self.distortion(u, v - step_v)
            j00 = 1 + (du_uf - du_ub) / (2 * step_u)
            j01 = (du_vf - du_vb) / (2 * step_v)
            j10 = (dv_uf - dv_ub) / (2 * step_u)
            j11 = 1 + (dv_vf - dv_vb) / (2 * step_v)
            ru, rv = u + du - target_u, v + dv - target_v
            det = j00 * j11 - j01 * j10
            delta_u = (j11 * ru - j01 * rv) / det
            delta_v = (j00 * rv - j10 * ru) / det
            u, v = u - delta_u, v - delta_v
            if np.max(delta_u * delta_u + delta_v * delta_v) < NEWTON_TOLERANCE:
                break
        return u, v


@dataclass(frozen=True)
class PinholeCamera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float


@lru_cache(maxsize=None)  # photos share their camera: its borders are undistorted once
def undistorted_camera(camera: LensCamera) -> PinholeCamera:
    """COLMAP's UndistortCamera with its image_undistorter defaults (blank_pixels 0): the
    same focal lengths; the size scaled (truncated) so that no undistorted pixel falls outside
    the photo; the principal point scaled with the size."""
    (fx, fy), (cx, cy) = camera.focal, camera.principal
    w, h = camera.width, camera.height

    def undistorted(x, y):
        u, v = camera.camera_from_image(x, y)
        return fx * u + cx, fy * v + cy

    rows = np.arange(h) + 0.5
    cols = np.arange(w) + 0.5
    left_x, _ = undistorted(np.full(h, 0.5), rows)
    right_x, _ = undistorted(np.full(h, w - 0.5), rows)
    _, top_y = undistorted(cols, np.full(w, 0.5))
    _, bottom_y = undistorted(cols, np.full(w, h - 0.5))
    # The scale at which the undistorted image has no blank pixel (blank_pixels = 0).
    max_scale_x = max(cx / (cx - left_x.max()), (w - 0.5 - cx) / (right_x.min() - cx))
    max_scale_y = max(cy / (cy - top_y.max()), (h - 0.5 - cy) / (bottom_y.min() - cy))
    scale_x = min(max(1.0 / max_scale_x, MIN_SCALE), MAX_SCALE)
    scale_y = min(max(1.0 / max_scale_y, MIN_SCALE), MAX_SCALE)
    new_w, new_h = int(max(1.0, scale_x * w)), int(max(1.0, scale_y * h))
    return PinholeCamera(new_w, new_h, fx, fy, cx * new_w / w, cy * new_h / h)


def undistort_image(photo: np.ndarray, camera: LensCamera, pinhole: PinholeCamera) -> np.ndarray:
    """[h, w, C] uint8 of the pinhole camera from the [H, W, C] uint8 photo, as COLMAP's
    WarpImageBetweenCameras: warped at the photo's size (the pinhole camera rescaled to it, which
    avoids aliasing), then resized to the pinhole's size with a bilinear filter."""
    height, width = photo.shape[:2]
    sx, sy = width / pinhole.width, height / pinhole.height
    at_photo_size = PinholeCamera(width, height, pinhole.fx * sx, pinhole.fy * sy,
                                  pinhole.cx * sx, pinhole.cy * sy)
    warped = _warp(photo, camera, at_photo_size)
    if (pinhole.width, pinhole.height) == (width, height):
        return warped
    resized = Image.fromarray(warped).resize((pinhole.width, pinhole.height),
                                             Image.Resampling.BILINEAR)
    return np.asarray(resized)


def _warp(photo: np.ndarray, camera: LensCamera, pinhole: PinholeCamera) -> np.ndarray:
    """Each pinhole pixel (centre at +0.5) sampled at its distorted position in the photo."""
    ys, xs = np.mgrid[0:pinhole.height, 0:pinhole.width].astype(np.float64)
    u = (xs + 0.5 - pinhole.cx) / pinhole.fx
    v = (ys + 0.5 - pinhole.cy) / pinhole.fy
    return sample_bilinear(photo, *camera.image_from_camera(u, v))


def sample_bilinear(photo: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[..., C] uint8: the [H, W, C] photo at pixel positions (x, y) (pixel centres at +0.5),
    bilinear, 0 where the sample falls outside, rounded as COLMAP's InterpolateBilinear and
    BitmapColor cast (which read rows bottom-up: valid for 0 <= x - 0.5 < W - 1 and
    0 < y - 0.5 <= H - 1)."""
    x, y = x - 0.5, y - 0.5
    height, width = photo.shape[:2]
    flipped = height - 1 - y
    x0, f0 = np.floor(x).astype(np.int64), np.floor(flipped).astype(np.int64)
    valid = (x0 >= 0) & (x0 + 1 < width) & (f0 >= 0) & (f0 + 1 < height)
    x0c, f0c = np.clip(x0, 0, width - 2), np.clip(f0, 0, height - 2)
    dx, df = (x - x0c)[..., None], (flipped - f0c)[..., None]
    r0, r1 = height - 1 - f0c, height - 1 - (f0c + 1)  # the image rows of f0 and f0 + 1
    source = photo.astype(np.float64)
    top = (1 - dx) * source[r0, x0c] + dx * source[r0, x0c + 1]
    bottom = (1 - dx) * source[r1, x0c] + dx * source[r1, x0c + 1]
    value = (1 - df) * top + df * bottom
    out = np.clip(np.floor(value + 0.5), 0, 255).astype(np.uint8)  # std::round, non-negative
    out[~valid] = 0
    return out


def undistorted_file(photo_path: str, camera: LensCamera, cache_dir: str) -> Tuple[str, PinholeCamera]:
    """(path of the undistorted PNG, its pinhole camera): made once into cache_dir (never the
    dataset), reused while the photo and the camera are unchanged."""
    pinhole = undistorted_camera(camera)
    stat = os.stat(photo_path)
    key = json.dumps([os.path.abspath(photo_path), stat.st_size, stat.st_mtime_ns, camera.model,
                      camera.width, camera.height, list(camera.params)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = os.path.splitext(os.path.basename(photo_path))[0]
    path = os.path.join(cache_dir, f"{stem}.png")
    stamp = path + ".key"
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == digest:
                return path, pinhole
    try:
        with Image.open(photo_path) as image:
            photo = np.asarray(image.convert("RGB"))
    except OSError as exc:
        raise DatasetError(photo_path, f"not a readable image ({exc})") from None
    if photo.shape[:2] != (camera.height, camera.width):
        raise DatasetError(photo_path, f"is {photo.shape[1]}x{photo.shape[0]}, but its camera "
                                       f"is {camera.width}x{camera.height}")
    os.makedirs(cache_dir, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(undistort_image(photo, camera, pinhole)).save(tmp, format="PNG")
    write_text_atomic(stamp, digest)
    return path, pinhole
