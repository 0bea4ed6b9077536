"""Dataset readers: COLMAP, NeRF-synthetic ("Blender") and nerfstudio folders → SceneInfo.

Readers only describe the data (poses, intrinsics, file paths, the initial point cloud); images are
decoded later, once, by scene.cameras.loadCam. Every problem found in the data raises DatasetError
naming the file, so train.py can print one line instead of a traceback.

Differences from the original, on purpose: the principal point (cx, cy) is kept and honoured;
distorted camera models stop with an explanation instead of an assertion; a pose with NaN/Inf,
an image listed but missing, a frameless transforms file or an empty point cloud is reported.
"""
import json
import os
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
from PIL import Image as PILImage, UnidentifiedImageError
from plyfile import PlyData, PlyElement

from utils.graphics_utils import BasicPointCloud, focal2fov, fov2focal
from utils.sh_utils import SH2RGB
from utils.system_utils import atomic_path
from utils.colmap_loader import (qvec2rotmat, read_extrinsics_binary, read_extrinsics_text,
                                 read_intrinsics_binary, read_intrinsics_text, read_model_file,
                                 read_points3D_binary, read_points3D_text)
from utils.errors import DatasetError
from .undistortion import MODEL_PARAMS, LensCamera, undistorted_file

LLFF_HOLD = 8  # --eval holds out every 8th image (sorted by name), as the original
RANDOM_INIT_POINTS = 100_000  # NeRF-synthetic without points3d.ply: uniform random points
RANDOM_INIT_HALF_EXTENT = 1.3  # ... in [-1.3, 1.3]^3 (the synthetic scenes fit in it)
EXTENT_MARGIN = 1.1  # cameras_extent = 1.1 x the largest camera distance from their centre
MIN_JITTER_DIST2 = 1e-7  # floor of the squared neighbour distance that sets jitter (as for scales)
UNDISTORTED_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")


class CameraInfo(NamedTuple):
    uid: int
    R: np.ndarray  # [3, 3] camera-to-world rotation (the W2C rotation transposed, as the original)
    T: np.ndarray  # [3] world-to-camera translation
    FovY: float  # radians
    FovX: float
    image_path: str
    image_name: str  # file name without extension
    width: int  # size the intrinsics refer to
    height: int
    cx: float  # principal point in pixels of that size (COLMAP convention: centre = width / 2)
    cy: float
    is_test: bool


class SceneInfo(NamedTuple):
    point_cloud: BasicPointCloud
    train_cameras: List[CameraInfo]
    test_cameras: List[CameraInfo]
    nerf_normalization: dict  # {"translate": [3], "radius": float}
    ply_path: Optional[str]  # the dataset's point-cloud file, or None: points made in memory
    is_nerf_synthetic: bool
    source_files: Tuple[str, ...] = ()  # the dataset's files read, images aside


def getNerfppNorm(cam_infos: List[CameraInfo]) -> dict:
    """Centre of the camera centres and 1.1 x the largest distance from it (cameras_extent)."""
    centers = []
    for cam in cam_infos:
        w2c = np.eye(4)
        w2c[:3, :3] = cam.R.T
        w2c[:3, 3] = cam.T
        centers.append(np.linalg.inv(w2c)[:3, 3])
    centers = np.stack(centers)
    center = centers.mean(0)
    diagonal = float(np.linalg.norm(centers - center, axis=1).max())
    return {"translate": -center, "radius": diagonal * EXTENT_MARGIN}


# --- point clouds --------------------------------------------------------------------------

def fetchPly(path) -> BasicPointCloud:
    try:
        vertices = PlyData.read(path)["vertex"]
        positions = np.stack([vertices["x"], vertices["y"], vertices["z"]], 1)
        colors = np.stack([vertices["red"], vertices["green"], vertices["blue"]], 1) / 255.0
        names = vertices.data.dtype.names
        normals = (np.stack([vertices["nx"], vertices["ny"], vertices["nz"]], 1)
                   if "nx" in names else np.zeros_like(positions))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DatasetError(path, f"not a readable point-cloud PLY ({exc})") from None
    if len(positions) == 0:
        raise DatasetError(path, "the point cloud has no points")
    return BasicPointCloud(positions.astype(np.float32), colors.astype(np.float32),
                           normals.astype(np.float32))


