"""Readers for COLMAP sparse models (cameras, images, points3D) in binary and text form.

Function names, record types and fields are the original's (`read_extrinsics_binary`,
`Camera.params`, `Image.qvec`, ...), so code written against the original keeps working. Unlike the
original, a truncated or malformed file raises DatasetError naming the file and the problem.
"""
import collections
import os
import struct

import numpy as np

from utils.errors import DatasetError

CameraModel = collections.namedtuple("CameraModel", ["model_id", "model_name", "num_params"])
Camera = collections.namedtuple("Camera", ["id", "model", "width", "height", "params"])
BaseImage = collections.namedtuple(
    "Image", ["id", "qvec", "tvec", "camera_id", "name", "xys", "point3D_ids"])
Point3D = collections.namedtuple(
    "Point3D", ["id", "xyz", "rgb", "error", "image_ids", "point2D_idxs"])


class Image(BaseImage):
    def qvec2rotmat(self):
        return qvec2rotmat(self.qvec)


# Every camera model COLMAP defines (src/colmap/sensor/models.h).
CAMERA_MODELS = {
    CameraModel(0, "SIMPLE_PINHOLE", 3),
    CameraModel(1, "PINHOLE", 4),
    CameraModel(2, "SIMPLE_RADIAL", 4),
    CameraModel(3, "RADIAL", 5),
    CameraModel(4, "OPENCV", 8),
    CameraModel(5, "OPENCV_FISHEYE", 8),
    CameraModel(6, "FULL_OPENCV", 12),
    CameraModel(7, "FOV", 5),
    CameraModel(8, "SIMPLE_RADIAL_FISHEYE", 4),
    CameraModel(9, "RADIAL_FISHEYE", 5),
    CameraModel(10, "THIN_PRISM_FISHEYE", 12),
    CameraModel(11, "RAD_TAN_THIN_PRISM_FISHEYE", 16),
}
CAMERA_MODEL_IDS = {m.model_id: m for m in CAMERA_MODELS}
CAMERA_MODEL_NAMES = {m.model_name: m for m in CAMERA_MODELS}


