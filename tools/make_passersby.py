"""A copy of a COLMAP dataset with a "passer-by" in every training photo — an opaque rectangle
of random colour and texture, in a different place in each photo — and the masks that cut them
out (white = use). The held-out views (every 8th by sorted name, as --eval) stay clean with
all-white masks. For measuring --masks:

    python tools/make_passersby.py data/garden_dev /tmp/garden_passersby
    python train.py -s /tmp/garden_passersby --eval --masks /tmp/garden_passersby/masks ...

The masks go to DST/masks; the copy's images are written as PNG (lossless) under their names.
"""
import argparse
import os
import shutil
import sys

import numpy as np
from PIL import Image

EVAL_HOLD = 8  # the held-out views: every 8th by sorted name (train.py --eval)


def passerby(size, rng, area):
    """(x0, y0, x1, y1) of a rectangle covering about `area` of the photo, and its pixels."""
    width, height = size
    w = int(width * np.sqrt(area) * rng.uniform(0.6, 1.4))
    h = min(height, int(width * height * area / max(w, 1)))
    x0, y0 = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
    base = rng.integers(0, 256, 3)
    texture = rng.integers(-40, 41, (h, w, 3))
    return (x0, y0, x0 + w, y0 + h), np.clip(base + texture, 0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--area", type=float, default=0.08,
                        help="share of each photo covered (0: a clean copy, for comparison)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if os.path.exists(args.destination):
        sys.exit(f"error: {args.destination}: exists; give a new folder")
    shutil.copytree(os.path.join(args.source, "sparse"), os.path.join(args.destination, "sparse"))
    images_in = os.path.join(args.source, "images")
    images_out = os.path.join(args.destination, "images")
    masks_out = os.path.join(args.destination, "masks")
    os.makedirs(images_out)
    os.makedirs(masks_out)
    rng = np.random.default_rng(args.seed)
    names = sorted(os.listdir(images_in))
    held_out = set(names[::EVAL_HOLD])
    for name in names:
        with Image.open(os.path.join(images_in, name)) as image:
            photo = np.array(image.convert("RGB"))
        mask = np.full(photo.shape[:2], 255, np.uint8)
        if name not in held_out and args.area > 0:
            (x0, y0, x1, y1), pixels = passerby((photo.shape[1], photo.shape[0]), rng, args.area)
            photo[y0:y1, x0:x1] = pixels
            mask[y0:y1, x0:x1] = 0
        # The same file name (the sparse model lists it), so a JPEG is saved again as JPEG:
        # compare against a copy made with --area 0, which went through the same re-encoding.
        Image.fromarray(photo).save(os.path.join(images_out, name), quality=95, subsampling=0)
        Image.fromarray(mask).save(os.path.join(masks_out, os.path.splitext(name)[0] + ".png"))
    covered = len(names) - len(held_out) if args.area > 0 else 0
    print(f"{covered} photos with a passer-by, {len(held_out)} held out "
          f"clean; masks in {masks_out}")


if __name__ == "__main__":
    main()
