"""convert.py --video: an orbit of the sample's photos with a motion-blurred copy after each,
encoded as H.264; the sharpest frame of each stretch is taken (never a blurred one), the frames
register with COLMAP and the result trains."""
import numpy as np
import pytest
from PIL import Image

import convert
import train
from test_convert import SAMPLE_IMAGES, SUBSET
from utils.errors import DatasetError
from utils.video_frames import extract_sharpest, sharpness


def motion_blurred(image: Image.Image, length: int = 9) -> Image.Image:
    """A horizontal smear of `length` pixels: what a camera moving sideways records."""
    pixels = np.asarray(image, np.float64)
    padded = np.pad(pixels, ((0, 0), (length // 2, length // 2), (0, 0)), mode="edge")
    smeared = sum(padded[:, i:i + pixels.shape[1]] for i in range(length)) / length
    return Image.fromarray(np.round(smeared).astype(np.uint8))


def write_video(path, names):
    """Each photo then its blurred copy (frames 0, 2, 4... sharp), H.264 at 10 frames/s."""
    import imageio_ffmpeg
    frames = []
    for name in names:
        with Image.open(SAMPLE_IMAGES / name) as image:
            sharp = image.convert("RGB")
            frames += [np.asarray(sharp), np.asarray(motion_blurred(sharp))]
    height, width = frames[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(str(path), (width, height), fps=10, codec="libx264",
                                         output_params=["-crf", "16"], macro_block_size=8)
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    return frames


def test_sharpness_prefers_the_photo_to_its_blurred_copy():
    with Image.open(SAMPLE_IMAGES / SUBSET[0]) as image:
        sharp = image.convert("RGB")
    assert sharpness(np.asarray(sharp)) > 2 * sharpness(np.asarray(motion_blurred(sharp)))


def test_video_frames_are_the_sharp_ones_and_register(tmp_path, capsys):
    video = tmp_path / "orbit.mp4"
    write_video(video, SUBSET)
    chosen = extract_sharpest(str(video), len(SUBSET), str(tmp_path / "frames"), quiet=True)
    assert chosen == list(range(0, 2 * len(SUBSET), 2))  # every sharp frame, no blurred one

    source = tmp_path / "scene"
    assert convert.main(["-s", str(source), "--video", str(video), "--video_frames",
                         str(len(SUBSET)), "--no_gpu", "--robust_matching",
                         "--backend", "pycolmap"]) == 0
    out = capsys.readouterr().out
    registered = int(out.split("Registered ")[1].split(" of ")[0])
    assert registered >= 0.9 * len(SUBSET)
    assert train.main(["-s", str(source), "-m", str(tmp_path / "model"), "--quiet",
                       "--iterations", "10", "--test_iterations", "-1", "--disable_viewer"]) == 0


def test_unreadable_or_short_videos_are_one_clear_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(DatasetError, match="not a readable video"):
        extract_sharpest(str(bad), 10, str(tmp_path / "a"), quiet=True)
    video = tmp_path / "short.mp4"
    write_video(video, SUBSET[:2])  # 4 frames
    with pytest.raises(DatasetError, match="has 4 frames, too few for --video_frames 10"):
        extract_sharpest(str(video), 10, str(tmp_path / "b"), quiet=True)
    with pytest.raises(DatasetError, match="missing"):
        extract_sharpest(str(tmp_path / "nope.mp4"), 10, str(tmp_path / "c"), quiet=True)