def qvec2rotmat(qvec):
    """World-to-camera rotation of a COLMAP quaternion (w, x, y, z)."""
    w, x, y, z = qvec
    return np.array([
        [1 - 2 * y ** 2 - 2 * z ** 2, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
        [2 * x * y + 2 * w * z, 1 - 2 * x ** 2 - 2 * z ** 2, 2 * y * z - 2 * w * x],
        [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x ** 2 - 2 * y ** 2]])


def rotmat2qvec(R):
    """Inverse of qvec2rotmat (w >= 0), via the eigenvector of the symmetric K matrix."""
    Rxx, Ryx, Rzx, Rxy, Ryy, Rzy, Rxz, Ryz, Rzz = np.asarray(R, dtype=np.float64).flat
    K = np.array([
        [Rxx - Ryy - Rzz, 0, 0, 0],
        [Ryx + Rxy, Ryy - Rxx - Rzz, 0, 0],
        [Rzx + Rxz, Rzy + Ryz, Rzz - Rxx - Ryy, 0],
        [Ryz - Rzy, Rzx - Rxz, Rxy - Ryx, Rxx + Ryy + Rzz]]) / 3.0
    eigvals, eigvecs = np.linalg.eigh(K)
    qvec = eigvecs[[3, 0, 1, 2], np.argmax(eigvals)]
    return -qvec if qvec[0] < 0 else qvec


# --- binary -------------------------------------------------------------------------------------

class _BinaryReader:
    """Sequential little-endian reads that fail with the file name and offset when short."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self.data = f.read()
        except OSError as e:
            raise DatasetError(path, f"cannot read: {e.strerror}") from None
        self.offset = 0

    def _take(self, size: int, what: str) -> int:
        """Advances past `size` bytes and returns where they start."""
        if self.offset + size > len(self.data):
            raise DatasetError(self.path, f"truncated: {what} needs {size} bytes at offset "
                                          f"{self.offset}, but the file has {len(self.data)}")
        start = self.offset
        self.offset += size
        return start

    def read(self, fmt: str, what: str):
        start = self._take(struct.calcsize("<" + fmt), what)
        return struct.unpack_from("<" + fmt, self.data, start)

    def read_array(self, dtype, count: int, what: str):
        dtype = np.dtype(dtype)
        start = self._take(dtype.itemsize * count, what)
        return np.frombuffer(self.data, dtype=dtype, count=count, offset=start)

    def read_string(self, what: str) -> str:
        end = self.data.find(b"\x00", self.offset)
        if end < 0:
            raise DatasetError(self.path, f"truncated: {what} has no terminating NUL byte")
        raw = self.data[self.offset:end]
        self.offset = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DatasetError(self.path, f"{what} is not valid UTF-8: {raw[:40]!r}") from None

    def expect_end(self):
        if self.offset != len(self.data):
            raise DatasetError(self.path, f"{len(self.data) - self.offset} unexpected bytes after "
                                          f"the last record (offset {self.offset})")


def _camera_model(path, model_id):
    model = CAMERA_MODEL_IDS.get(model_id)
    if model is None:
        raise DatasetError(path, f"unknown camera model id {model_id} "
                                 f"(COLMAP defines 0..{max(CAMERA_MODEL_IDS)})")
    return model


def read_intrinsics_binary(path_to_model_file):
    r = _BinaryReader(path_to_model_file)
    cameras = {}
    (num_cameras,) = r.read("Q", "the camera count")
    for _ in range(num_cameras):
        camera_id, model_id, width, height = r.read("iiQQ", "a camera record")
        model = _camera_model(path_to_model_file, model_id)
        params = r.read_array("<f8", model.num_params, f"camera {camera_id}'s parameters")
        cameras[camera_id] = Camera(id=camera_id, model=model.model_name, width=width,
                                    height=height, params=np.array(params))
    r.expect_end()
    return cameras


def read_extrinsics_binary(path_to_model_file):
    r = _BinaryReader(path_to_model_file)
    images = {}
    (num_images,) = r.read("Q", "the image count")
    for _ in range(num_images):
        values = r.read("idddddddi", "an image record")
        image_id, qvec, tvec, camera_id = values[0], values[1:5], values[5:8], values[8]
        name = r.read_string(f"image {image_id}'s name")
        (num_points2D,) = r.read("Q", f"image {image_id}'s point count")
        rec = r.read_array([("x", "<f8"), ("y", "<f8"), ("id", "<i8")], num_points2D,
                           f"image {image_id}'s 2D points")
        images[image_id] = Image(id=image_id, qvec=np.array(qvec), tvec=np.array(tvec),
                                 camera_id=camera_id, name=name,
                                 xys=np.stack([rec["x"], rec["y"]], 1),
                                 point3D_ids=np.array(rec["id"]))
    r.expect_end()
    return images


def read_model_file(folder, stem, read_binary, read_text, **kwargs):
    """(contents, path) of `<stem>.bin` if present, else `<stem>.txt` (an unreadable .bin is an
    error, not a silent fallback to a possibly stale .txt); kwargs go to the reader."""
    binary, text = os.path.join(folder, stem + ".bin"), os.path.join(folder, stem + ".txt")
    if os.path.exists(binary):
        return read_binary(binary, **kwargs), binary
    if os.path.exists(text):
        return read_text(text, **kwargs), text
    raise DatasetError(binary, f"missing (neither {stem}.bin nor {stem}.txt is in {folder})")


def read_points3D_binary(path_to_model_file, with_ids: bool = False):
    """-> (xyzs [N, 3] float64, rgbs [N, 3] uint8, errors [N, 1] float64), as the original;
    with_ids: also the point ids [N] int64 (what images' point3D_ids refer to)."""
    r = _BinaryReader(path_to_model_file)
    (num_points,) = r.read("Q", "the point count")
    xyzs = np.empty((num_points, 3))
    rgbs = np.empty((num_points, 3), dtype=np.uint8)
    errors = np.empty((num_points, 1))
    ids = np.empty(num_points, dtype=np.int64)
    for i in range(num_points):
        values = r.read("QdddBBBdQ", "a point record")
        ids[i] = values[0]
        xyzs[i] = values[1:4]
        rgbs[i] = values[4:7]
        errors[i] = values[7]
        track_length = values[8]
        r.read_array("<i4", 2 * track_length, f"point {values[0]}'s track")
    r.expect_end()
    return (xyzs, rgbs, errors, ids) if with_ids else (xyzs, rgbs, errors)


# --- text ---------------------------------------------------------------------------------------

def _data_lines(path):
    """(line number, stripped line) for every non-empty, non-comment line."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise DatasetError(path, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise DatasetError(path, "is not a UTF-8 text file") from None
    return [(n, line.strip()) for n, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")]


def _parse(path, lineno, converter, text, what):
    try:
        return converter(text)
    except ValueError:
        raise DatasetError(path, f"line {lineno}: {what} {text!r} is not a number") from None


def read_intrinsics_text(path):
    cameras = {}
    for lineno, line in _data_lines(path):
        elems = line.split()
        if len(elems) < 4:
            raise DatasetError(path, f"line {lineno}: expected CAMERA_ID MODEL WIDTH HEIGHT "
                                     f"PARAMS..., got {line!r}")
        camera_id = _parse(path, lineno, int, elems[0], "camera id")
        model = CAMERA_MODEL_NAMES.get(elems[1])
        if model is None:
            raise DatasetError(path, f"line {lineno}: unknown camera model {elems[1]!r}")
        params = np.array([_parse(path, lineno, float, e, "parameter") for e in elems[4:]])
        if len(params) != model.num_params:
            raise DatasetError(path, f"line {lineno}: {model.model_name} has {model.num_params} "
                                     f"parameters, got {len(params)}")
        cameras[camera_id] = Camera(id=camera_id, model=model.model_name,
                                    width=_parse(path, lineno, int, elems[2], "width"),
                                    height=_parse(path, lineno, int, elems[3], "height"),
                                    params=params)
    return cameras


def read_extrinsics_text(path):
    images = {}
    # Each image takes two lines and the second (its 2D points) may be blank, so the raw lines
    # are walked here: an image line is always followed by exactly one points line.
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = f.read().splitlines()
    except OSError as e:
        raise DatasetError(path, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise DatasetError(path, "is not a UTF-8 text file") from None
    n = 0
    while n < len(raw):
        line = raw[n].strip()
        n += 1
        if not line or line.startswith("#"):
            continue
        lineno = n
        elems = line.split()
        if len(elems) < 10:
            raise DatasetError(path, f"line {lineno}: expected IMAGE_ID QW QX QY QZ TX TY TZ "
                                     f"CAMERA_ID NAME, got {line!r}")
        image_id = _parse(path, lineno, int, elems[0], "image id")
        qvec = np.array([_parse(path, lineno, float, e, "quaternion entry") for e in elems[1:5]])
        tvec = np.array([_parse(path, lineno, float, e, "translation entry") for e in elems[5:8]])
        camera_id = _parse(path, lineno, int, elems[8], "camera id")
        name = " ".join(elems[9:])
        points_line = raw[n].split() if n < len(raw) else []
        n += 1
        if len(points_line) % 3:
            raise DatasetError(path, f"line {lineno + 1}: 2D points come in (X, Y, POINT3D_ID) "
                                     f"triples, got {len(points_line)} values")
        xs = [_parse(path, lineno + 1, float, e, "2D point") for e in points_line]
        xys = np.array(xs, dtype=np.float64).reshape(-1, 3)
        images[image_id] = Image(id=image_id, qvec=qvec, tvec=tvec, camera_id=camera_id,
                                 name=name, xys=xys[:, :2],
                                 point3D_ids=xys[:, 2].astype(np.int64))
    return images


def read_points3D_text(path, with_ids: bool = False):
    """-> (xyzs [N, 3] float64, rgbs [N, 3] uint8, errors [N, 1] float64), as the original;
    with_ids: also the point ids [N] int64."""
    rows = _data_lines(path)
    ids = np.empty(len(rows), dtype=np.int64)
    xyzs = np.empty((len(rows), 3))
    rgbs = np.empty((len(rows), 3), dtype=np.uint8)
    errors = np.empty((len(rows), 1))
    for i, (lineno, line) in enumerate(rows):
        elems = line.split()
        if len(elems) < 8 or (len(elems) - 8) % 2:
            raise DatasetError(path, f"line {lineno}: expected POINT3D_ID X Y Z R G B ERROR "
                                     f"TRACK..., got {len(elems)} values")
        xyzs[i] = [_parse(path, lineno, float, e, "coordinate") for e in elems[1:4]]
        rgbs[i] = [_parse(path, lineno, int, e, "colour") for e in elems[4:7]]
        errors[i] = _parse(path, lineno, float, elems[7], "error")
        ids[i] = _parse(path, lineno, int, elems[0], "point id")
    return (xyzs, rgbs, errors, ids) if with_ids else (xyzs, rgbs, errors)
