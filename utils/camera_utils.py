"""Camera helpers below the scene layer: the resolution rules, image decoding and cameras.json
entries (scene.cameras builds Camera objects with them)."""
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from utils.errors import DatasetError
from utils.graphics_utils import fov2focal

DIVISOR_RESOLUTIONS = (1, 2, 4, 8)  # -r N with N in these divides the size; other N > 0 = width
AUTO_MAX_WIDTH = 1600  # -r -1 shrinks wider images to this width
LARGE_IMAGE_NOTICE = ("[ INFO ] Encountered quite large input images (>1.6K pixels width), "
                      "rescaling to 1.6K.\n If this is not desired, please explicitly specify "
                      "'--resolution/-r' as 1")


def target_size(width: int, height: int, resolution: int, resolution_scale: float = 1.0):
    """(width, height) per the original's loadCam rules."""
    if resolution in DIVISOR_RESOLUTIONS:
        div = resolution_scale * resolution
        return round(width / div), round(height / div)
    if resolution == -1:
        global_down = width / AUTO_MAX_WIDTH if width > AUTO_MAX_WIDTH else 1.0
    elif resolution > 0:
        global_down = width / resolution
    else:
        raise ValueError(f"--resolution must be 1, 2, 4, 8, a width in pixels or -1, "
                         f"not {resolution}")
    scale = global_down * resolution_scale
    return int(width / scale), int(height / scale)


def load_image(path, resolution: int, resolution_scale: float, background) -> torch.Tensor:
    """Decode once to [3, H, W] at the size the resolution rules give, resized with PIL's
    default filter: uint8 as decoded, or, where an alpha channel is composited over
    `background` (the original's GS-2023 behaviour; GS-2024 leaves the background unsupervised,
    its issue #1038), float32 in [0, 1]."""
    rgb, alpha = load_image_and_alpha(path, resolution, resolution_scale)
    if alpha is None:
        return rgb
    rgb, alpha = rgb.float() / 255.0, alpha.float() / 255.0
    bg = torch.tensor(background, dtype=torch.float32)[:, None, None]
    return rgb * alpha + bg * (1.0 - alpha)


def load_image_and_alpha(path, resolution: int, resolution_scale: float):
    """(RGB uint8 [3, H, W], alpha uint8 [1, H, W] or None) at the size load_image gives, the
    alpha kept apart instead of composited (--alpha_as_mask)."""
    try:
        with Image.open(path) as image:
            image.load()
            size = target_size(*image.size, resolution, resolution_scale)
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA" if has_alpha else "RGB")
            if image.size != size:
                image = image.resize(size)
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(path, f"not a readable image ({exc})") from None
    array = np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1))
    if not has_alpha:
        return torch.from_numpy(array), None
    return torch.from_numpy(array[:3].copy()), torch.from_numpy(array[3:].copy())


def camera_to_JSON(id, camera):
    """One cameras.json entry in the original's fields (camera: a CameraInfo)."""
    Rt = np.zeros((4, 4))
    Rt[:3, :3] = camera.R.transpose()
    Rt[:3, 3] = camera.T
    Rt[3, 3] = 1.0
    c2w = np.linalg.inv(Rt)
    return {
        "id": id,
        "img_name": camera.image_name,
        "width": camera.width,
        "height": camera.height,
        "position": c2w[:3, 3].tolist(),
        "rotation": [row.tolist() for row in c2w[:3, :3]],
        "fy": fov2focal(camera.FovY, camera.height),
        "fx": fov2focal(camera.FovX, camera.width),
    }