def storePly(path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Write x,y,z,nx,ny,nz (f4, normals zero) and red,green,blue (u1), atomically."""
    dtype = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("nx", "f4"), ("ny", "f4"), ("nz", "f4"),
             ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    elements = np.empty(xyz.shape[0], dtype=dtype)
    for i, name in enumerate(("x", "y", "z")):
        elements[name] = xyz[:, i]
    for name in ("nx", "ny", "nz"):
        elements[name] = 0
    for i, name in enumerate(("red", "green", "blue")):
        elements[name] = rgb[:, i]
    with atomic_path(path) as tmp:
        PlyData([PlyElement.describe(elements, "vertex")]).write(tmp)


def original_random_points(center, half_extent: float) -> BasicPointCloud:
    """RANDOM_INIT_POINTS uniform points in a cube, grey-ish colours (the original's Blender
    initialisation: SH DC drawn from U[0, 1)/255, i.e. colour ~0.5), as the original reads them
    back from the points3d.ply it writes (float32 positions, colours cut to 8 bits); made in
    memory, the dataset is not written."""
    print(f"Generating random point cloud ({RANDOM_INIT_POINTS})...")
    xyz = (np.random.random((RANDOM_INIT_POINTS, 3)) * 2 - 1) * half_extent + np.asarray(center)
    shs = np.random.random((RANDOM_INIT_POINTS, 3)) / 255.0
    colors = (SH2RGB(shs) * 255).astype(np.uint8) / 255.0
    return BasicPointCloud(xyz.astype(np.float32), colors.astype(np.float32),
                           np.zeros((RANDOM_INIT_POINTS, 3), np.float32))


def dataset_points_or_random(ply_path, center, half_extent: float):
    """(points, the file they came from): a points3d.ply the dataset ships (the original's cache
    of its random points included), else the original's random points (no file)."""
    if os.path.exists(ply_path):
        return fetchPly(ply_path), ply_path
    return original_random_points(center, half_extent), None


def random_point_cloud(count: int, center, half_extent: float) -> BasicPointCloud:
    """`count` points uniform in the cube center ± half_extent with uniform random colours
    (--init_type random; numpy's global RNG, which --seed seeds)."""
    xyz = (np.random.random((count, 3)) * 2 - 1) * half_extent + np.asarray(center)
    colors = np.random.random((count, 3))
    return BasicPointCloud(xyz.astype(np.float32), colors.astype(np.float32),
                           np.zeros((count, 3), np.float32))


def jittered_point_cloud(pcd: BasicPointCloud, count: int) -> BasicPointCloud:
    """The points followed by count − len(points) jittered copies of random ones: each copy is its
    source moved by N(0, d²) per axis, d the source's RMS distance to its 3 nearest neighbours,
    with the source's colour (numpy's global RNG, which --seed seeds). A small SfM cloud grows
    this way into a start that covers the same surfaces more densely."""
    import torch
    from simple_knn._C import distCUDA2
    points = np.asarray(pcd.points, dtype=np.float32)
    colors = np.asarray(pcd.colors, dtype=np.float32)
    extra = count - len(points)
    if extra <= 0 or len(points) == 0:
        return pcd
    spacing = np.sqrt(np.maximum(distCUDA2(torch.from_numpy(points)).numpy(), MIN_JITTER_DIST2))
    sources = np.random.randint(0, len(points), extra)
    offsets = np.random.standard_normal((extra, 3)).astype(np.float32) * spacing[sources, None]
    xyz = np.concatenate([points, points[sources] + offsets])
    rgb = np.concatenate([colors, colors[sources]])
    return BasicPointCloud(xyz, rgb, np.zeros_like(xyz))


# --- COLMAP --------------------------------------------------------------------------------

def _pinhole_intrinsics(intr, cameras_file):
    """(fx, fy, cx, cy) of an undistorted camera; a model that can be undistorted at load
    (scene/undistortion.py) returns None; any other model is an error."""
    if intr.model == "SIMPLE_PINHOLE":
        f, cx, cy = intr.params[:3]
        return f, f, cx, cy
    if intr.model == "PINHOLE":
        return tuple(intr.params[:4])
    if intr.model in MODEL_PARAMS:
        return None
    raise DatasetError(cameras_file, (
        f"camera {intr.id} uses the {intr.model} model, which cannot be undistorted here "
        f"({', '.join(UNDISTORTED_MODELS + tuple(MODEL_PARAMS))} can): undistort the photos "
        f"with colmap image_undistorter"))


def _undistorted(image_path: str, lens: LensCamera, undistort_dir: Optional[str], listed_in):
    """(path of the undistorted copy, its PinholeCamera) of a photo taken with `lens`."""
    if not undistort_dir:
        raise DatasetError(listed_in, f"{lens.model} cameras need a folder for undistorted "
                                      f"copies of the photos (a model folder)")
    return undistorted_file(image_path, lens, undistort_dir)


def _check_image_file(path, listed_in) -> None:
    if not os.path.isfile(path):
        raise DatasetError(path, f"image listed in {listed_in} but missing on disk")


def readColmapCameras(cam_extrinsics, cam_intrinsics, images_folder, extrinsics_file,
                      intrinsics_file, test_names=(), undistort_dir=None) -> List[CameraInfo]:
    """undistort_dir: where photos of distorted cameras are undistorted to (once)."""
    cam_infos = []
    for uid, key in enumerate(sorted(cam_extrinsics, key=lambda k: cam_extrinsics[k].name)):
        extr = cam_extrinsics[key]
        if extr.camera_id not in cam_intrinsics:
            raise DatasetError(extrinsics_file, f"image {extr.name} refers to camera "
                                                f"{extr.camera_id}, which {intrinsics_file} lacks")
        intr = cam_intrinsics[extr.camera_id]
        if not (np.all(np.isfinite(extr.qvec)) and np.all(np.isfinite(extr.tvec))
                and np.linalg.norm(extr.qvec) > 0):
            raise DatasetError(extrinsics_file, f"image {extr.name} has a non-finite or zero pose "
                                                f"(qvec {list(extr.qvec)}, tvec {list(extr.tvec)})")
        image_path = os.path.join(images_folder, extr.name)
        _check_image_file(image_path, extrinsics_file)
        intrinsics, width, height = _pinhole_intrinsics(intr, intrinsics_file), intr.width, intr.height
        if intrinsics is None:
            lens = LensCamera(intr.model, intr.width, intr.height, tuple(intr.params))
            image_path, pinhole = _undistorted(image_path, lens, undistort_dir, intrinsics_file)
            intrinsics = (pinhole.fx, pinhole.fy, pinhole.cx, pinhole.cy)
            width, height = pinhole.width, pinhole.height
        fx, fy, cx, cy = intrinsics
        image_name = os.path.splitext(os.path.basename(extr.name))[0]
        cam_infos.append(CameraInfo(
            uid=uid, R=np.transpose(qvec2rotmat(extr.qvec / np.linalg.norm(extr.qvec))),
            T=np.array(extr.tvec, dtype=np.float64),
            FovY=focal2fov(fy, height), FovX=focal2fov(fx, width),
            image_path=image_path, image_name=image_name, width=width, height=height,
            cx=float(cx), cy=float(cy), is_test=extr.name in test_names))
    return cam_infos


def readColmapSceneInfo(path, images, eval, llffhold=LLFF_HOLD, undistort_dir=None) -> SceneInfo:
    sparse = os.path.join(path, "sparse", "0")
    if not os.path.isdir(sparse):
        raise DatasetError(sparse, "missing: a COLMAP dataset keeps its model in sparse/0")
    cam_extrinsics, extrinsics_file = read_model_file(
        sparse, "images", read_extrinsics_binary, read_extrinsics_text)
    cam_intrinsics, intrinsics_file = read_model_file(
        sparse, "cameras", read_intrinsics_binary, read_intrinsics_text)
    if not cam_extrinsics:
        raise DatasetError(extrinsics_file, "no registered images")

    names = sorted(e.name for e in cam_extrinsics.values())
    test_names = set(names[::llffhold]) if eval else set()
    images_folder = os.path.join(path, images or "images")
    if undistort_dir and any(c.model in MODEL_PARAMS for c in cam_intrinsics.values()):
        print(f"Undistorting the photos of distorted cameras into {undistort_dir} (once)")
    cam_infos = readColmapCameras(cam_extrinsics, cam_intrinsics, images_folder, extrinsics_file,
                                  intrinsics_file, test_names, undistort_dir)
    train = [c for c in cam_infos if not c.is_test]
    test = [c for c in cam_infos if c.is_test]

    points, points_file = colmap_points(sparse)
    return SceneInfo(point_cloud=points, train_cameras=train, test_cameras=test,
                     nerf_normalization=getNerfppNorm(train),
                     ply_path=points_file if points_file.endswith(".ply") else None,
                     is_nerf_synthetic=False,
                     source_files=(intrinsics_file, extrinsics_file, points_file))


def colmap_points(sparse):
    """The SfM points of sparse/0: points3D.bin (or .txt), read every time. Where the original
    caches them as sparse/0/points3D.ply inside the dataset and prefers that file ever after
    (re-running SfM then silently keeps the old points, and a read-only dataset fails), the
    dataset is only read here; a points3D.ply is used only when no .bin or .txt is there.
    Returns (points, the file read)."""
    cached = os.path.join(sparse, "points3D.ply")
    has_model = any(os.path.exists(os.path.join(sparse, "points3D" + ext))
                    for ext in (".bin", ".txt"))
    if os.path.exists(cached) and not has_model:
        return fetchPly(cached), cached
    (xyz, rgb, _), points_file = read_model_file(
        sparse, "points3D", read_points3D_binary, read_points3D_text)
    if len(xyz) == 0:
        raise DatasetError(points_file, (
            "no 3D points: 3DGS starts from the structure-from-motion points; re-run the "
            "reconstruction (convert.py) so that points are triangulated"))
    # What the original's round trip through its PLY gives: float32 positions, colours /255.
    return BasicPointCloud(xyz.astype(np.float32), (rgb / 255.0).astype(np.float32),
                           np.zeros((len(xyz), 3), np.float32)), points_file


# --- NeRF-synthetic and nerfstudio (transforms*.json) ----------------------------------------

def _load_transforms(path) -> dict:
    try:
        with open(path) as f:
            contents = json.load(f)
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"not valid JSON ({exc})") from None
    if not isinstance(contents, dict) or not contents.get("frames"):
        raise DatasetError(path, "no frames: 'frames' is missing or empty")
    return contents


