"""Camera geometry with the original's conventions (COLMAP axes: x right, y down, z forward;
matrices returned untransposed here and transposed by Camera, as the rasterizer expects)."""
import math
from typing import NamedTuple

import numpy as np


class BasicPointCloud(NamedTuple):
    points: np.ndarray  # [N, 3] float
    colors: np.ndarray  # [N, 3] float in [0, 1]
    normals: np.ndarray  # [N, 3] float


def fov2focal(fov: float, pixels: float) -> float:
    return pixels / (2 * math.tan(fov / 2))


def focal2fov(focal: float, pixels: float) -> float:
    return 2 * math.atan(pixels / (2 * focal))


def getWorld2View2(R: np.ndarray, t: np.ndarray, translate=np.zeros(3), scale: float = 1.0):
    """World-to-camera 4x4 from the stored R (camera-to-world rotation, i.e. W2C rotation
    transposed, as the original keeps it) and T (W2C translation), with an optional shift and
    scale of the camera centre."""
    Rt = np.zeros((4, 4))
    Rt[:3, :3] = R.transpose()
    Rt[:3, 3] = t
    Rt[3, 3] = 1.0
    C2W = np.linalg.inv(Rt)
    C2W[:3, 3] = (C2W[:3, 3] + translate) * scale
    return np.float32(np.linalg.inv(C2W))


def getProjectionMatrix(znear: float, zfar: float, fovX: float, fovY: float,
                        principal_ndc=(0.0, 0.0)):
    """Perspective matrix mapping view space to clip space with NDC z in [0, 1] and w = z.

    `principal_ndc` is the principal point's offset from the image centre in NDC units,
    (2·cx/W − 1, 2·cy/H − 1); the original leaves it at 0 (it ignores cx, cy)."""
    P = np.zeros((4, 4), dtype=np.float64)
    P[0, 0] = 1.0 / math.tan(fovX / 2)
    P[1, 1] = 1.0 / math.tan(fovY / 2)
    P[0, 2] = principal_ndc[0]
    P[1, 2] = principal_ndc[1]
    P[3, 2] = 1.0
    P[2, 2] = zfar / (zfar - znear)
    P[2, 3] = -(zfar * znear) / (zfar - znear)
    return P
