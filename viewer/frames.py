"""Frame making as pure functions: a frame's size, the image of a view drawn with given
settings, the inverse-depth picture. No threads and no web server here."""
import numpy as np
import torch

from gaussian_renderer import render
from .settings import FrameSettings

MOVING_MAX_RESOLUTION = 320  # ... and at most this while the camera moves


def frame_size(width: int, height: int, max_side: int):
    """The frame size for a canvas of width x height: the canvas, shrunk to max_side."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame_max_side(settings: FrameSettings, full: bool) -> int:
    """The long side a frame may have: the settings' maximum, less while the camera moves."""
    return settings.max_resolution if full else min(settings.max_resolution,
                                                    MOVING_MAX_RESOLUTION)


def inverse_depth_image(invdepth: torch.Tensor) -> np.ndarray:
    """[1, H, W] alpha-blended inverse depth → [H, W, 3] uint8, near = bright (scaled by the
    99th percentile, so a few very near splats do not turn the rest black)."""
    values = invdepth[0].float()
    top = torch.quantile(values.flatten()[::max(1, values.numel() // 65536)], 0.99).item()
    scaled = (values / max(top, 1e-8)).clamp(0, 1)
    return (scaled[..., None].expand(-1, -1, 3) * 255).round().byte().cpu().numpy()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[3, H, W] float → [H, W, 3] uint8."""
    image = image.clamp(0, 1).mul(255).round().byte()
    return image.permute(1, 2, 0).contiguous().cpu().numpy()


@torch.no_grad()
def render_frame(gaussians, view, pipe, settings: FrameSettings) -> torch.Tensor:
    """What the frame of `view` shows, as the renderer gives it: [3, H, W] colour (with the
    photo's exposure where the settings ask) or [1, H, W] inverse depth. The caller holds the
    model; frame_pixels then needs it no more."""
    background = torch.tensor(settings.background, dtype=torch.float32,
                              device=gaussians.device)
    out = render(view, gaussians, pipe, background)
    if settings.mode == "inverse depth":
        return out.depth
    image = out.render
    exposures = gaussians.exposures
    if exposures is not None and settings.exposure_photo is not None and settings.use_exposure:
        image = exposures.apply(image, settings.exposure_photo)
    return image


def frame_pixels(shown: torch.Tensor, settings: FrameSettings) -> np.ndarray:
    """[H, W, 3] uint8 of render_frame's tensor in the settings' mode."""
    if settings.mode == "inverse depth":
        return inverse_depth_image(shown)
    return to_uint8(shown)
