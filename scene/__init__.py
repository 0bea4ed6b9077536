"""Scene: the dataset's cameras (train/test) and the GaussianModel initialised from its points or
loaded from a saved iteration."""
import json
import os
import random
import shutil
from dataclasses import replace
from functools import cached_property

import numpy as np
import torch

from utils.camera_utils import camera_to_JSON
from utils.errors import DatasetError
from utils.make_depth_scale import DEPTH_PARAMS_FILE
from utils.masks import masks_folder
from utils.model_folder import ModelFolder
from utils.system_utils import atomic_path, write_text_atomic
from .camera_path import camera_path
from .cameras import CameraExtras, cameraList_from_camInfos
from .exposure import Exposures
from .dataset_readers import jittered_point_cloud, random_point_cloud, read_scene_info, storePly
from .gaussian_model import GaussianModel
from .strategies import Initialisation


def background_color(white: bool, device="cpu") -> torch.Tensor:
    """[3] float32: white with -w, else black."""
    return torch.tensor([1.0, 1.0, 1.0] if white else [0.0, 0.0, 0.0], dtype=torch.float32,
                        device=device)


def read_depth_setup(args):
    """(maps folder, depth_params, median of the positive scales) for -d, from
    <source>/<depths> and <source>/sparse/0/depth_params.json (utils/make_depth_scale.py)."""
    folder = os.path.join(args.source_path, args.depths)
    if not os.path.isdir(folder):
        raise DatasetError(folder, "-d/--depths: no such folder of depth maps")
    path = os.path.join(args.source_path, "sparse", "0", DEPTH_PARAMS_FILE)
    try:
        with open(path) as f:
            params = json.load(f)
        scales = [float(p["scale"]) for p in params.values()]
    except FileNotFoundError:
        raise DatasetError(path, "missing: run python utils/make_depth_scale.py --base_dir "
                                 f"{args.source_path} --depths_dir {folder}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DatasetError(path, f"not a depth_params file ({exc})") from None
    positive = [s for s in scales if s > 0]
    median = float(np.median(positive)) if positive else 0.0
    return folder, params, median


class Scene:
    def __init__(self, args, gaussians: GaussianModel, load_iteration=None, shuffle=True,
                 resolution_scales=(1.0,), device="cpu", init: Initialisation = Initialisation()):
        """args: ModelParams. load_iteration: None = initialise from the dataset's points (or
        random points, as `init` says: the strategy's choice), -1 = the latest saved iteration,
        N = that one. device: where matrices live; args.data_device (or `device` when empty):
        where the decoded images live."""
        self.model_path = args.model_path
        self.folder = ModelFolder(self.model_path)
        self.gaussians = gaussians
        self.loaded_iter = None
        if load_iteration is not None:
            self.loaded_iter = self.folder.resolve_iteration(load_iteration)
            print(f"Loading trained model at iteration {self.loaded_iter}")

        undistort_dir = getattr(args, "undistorted", "") or self.folder.file("undistorted")
        scene_info = read_scene_info(args.source_path, args.images, args.white_background,
                                     args.eval, undistort_dir)
        # Every dataset file this scene was read from (config.json records their sizes and
        # modification times, so a model can be traced to the data it saw).
        self.dataset_files = list(scene_info.source_files) + [
            cam.image_path for cam in scene_info.train_cameras + scene_info.test_cameras]
        if not self.loaded_iter:
            os.makedirs(self.model_path, exist_ok=True)
            # The starting points: a copy of the dataset's file, as the original, or the
            # points read from points3D.bin / made at random, written here (never into the
            # dataset).
            if scene_info.ply_path is not None:
                with atomic_path(self.folder.input_ply) as tmp:
                    shutil.copyfile(scene_info.ply_path, tmp)
            else:
                cloud = scene_info.point_cloud
                storePly(self.folder.input_ply, cloud.points,
                         np.round(cloud.colors.astype(np.float64) * 255.0))
            json_cams = [camera_to_JSON(i, cam) for i, cam in
                         enumerate(scene_info.test_cameras + scene_info.train_cameras)]
            write_text_atomic(self.folder.cameras_json, json.dumps(json_cams))

        train_infos, test_infos = list(scene_info.train_cameras), list(scene_info.test_cameras)
        if shuffle:
            random.shuffle(train_infos)  # multi-resolution consistent random shuffling
            random.shuffle(test_infos)
        self.cameras_extent = scene_info.nerf_normalization["radius"]

        # The one background colour: RGBA images are composited on it, and training and
        # rendering draw on it.
        self.background = background_color(args.white_background, device)
        background = self.background.tolist()
        data_device = args.data_device or device
        self.train_cameras, self.test_cameras = {}, {}
        # --train_test_exp (GS-2024): the test images also train, on their left half, and are
        # scored on their right half.
        self.train_test_exp = bool(getattr(args, "train_test_exp", False))
        depths = read_depth_setup(args) if getattr(args, "depths", "") and not load_iteration \
            else None
        masks = (masks_folder(args.masks, args.source_path) if getattr(args, "masks", "")
                 else "")
        masking = CameraExtras(masks=masks, alpha_as_mask=getattr(args, "alpha_as_mask", False))
        for scale in resolution_scales:
            print("Loading Training Cameras")
            self.train_cameras[scale] = cameraList_from_camInfos(
                train_infos, scale, args, background, device, data_device,
                replace(masking, depths=depths))
            if self.train_test_exp:
                self.train_cameras[scale] += cameraList_from_camInfos(
                    test_infos, scale, args, background, device, data_device,
                    replace(masking, half="left", depths=depths))
            print("Loading Test Cameras")
            self.test_cameras[scale] = cameraList_from_camInfos(
                test_infos, scale, args, background, device, data_device,
                replace(masking, half="right" if self.train_test_exp else ""))

        if self.loaded_iter:
            # The saved PLY, or an exported web format that replaced it (export.py).
            self.gaussians.load_ply(self.folder.point_cloud_file(self.loaded_iter))
            if self.train_test_exp and os.path.exists(self.folder.exposure_json):
                self.gaussians.exposures = Exposures.from_file(self.folder.exposure_json, device)
        else:
            points = scene_info.point_cloud
            if init.points == "random":  # in the cube the cameras span
                norm = scene_info.nerf_normalization
                points = random_point_cloud(init.num_random, -norm["translate"], norm["radius"])
            elif len(points.points) < init.min_points:
                points = jittered_point_cloud(points, init.min_points)
            self.gaussians.create_from_pcd(points, scene_info.train_cameras, self.cameras_extent,
                                           init_opacity=init.opacity,
                                           init_scale_factor=init.scale_factor)
            if self.train_test_exp:  # one exposure per training image (test images included)
                self.gaussians.exposures = Exposures(
                    [cam.image_name for cam in self.train_cameras[resolution_scales[0]]], device)

    @cached_property
    def camera_path(self):
        """Where MCMC keeps the training cameras' path clear (--path_clearance); computed on
        first use, so rendering and scoring never build it."""
        return camera_path(self.getTrainCameras())

    def save(self, iteration: int) -> None:
        self.gaussians.save_ply(self.folder.ply_path(iteration))
        if self.gaussians.exposures is not None:
            self.gaussians.exposures.save(self.folder.exposure_json)

    def getTrainCameras(self, scale=1.0):
        return self.train_cameras[scale]

    def getTestCameras(self, scale=1.0):
        return self.test_cameras[scale]
