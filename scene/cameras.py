"""A training/test view: its image and its matrices in the layout the rasterizer expects, and
its construction from a dataset reader's CameraInfo (the original's loadCam)."""
import copy
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import torch

from utils.camera_utils import (AUTO_MAX_WIDTH, LARGE_IMAGE_NOTICE, load_image,
                                load_image_and_alpha)
from utils.masks import combine, load_mask, mask_file
from utils.make_depth_scale import depth_map_path, read_inverse_depth
from utils.graphics_utils import getProjectionMatrix, getWorld2View2

ZNEAR = 0.01  # projection-matrix clip planes of the original (culling uses the rasterizer's 0.2)
ZFAR = 100.0


class Camera:
    """Matrices are stored transposed (row-vector convention), as in the original:
    `world_view_transform` = W2Cᵀ, `full_proj_transform` = (P·W2C)ᵀ, both [4, 4] float32 on
    `device`; `original_image` is [3, H, W] float32 in [0, 1] on `data_device`.

    Unlike the original, the principal point is honoured: `principal_ndc` shifts the projection
    (0, 0 is the image centre)."""

    def __init__(self, colmap_id, R, T, FoVx, FoVy, image: torch.Tensor, image_name: str,
                 uid: int, principal_ndc=(0.0, 0.0), trans=np.zeros(3), scale: float = 1.0,
                 device="cpu", data_device="cpu", half: str = "",
                 mask: Optional[torch.Tensor] = None):
        self.colmap_id = colmap_id
        self.uid = uid
        self.R, self.T = R, T
        self.FoVx, self.FoVy = FoVx, FoVy
        self.image_name = image_name
        self.principal_ndc = tuple(float(v) for v in principal_ndc)
        # The photo as decoded: uint8 where it is exactly that (nothing composited), a quarter
        # of float32's bytes for a large capture; original_image gives float32 in [0, 1] when a
        # step asks (the same values: x / 255 in float32).
        if image.dtype == torch.uint8:
            self._photo = image.to(data_device)
        else:
            self._photo = image.to(device=data_device, dtype=torch.float32).clamp(0.0, 1.0)
        self.image_height, self.image_width = self._photo.shape[1:]
        self.zfar, self.znear = ZFAR, ZNEAR
        self.trans, self.scale = trans, scale

        set_view_matrices(self, device)
        # --train_test_exp: a test image trains on its left half ("left") and is scored on its
        # right half ("right"). --masks / --alpha_as_mask: `mask` uint8 [1, H, W], 255 where
        # the photo counts. alpha_mask [1, H, W] in [0, 1] is their product (None: no mask):
        # what the loss multiplies the render and the photo by.
        self.half = half
        self.mask = None if mask is None else mask.to(data_device)
        # -d: the monocular inverse depth aligned to the SfM points [1, H, W], or None; an
        # unreliable camera (scale far from the median) has no depth loss.
        self.invdepthmap = None
        self.depth_reliable = False
        self.alpha_mask = combine(
            half_mask(half, self.image_height, self.image_width, data_device) if half else None,
            self.mask)
        self._scaled = None  # (factor, view): the last view at_scale made
        # 1/this of the dataset camera's width and height (at_scale); the renderer keeps its
        # low-pass filter the same in full-resolution pixels (gaussian_renderer.raster_settings)
        self.resolution_factor = 1

    @property
    def original_image(self) -> torch.Tensor:
        """[3, H, W] float32 in [0, 1]."""
        photo = self._photo
        return photo.float() / 255.0 if photo.dtype == torch.uint8 else photo

    def at_scale(self, factor: float) -> "Camera":
        """This view at 1/factor of the width and height (coarse-to-fine training,
        scene/resolution.py): the same field of view and principal point, so the intrinsics
        scale exactly; the photo, the depth map and the mask shrunk by an area filter, once per
        factor (only the last factor's copy is kept). Factor 1 is this camera itself."""
        if factor == 1:
            self._scaled = None  # the schedule has passed every coarser level
            return self
        if self._scaled is not None and self._scaled[0] == factor:
            return self._scaled[1]
        view = copy.copy(self)
        size = (max(1, round(self.image_height / factor)), max(1, round(self.image_width / factor)))
        view._photo = area_resize(self._photo, size)
        view.image_height, view.image_width = size
        view.resolution_factor = factor
        if self.mask is not None:
            view.mask = area_resize(self.mask, size)
        view.alpha_mask = combine(
            half_mask(self.half, *size, self._photo.device) if self.half else None, view.mask)
        if self.invdepthmap is not None:
            view.invdepthmap = area_resize(self.invdepthmap, size)
        view._scaled = None
        self._scaled = (factor, view)
        return view

    def training_pair(self, image: torch.Tensor):
        """(render, photo) as the loss compares them: both masked where the camera has a mask
        (the original masks only the render, so the masked half still adds a constant and, near
        the edge, SSIM gradients from pixels the render may not use)."""
        gt = self.original_image.to(image.device)
        if self.alpha_mask is None:
            return image, gt
        mask = self.alpha_mask.to(image.device)
        return image * mask, gt * mask