def _image_size(path, listed_in):
    _check_image_file(path, listed_in)
    try:
        with PILImage.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(path, f"not a readable image ({exc})") from None


def _pose_from_opengl_c2w(matrix, transforms_file, frame_name):
    """(R, T) in the original's convention from a camera-to-world matrix in OpenGL axes
    (y up, z backward): flip y and z to COLMAP axes, invert."""
    c2w = np.array(matrix, dtype=np.float64)
    if c2w.shape == (3, 4):
        c2w = np.vstack([c2w, [0, 0, 0, 1]])
    if c2w.shape != (4, 4) or not np.all(np.isfinite(c2w)):
        raise DatasetError(transforms_file, f"frame {frame_name}: transform_matrix must be a "
                                            f"finite 4x4 (or 3x4) matrix")
    c2w[:3, 1:3] *= -1
    try:
        w2c = np.linalg.inv(c2w)
    except np.linalg.LinAlgError:
        raise DatasetError(transforms_file, f"frame {frame_name}: singular transform_matrix") \
            from None
    return np.transpose(w2c[:3, :3]), w2c[:3, 3]


def _frame_image_path(base, file_path, extension):
    path = os.path.join(base, file_path)
    if extension and not os.path.splitext(path)[1]:
        path += extension
    return path


def readCamerasFromTransforms(path, transformsfile, white_background=False, extension=".png",
                              is_test=False, uid_offset=0) -> List[CameraInfo]:
    """NeRF-synthetic cameras: one horizontal FoV for all frames, principal point at the centre."""
    transforms_file = os.path.join(path, transformsfile)
    contents = _load_transforms(transforms_file)
    if "camera_angle_x" not in contents:
        raise DatasetError(transforms_file, "camera_angle_x is missing")
    fovx = float(contents["camera_angle_x"])
    cam_infos = []
    for idx, frame in enumerate(contents["frames"]):
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise DatasetError(transforms_file, f"frame {idx} lacks file_path or transform_matrix")
        image_path = _frame_image_path(path, frame["file_path"], extension)
        R, T = _pose_from_opengl_c2w(frame["transform_matrix"], transforms_file, frame["file_path"])
        width, height = _image_size(image_path, transforms_file)
        fovy = focal2fov(fov2focal(fovx, width), height)
        cam_infos.append(CameraInfo(
            uid=uid_offset + idx, R=R, T=T, FovY=fovy, FovX=fovx, image_path=image_path,
            image_name=os.path.splitext(os.path.basename(image_path))[0], width=width,
            height=height, cx=width / 2, cy=height / 2, is_test=is_test))
    return cam_infos


