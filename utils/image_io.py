"""Image files for renders, ground truth and comparison grids."""
import numpy as np
import torch
from PIL import Image

from utils.system_utils import atomic_path

ERROR_GAIN = 5.0  # the comparison grid shows |render − gt| x 5, so small errors are visible


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] float in [0, 1] → [H, W, 3] uint8, rounding as torchvision's save_image."""
    array = (image.detach().float().cpu() * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    return array.permute(1, 2, 0).numpy()


def save_png(image, path) -> None:
    """Write a [3, H, W] tensor or [H, W, 3] uint8 array as PNG, atomically."""
    array = to_uint8(image) if isinstance(image, torch.Tensor) else image
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def read_image(path) -> torch.Tensor:
    """PNG/JPEG → [3, H, W] float32 in [0, 1]."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def error_map(render: torch.Tensor, gt: torch.Tensor) -> np.ndarray:
    """Per-pixel mean absolute error x ERROR_GAIN through the 'inferno' colour map, uint8."""
    import matplotlib
    error = ((render - gt).abs().mean(0) * ERROR_GAIN).clamp(0, 1).cpu().numpy()
    return (matplotlib.colormaps["inferno"](error)[..., :3] * 255).astype(np.uint8)


def comparison_grid(rows, path) -> None:
    """rows: [(gt, render)] of [3, H, W] tensors → one PNG with a row per view:
    ground truth | render | error."""
    strips = [np.concatenate([to_uint8(gt), to_uint8(render), error_map(render, gt)], axis=1)
              for gt, render in rows]
    save_png(np.concatenate(strips, axis=0), path)