def half_mask(half: str, height: int, width: int, device) -> torch.Tensor:
    """[1, H, W]: 1 on the "left" or "right" half (--train_test_exp), 0 on the other."""
    mask = torch.zeros(1, height, width, device=device)
    middle = width // 2
    if half == "left":
        mask[..., :middle] = 1.0
    else:
        mask[..., middle:] = 1.0
    return mask


@lru_cache(maxsize=16)  # one pair of sizes per level: the photo, mask and depth map share them
def area_weights(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in]: the share of each new pixel's footprint, [i·r, (i + 1)·r) with r = n_in /
    n_out, that input pixel j covers. Rows sum to 1. (Cached: callers must not change it.)"""
    ratio = n_in / n_out
    low = torch.arange(n_out, dtype=torch.float64)[:, None] * ratio
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(low + ratio, j + 1) - torch.maximum(low, j)).clamp(min=0)
    return (overlap / ratio).float()


def area_resize(image: torch.Tensor, size) -> torch.Tensor:
    """[C, H, W] → [C, h, w] by averaging what each new pixel covers, partly covered pixels
    weighted by their share (an exact area filter for any ratio; torch's "area" mode averages
    whole pixels, so at ratios like 1.41 it would shift and widen each footprint). uint8 stays
    uint8 (rounded), anything else becomes float32."""
    height, width = image.shape[-2:]
    rows = area_weights(height, size[0]).to(image.device)
    columns = area_weights(width, size[1]).to(image.device)
    shrunk = rows @ image.float() @ columns.T
    return shrunk.round().to(torch.uint8) if image.dtype == torch.uint8 else shrunk


def scored_part(image: torch.Tensor, train_test_exp: bool) -> torch.Tensor:
    """What evaluation, render.py and metrics compare: with --train_test_exp the right half."""
    return image[..., image.shape[-1] // 2:] if train_test_exp else image


def score_weight(camera, train_test_exp: bool) -> Optional[torch.Tensor]:
    """[1, h, w] in [0, 1] over the scored part: the camera's --masks / --alpha_as_mask mask,
    or None (every pixel counts)."""
    if camera.mask is None:
        return None
    return scored_part(camera.mask.float() / 255.0, train_test_exp)


def set_view_matrices(camera, device="cpu") -> None:
    """The matrices render() reads, from the camera's R, T, FoVx, FoVy, principal_ndc, trans and
    scale: world_view_transform, projection_matrix, full_proj_transform (transposed, as the
    original) and camera_center."""
    w2c = torch.tensor(getWorld2View2(camera.R, camera.T, camera.trans, camera.scale),
                       dtype=torch.float32)
    proj = torch.tensor(getProjectionMatrix(ZNEAR, ZFAR, camera.FoVx, camera.FoVy,
                                            camera.principal_ndc), dtype=torch.float32)
    camera.world_view_transform = w2c.T.contiguous().to(device)
    camera.projection_matrix = proj.T.contiguous().to(device)
    camera.full_proj_transform = (camera.world_view_transform
                                  @ camera.projection_matrix).contiguous()
    camera.camera_center = torch.linalg.inv(camera.world_view_transform)[3, :3].contiguous()


class ViewCamera:
    """A view without a photo (the original's MiniCam): what render() needs to draw the model
    from camera-to-world rotation `c2w_rotation` [3, 3] (COLMAP/OpenCV axes: x right, y down,
    z forward) at `position` [3], with vertical field of view `fov_y` (radians), at
    width x height pixels."""

    def __init__(self, c2w_rotation, position, fov_y: float, width: int, height: int,
                 device="cpu"):
        R = np.asarray(c2w_rotation, dtype=np.float64)
        T = -R.T @ np.asarray(position, dtype=np.float64)
        self.image_width, self.image_height = int(width), int(height)
        self.FoVy = float(fov_y)
        self.FoVx = 2.0 * math.atan(math.tan(self.FoVy / 2) * width / height)
        self.R, self.T = R, T
        self.principal_ndc, self.trans, self.scale = (0.0, 0.0), np.zeros(3), 1.0
        set_view_matrices(self, device)


def camera_pose(camera):
    """(camera-to-world rotation [3, 3], centre [3]) of a Camera or ViewCamera."""
    R = np.asarray(camera.R, dtype=np.float64)
    return R, -R @ np.asarray(camera.T, dtype=np.float64)


def aligned_inverse_depth(path: str, size, params: Optional[dict], median_scale: float):
    """(inverse depth [1, H, W] at `size` (W, H), reliable) from a map file and its depth_params
    entry, as the original's Camera: resized (bilinear), negatives set to 0, reliable unless
    the scale is outside [0.2, 5] × the median scale, then · scale + offset when scale > 0."""
    values = torch.from_numpy(read_inverse_depth(path))[None, None]
    width, height = size
    if values.shape[-2:] != (height, width):
        values = torch.nn.functional.interpolate(values, size=(height, width), mode="bilinear",
                                                 align_corners=False)
    values = values[0].clamp_min(0.0)
    if params is None:
        return values, False
    scale, offset = params["scale"], params["offset"]
    reliable = 0.2 * median_scale <= scale <= 5.0 * median_scale and scale > 0
    if scale > 0:
        values = values * scale + offset
    return values, reliable


@dataclass(frozen=True)
class CameraExtras:
    """What a camera may carry besides its photo. half: --train_test_exp's "left" (trains) or
    "right" (scored) half of a test image, "" for all of it; depths: None, or (folder of maps,
    depth_params dict, median scale) for -d; masks: the --masks folder ("" for none);
    alpha_as_mask: an RGBA photo's alpha is its mask instead of being composited."""
    half: str = ""
    depths: Optional[tuple] = None
    masks: str = ""
    alpha_as_mask: bool = False


def loadCam(args, cam_info, resolution_scale, background, device, data_device,
            extras: CameraExtras = CameraExtras()):
    """The original's loadCam: a Camera with the photo decoded at the flags' resolution."""
    half, depths = extras.half, extras.depths
    mask = None
    if extras.alpha_as_mask:
        image, mask = load_image_and_alpha(cam_info.image_path, args.resolution, resolution_scale)
    else:
        image = load_image(cam_info.image_path, args.resolution, resolution_scale, background)
    if extras.masks:
        size = (image.shape[2], image.shape[1])
        user_mask = load_mask(mask_file(extras.masks, cam_info.image_path), size)
        mask = user_mask if mask is None else combine(mask, user_mask).mul(255).round().to(
            torch.uint8)
    # The principal point in NDC is resolution-independent: take it from the intrinsics' size.
    principal_ndc = (2 * cam_info.cx / cam_info.width - 1, 2 * cam_info.cy / cam_info.height - 1)
    camera = Camera(colmap_id=cam_info.uid, R=cam_info.R, T=cam_info.T, FoVx=cam_info.FovX,
                    FoVy=cam_info.FovY, image=image, image_name=cam_info.image_name,
                    uid=cam_info.uid, principal_ndc=principal_ndc, device=device,
                    data_device=data_device, half=half, mask=mask)
    if depths is not None:
        folder, params, median_scale = depths
        invdepth, camera.depth_reliable = aligned_inverse_depth(
            depth_map_path(folder, cam_info.image_name),
            (camera.image_width, camera.image_height), params.get(cam_info.image_name),
            median_scale)
        camera.invdepthmap = invdepth.to(data_device)
    return camera


def cameraList_from_camInfos(cam_infos, resolution_scale, args, background, device, data_device,
                             extras: CameraExtras = CameraExtras()):
    if args.resolution == -1 and any(c.width > AUTO_MAX_WIDTH for c in cam_infos):
        print(LARGE_IMAGE_NOTICE)
    return [loadCam(args, c, resolution_scale, background, device, data_device, extras)
            for c in cam_infos]