def readNerfSyntheticInfo(path, white_background, eval, extension=".png") -> SceneInfo:
    print("Reading Training Transforms")
    train = readCamerasFromTransforms(path, "transforms_train.json", white_background, extension)
    test = []
    if os.path.exists(os.path.join(path, "transforms_test.json")):
        print("Reading Test Transforms")
        test = readCamerasFromTransforms(path, "transforms_test.json", white_background, extension,
                                         is_test=True, uid_offset=len(train))
    if not eval:
        train, test = train + [c._replace(is_test=False) for c in test], []
    points, ply_path = dataset_points_or_random(os.path.join(path, "points3d.ply"), np.zeros(3),
                                                RANDOM_INIT_HALF_EXTENT)
    transforms = [os.path.join(path, name) for name in ("transforms_train.json",
                                                        "transforms_test.json")]
    return SceneInfo(point_cloud=points, train_cameras=train, test_cameras=test,
                     nerf_normalization=getNerfppNorm(train), ply_path=ply_path,
                     is_nerf_synthetic=True,
                     source_files=tuple(p for p in transforms + [ply_path]
                                        if p and os.path.exists(p)))


NERFSTUDIO_DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")


def nerfstudio_lens(camera_model: str, coefficients: dict, size, intrinsics, listed_in):
    """The LensCamera of nerfstudio's distortion coefficients (k1 k2 k3 k4 p1 p2) for its
    OPENCV (radial polynomial + tangential) or OPENCV_FISHEYE camera_model."""
    fx, fy, cx, cy = intrinsics
    c = coefficients
    if camera_model == "OPENCV_FISHEYE":
        return LensCamera("OPENCV_FISHEYE", *size, (fx, fy, cx, cy, c["k1"], c["k2"], c["k3"],
                                                    c["k4"]))
    if camera_model == "OPENCV":
        if c["k4"] != 0.0:
            raise DatasetError(listed_in, "OPENCV distortion with k4 (an r^8 term) cannot be "
                                          "undistorted here")
        return LensCamera("FULL_OPENCV", *size, (fx, fy, cx, cy, c["k1"], c["k2"], c["p1"],
                                                 c["p2"], c["k3"], 0.0, 0.0, 0.0))
    raise DatasetError(listed_in, f"camera_model {camera_model!r} with distortion coefficients: "
                                  f"only OPENCV and OPENCV_FISHEYE can be undistorted")


