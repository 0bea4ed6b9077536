"""A copy of a PINHOLE COLMAP dataset as if taken through a lens with distortion: every photo
warped with known OPENCV (or OPENCV_FISHEYE) coefficients and cameras.bin rewritten with that
model, so that training on the copy (undistorted at load, scene/undistortion.py) can be
compared with training on the original.

    python tools/make_distorted.py data/garden_dev /tmp/garden_opencv
    python tools/make_distorted.py data/garden_dev /tmp/garden_fisheye --model OPENCV_FISHEYE

The lens keeps the original focal lengths and principal point; the default coefficients
(pincushion) make every distorted pixel fall inside the original photo, so no blank border is
made up.
"""
import argparse
import os
import shutil
import struct
import sys

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from scene.colmap_loader import CAMERA_MODEL_NAMES, read_intrinsics_binary  # noqa: E402
from scene.undistortion import LensCamera, PinholeCamera, sample_bilinear  # noqa: E402

COEFFICIENTS = {"OPENCV": (0.08, 0.01, 0.0005, -0.0005),
                "OPENCV_FISHEYE": (0.05, 0.01, 0.0, 0.0)}


def distorted_photo(photo: np.ndarray, pinhole: PinholeCamera, lens: LensCamera) -> np.ndarray:
    """What `lens` records of the scene the pinhole photo shows: each distorted pixel samples
    the photo where its ray, undistorted, lands."""
    ys, xs = np.mgrid[0:lens.height, 0:lens.width].astype(np.float64)
    u, v = lens.camera_from_image(xs + 0.5, ys + 0.5)
    return sample_bilinear(photo, pinhole.fx * u + pinhole.cx, pinhole.fy * v + pinhole.cy)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--model", default="OPENCV", choices=sorted(COEFFICIENTS))
    args = parser.parse_args(argv)
    if os.path.exists(args.destination):
        sys.exit(f"error: {args.destination}: exists; give a new folder")
    sparse_in = os.path.join(args.source, "sparse", "0")
    sparse_out = os.path.join(args.destination, "sparse", "0")
    os.makedirs(sparse_out)
    for name in ("images.bin", "points3D.bin"):
        shutil.copy(os.path.join(sparse_in, name), sparse_out)
    cameras = read_intrinsics_binary(os.path.join(sparse_in, "cameras.bin"))
    lenses = {}
    with open(os.path.join(sparse_out, "cameras.bin"), "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for cam_id, cam in sorted(cameras.items()):
            if cam.model != "PINHOLE":
                sys.exit(f"error: camera {cam_id} is {cam.model}; a PINHOLE dataset is needed")
            fx, fy, cx, cy = cam.params[:4]
            params = (fx, fy, cx, cy, *COEFFICIENTS[args.model])
            lenses[cam_id] = (PinholeCamera(cam.width, cam.height, fx, fy, cx, cy),
                              LensCamera(args.model, cam.width, cam.height, params))
            f.write(struct.pack("<iiQQ", cam_id, CAMERA_MODEL_NAMES[args.model].model_id,
                                cam.width, cam.height))
            f.write(np.asarray(params, "<f8").tobytes())
    from scene.colmap_loader import read_extrinsics_binary
    images = read_extrinsics_binary(os.path.join(sparse_in, "images.bin"))
    out_images = os.path.join(args.destination, "images")
    os.makedirs(out_images)
    for image in images.values():
        pinhole, lens = lenses[image.camera_id]
        with Image.open(os.path.join(args.source, "images", image.name)) as photo:
            pixels = np.asarray(photo.convert("RGB"))
        warped = distorted_photo(pixels, pinhole, lens)
        Image.fromarray(warped).save(os.path.join(out_images, image.name), quality=95)
    print(f"{len(images)} photos through an {args.model} lens in {args.destination}")


if __name__ == "__main__":
    main()
