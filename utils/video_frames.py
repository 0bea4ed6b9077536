"""Photos from a video (convert.py --video): the video cut into N equal windows of frames, and
from each window the sharpest frame (the largest variance of the Laplacian of its grey image:
motion blur and defocus flatten it), written as JPEG for the usual COLMAP pipeline."""
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from utils.errors import DatasetError

JPEG_QUALITY = 95


def sharpness(frame: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the frame's grey levels ([H, W, 3] uint8)."""
    grey = frame.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    laplacian = (4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1]
                 - grey[1:-1, :-2] - grey[1:-1, 2:])
    return float(laplacian.var())


def count_frames(video: str) -> int:
    import imageio_ffmpeg
    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(video)
    except (RuntimeError, OSError, IOError) as exc:
        raise DatasetError(video, f"not a readable video ({str(exc).strip().splitlines()[-1]})") \
            from None
    return frames


def extract_sharpest(video: str, count: int, out_dir: str, quiet: bool = False) -> list:
    """Write the sharpest frame of each of `count` equal windows of the video to out_dir as
    frame_00000.jpg...; returns the chosen frame numbers (0-based, in order)."""
    import imageio_ffmpeg
    if not os.path.isfile(video):
        raise DatasetError(video, "missing: no such video file")
    total = count_frames(video)
    if total < count:
        raise DatasetError(video, f"has {total} frames, too few for --video_frames {count} "
                                  f"(ask for at most {total})")
    os.makedirs(out_dir, exist_ok=True)
    chosen = []
    best = (-1.0, None, -1)  # (sharpness, frame, number) of the current window
    window = 0
    reader = imageio_ffmpeg.read_frames(video)
    try:
        meta = next(reader)
        width, height = meta["size"]
        for number, data in enumerate(tqdm(reader, total=total, desc="Reading the video",
                                           unit="frame", disable=quiet)):
            frame_window = min(count - 1, number * count // total)
            if frame_window != window:
                chosen.append(_write(best, len(chosen), out_dir))
                best, window = (-1.0, None, -1), frame_window
            frame = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            score = sharpness(frame)
            if score > best[0]:
                best = (score, frame.copy(), number)
    except (RuntimeError, OSError) as exc:
        raise DatasetError(video, f"not a readable video ({exc})") from None
    finally:
        reader.close()
    if best[1] is not None:
        chosen.append(_write(best, len(chosen), out_dir))
    return chosen


def _write(best, index: int, out_dir: str) -> int:
    _, frame, number = best
    Image.fromarray(frame).save(os.path.join(out_dir, f"frame_{index:05d}.jpg"),
                                quality=JPEG_QUALITY)
    return number