def readNerfstudioInfo(path, eval, llffhold=LLFF_HOLD, undistort_dir=None) -> SceneInfo:
    """nerfstudio `transforms.json` (ns-process-data): intrinsics fl_x, fl_y, cx, cy, w, h shared
    at the top level or per frame, OpenGL camera-to-world poses, optional `ply_file_path`."""
    transforms_file = os.path.join(path, "transforms.json")
    contents = _load_transforms(transforms_file)
    frames = sorted(contents["frames"], key=lambda f: str(f.get("file_path", "")))
    cam_infos = []
    for uid, frame in enumerate(frames):
        def intrinsic(key, default=None):
            value = frame.get(key, contents.get(key, default))
            if value is None:
                raise DatasetError(transforms_file, f"frame {frame.get('file_path', uid)}: "
                                                    f"intrinsic '{key}' is missing")
            return float(value)
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise DatasetError(transforms_file, f"frame {uid} lacks file_path or transform_matrix")
        distortion = {k: intrinsic(k, 0.0) for k in NERFSTUDIO_DISTORTION}
        image_path = _frame_image_path(path, frame["file_path"], "")
        width, height = _image_size(image_path, transforms_file)
        w, h = intrinsic("w", width), intrinsic("h", height)
        fx, fy = intrinsic("fl_x"), intrinsic("fl_y", frame.get("fl_x", contents.get("fl_x")))
        cx, cy = intrinsic("cx", w / 2), intrinsic("cy", h / 2)
        image_name = os.path.splitext(os.path.basename(image_path))[0]
        if any(v != 0.0 for v in distortion.values()):
            model = frame.get("camera_model", contents.get("camera_model", "OPENCV"))
            lens = nerfstudio_lens(model, distortion, (int(w), int(h)), (fx, fy, cx, cy),
                                   transforms_file)
            image_path, pinhole = _undistorted(image_path, lens, undistort_dir, transforms_file)
            fx, fy, cx, cy = pinhole.fx, pinhole.fy, pinhole.cx, pinhole.cy
            w, h = pinhole.width, pinhole.height
        R, T = _pose_from_opengl_c2w(frame["transform_matrix"], transforms_file, frame["file_path"])
        cam_infos.append(CameraInfo(
            uid=uid, R=R, T=T, FovY=focal2fov(fy, h), FovX=focal2fov(fx, w),
            image_path=image_path, image_name=image_name,
            width=int(w), height=int(h), cx=cx, cy=cy,
            is_test=eval and uid % llffhold == 0))
    train = [c for c in cam_infos if not c.is_test]
    test = [c for c in cam_infos if c.is_test]
    normalization = getNerfppNorm(train)

    if contents.get("ply_file_path"):
        ply_path = os.path.join(path, contents["ply_file_path"])
        if not os.path.exists(ply_path):
            raise DatasetError(ply_path, f"named by ply_file_path in {transforms_file} but missing")
        points = fetchPly(ply_path)
    else:
        # No points from the capture: random points in the cube the cameras span.
        points, ply_path = dataset_points_or_random(os.path.join(path, "points3d.ply"),
                                                    -normalization["translate"],
                                                    normalization["radius"] / EXTENT_MARGIN)
    return SceneInfo(point_cloud=points, train_cameras=train, test_cameras=test,
                     nerf_normalization=normalization, ply_path=ply_path, is_nerf_synthetic=False,
                     source_files=tuple(p for p in (transforms_file, ply_path) if p))


