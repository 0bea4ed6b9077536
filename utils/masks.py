"""Per-image masks (`--masks DIR`, `--alpha_as_mask`): which pixels of a photo train and are
scored. White (255) = use, black (0) = ignore; grey values weight a pixel in between (an
anti-aliased edge). A mask is kept as uint8 [1, H, W] at its photo's size."""
import os
from typing import Optional

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from utils.errors import DatasetError

def masks_folder(masks: str, source_path: str) -> str:
    """--masks as given (absolute or from the working directory), else under the dataset."""
    if os.path.isdir(masks):
        return masks
    under_source = os.path.join(source_path, masks)
    if os.path.isdir(under_source):
        return under_source
    raise DatasetError(masks, "--masks: no such folder (looked here and under the dataset)")


def mask_file(folder: str, image_path: str) -> str:
    """The mask of an image: <folder>/<stem>.png, or <folder>/<file name>.png (COLMAP's and
    nerfstudio's naming); one clear error when neither is there."""
    name = os.path.basename(image_path)
    candidates = [os.path.join(folder, os.path.splitext(name)[0] + ".png"),
                  os.path.join(folder, name + ".png")]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise DatasetError(candidates[0], f"missing: --masks needs one PNG per image (the mask of "
                                      f"{image_path})")


def load_mask(path: str, size) -> torch.Tensor:
    """[1, H, W] uint8 at size (W, H): the mask's grey levels (an alpha channel, where it has
    one and no colour, counts as the grey level), resized with an area filter."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.format != "PNG":
                raise DatasetError(path, f"a mask must be a PNG, not {image.format}")
            grey = image.getchannel("A") if image.mode == "LA" else image.convert("L")
            if grey.size != tuple(size):
                grey = grey.resize(tuple(size), Image.Resampling.BOX)
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(path, f"not a readable mask image ({exc})") from None
    values = np.array(grey, dtype=np.uint8)  # a writable copy
    if not values.any():
        raise DatasetError(path, "all black: this image would add nothing to training")
    return torch.from_numpy(values)[None]


def combine(*masks: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The product of the masks given ([1, H, W], uint8 0-255 or float 0-1) as float in [0, 1];
    None when none is given."""
    result = None
    for mask in masks:
        if mask is None:
            continue
        weight = mask.float() / 255.0 if mask.dtype == torch.uint8 else mask
        result = weight if result is None else result * weight
    return result
