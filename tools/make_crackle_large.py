"""A realistic-size development scene: POV-Ray's crackle_form.pov (Debian's povray-examples;
CC BY 3.0, Christoph Hormann) rendered at 1024×768 from 96 views on three rings around the shard
cluster, made a COLMAP dataset by this project's convert.py (real SfM on the renders, so this is a
test of convert.py too). The images and the dataset stay out of git; this script is the recipe.

    python tools/make_crackle_large.py [--out data/crackle_large] [--jobs 2]

Needs `povray` and `povray-examples` (Debian) and the colmap command or pycolmap (convert.py's
backends). The rings follow the 320×240 crackle_shards scene's (horizontal radius 4.6 / 4.0 /
2.9, height 1.7 / 2.9 / 4.0, all looking at (0, 0, -0.3), horizontal field of view 50°), with 32
views per ring instead of 16. Renders are adaptive anti-aliased (+A0.2 +AM2 +R2), one thread each,
`--jobs` at a time, saved as JPEG quality 95; an existing frame is not rendered again.
"""
import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from PIL import Image
from tqdm import tqdm

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENE = "/usr/share/doc/povray/examples/textures/patterns/crackle_form.pov"
POV_INCLUDE = "/usr/share/povray-3.7/include"
WIDTH, HEIGHT = 1024, 768
VIEWS_PER_RING = 32
# (horizontal radius, height, azimuth offset in degrees) of each ring, z up
RINGS = ((4.6, 1.7, 0.0), (4.0, 2.9, 3.75), (2.9, 4.0, 7.5))
CAMERA = """
camera {
  perspective
  location <CX, CY, CZ>
  direction y
  sky z
  up z
  right x*image_width/image_height
  look_at <0, 0, -0.3>
  angle 50
}
"""


def camera_positions():
    for radius, height, offset in RINGS:
        for k in range(VIEWS_PER_RING):
            azimuth = math.radians(offset + 360.0 * k / VIEWS_PER_RING)
            yield radius * math.cos(azimuth), radius * math.sin(azimuth), height


def render(scene_file: str, position, jpeg_path: str, work: str) -> None:
    if os.path.exists(jpeg_path):
        return
    png = os.path.join(work, os.path.basename(jpeg_path)[:-4] + ".png")
    cx, cy, cz = position
    command = ["povray", f"+I{scene_file}", f"+O{png}", f"+W{WIDTH}", f"+H{HEIGHT}", "+FN",
               "-D", "-V", "+WT1", "+A0.2", "+AM2", "+R2", f"+L{POV_INCLUDE}",
               f"Declare=CX={cx:.6f}", f"Declare=CY={cy:.6f}", f"Declare=CZ={cz:.6f}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(png):
        sys.exit(f"error: povray failed for {jpeg_path}: {done.stderr[-500:]}")
    with Image.open(png) as image:
        image.convert("RGB").save(jpeg_path + ".tmp", format="JPEG", quality=95)
    os.replace(jpeg_path + ".tmp", jpeg_path)
    os.remove(png)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "data", "crackle_large"),
                        help="the dataset folder (its input/ holds the renders)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="renders at a time (one thread each)")
    parser.add_argument("--skip_convert", action="store_true", help="render only")
    args = parser.parse_args(argv)
    if shutil.which("povray") is None or not os.path.exists(SCENE):
        sys.exit("error: needs povray and povray-examples (apt-get install povray "
                 "povray-examples)")
    inputs = os.path.join(args.out, "input")
    os.makedirs(inputs, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        scene_file = os.path.join(work, "crackle_form_orbit.pov")
        with open(SCENE) as source, open(scene_file, "w") as orbit:
            orbit.write(source.read() + CAMERA)  # POV-Ray uses the last camera in the file
        jobs = [(p, os.path.join(inputs, f"img_{i:03d}.jpg"))
                for i, p in enumerate(camera_positions())]
        with ThreadPoolExecutor(args.jobs) as pool:
            list(tqdm(pool.map(lambda job: render(scene_file, job[0], job[1], work), jobs),
                      total=len(jobs), desc="Rendering"))
    if args.skip_convert:
        return 0
    return subprocess.run([sys.executable, os.path.join(REPO, "convert.py"), "-s", args.out,
                           "--no_gpu"]).returncode


if __name__ == "__main__":
    sys.exit(main())
