"""antimatter15's .splat (github.com/antimatter15/splat; read by most WebGL splat viewers).

No header: 32-byte records, little-endian, one per Gaussian —
position 3 × float32, scale 3 × float32 (linear, exp of the log scale), colour 4 × uint8
(r, g, b = (0.5 + C0·f_dc)·255, a = sigmoid(opacity)·255), rotation 4 × uint8 (w, x, y, z of the
unit quaternion as v·128 + 128). No view-dependent colour (the SH bands above 0 are dropped) and
colours are clamped to 0-1. Records are sorted by exp(sum of log scales) · sigmoid(opacity),
largest first, as the format's writers do (viewers stream and draw the big, opaque ones first).
Values are rounded to nearest and clamped to 0-255. Axes: as the PLY (no conversion).
"""
import numpy as np

from utils.errors import DatasetError
from utils.sh_utils import C0
from .data import SplatData, logit, sigmoid, to_uint8, unit_quaternions

RECORD = np.dtype([("xyz", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4),
                   ("rotation", "u1", 4)])
RECORD_BYTES = RECORD.itemsize  # 32


def size_times_opacity_order(data: SplatData) -> np.ndarray:
    importance = np.exp(data.scale.astype(np.float64).sum(1)) * sigmoid(data.opacity)
    return np.argsort(-importance, kind="stable")


def write(data: SplatData, path) -> None:
    data = data.take(size_times_opacity_order(data))
    records = np.empty(len(data), RECORD)
    records["xyz"] = data.xyz
    records["scale"] = np.exp(data.scale.astype(np.float64))
    records["rgba"][:, :3] = to_uint8((0.5 + C0 * data.f_dc.astype(np.float64)) * 255.0)
    records["rgba"][:, 3] = to_uint8(sigmoid(data.opacity) * 255.0)
    records["rotation"] = to_uint8(unit_quaternions(data.rotation) * 128.0 + 128.0)
    records.tofile(path)


def read(path) -> SplatData:
    records = np.fromfile(path, RECORD)
    if len(records) == 0:
        raise DatasetError(path, "not a .splat file: it is empty")
    rgba = records["rgba"].astype(np.float64) / 255.0
    with np.errstate(divide="ignore"):  # a scale that underflowed to 0 reads as log 0 = -inf
        scale = np.log(records["scale"].astype(np.float64))
    return SplatData(
        xyz=records["xyz"], f_dc=(rgba[:, :3] - 0.5) / C0, f_rest=np.zeros((len(records), 0, 3)),
        opacity=logit(rgba[:, 3]), scale=np.maximum(scale, -30.0),
        rotation=(records["rotation"].astype(np.float64) - 128.0) / 128.0)