def read_scene_info(source_path, images, white_background, eval,
                    undistort_dir: Optional[str] = None) -> SceneInfo:
    """Detect the dataset type from the folder's contents and read it. undistort_dir: where
    the photos of distorted cameras are undistorted to (never the dataset)."""
    if not os.path.isdir(source_path):
        raise DatasetError(source_path, "dataset folder does not exist")
    if os.path.exists(os.path.join(source_path, "sparse")):
        return readColmapSceneInfo(source_path, images, eval, undistort_dir=undistort_dir)
    if os.path.exists(os.path.join(source_path, "transforms_train.json")):
        print("Found transforms_train.json file, assuming Blender data set!")
        return readNerfSyntheticInfo(source_path, white_background, eval)
    if os.path.exists(os.path.join(source_path, "transforms.json")):
        print("Found transforms.json file, assuming nerfstudio data set!")
        return readNerfstudioInfo(source_path, eval, undistort_dir=undistort_dir)
    raise DatasetError(source_path, "not a dataset: no sparse/ folder (COLMAP), no "
                                    "transforms_train.json (NeRF-synthetic) and no transforms.json "
                                    "(nerfstudio)")


sceneLoadTypeCallbacks = {
    "Colmap": readColmapSceneInfo,
    "Blender": readNerfSyntheticInfo,
    "Nerfstudio": readNerfstudioInfo,
}
