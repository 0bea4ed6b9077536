"""Web viewer speed on the CPU: frames per second the server can deliver (our rasterizer's frame
plus the JPEG the page receives) at 640x480 and 1280x720 for models of 100k and 500k Gaussians,
and the training step time on the bundled sample with the viewer disabled, started without a
page, and with a page connected (headless Chromium) at the default CPU share. Prints a table,
writes JSON.

    python benchmarks/viewer.py [--repeats 7] [--train_iterations 300] [--json PATH]

Models: trained-like random clouds (log-normal sizes, mixed opacities, SH degree 3) filling the
view of a camera at distance 5, as benchmarks/rasterizer.py uses.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from diff_gaussian_rasterization.testing import random_cloud  # noqa: E402
from scene import GaussianModel  # noqa: E402
from scene.cameras import ViewCamera  # noqa: E402
from utils.general_utils import inverse_sigmoid  # noqa: E402
from utils.system_utils import free_port  # noqa: E402

SAMPLE = os.path.join(REPO, "data", "garden_dev")
SIZES = [(640, 480), (1280, 720)]
MODELS = [100_000, 500_000]


def cloud_model(points: int) -> GaussianModel:
    cloud = random_cloud(points, seed=0)
    model = GaussianModel(3)
    model._set_parameters(xyz=cloud.means3D, f_dc=cloud.shs[:, :1], f_rest=cloud.shs[:, 1:],
                          opacity=inverse_sigmoid(cloud.opacities),
                          scaling=torch.log(cloud.scales), rotation=cloud.rotations)
    model.active_sh_degree = 3
    return model


def frame_rates(repeats: int, models=MODELS, sizes=SIZES):
    from viewer.server import JPEG_QUALITY
    from viser._scene_api import _encode_image_binary  # what set_background_image sends

    class Pipe:
        compute_cov3D_python = convert_SHs_python = debug = antialiasing = False

    rows = []
    for points in models:
        model = cloud_model(points)
        for width, height in sizes:
            view = ViewCamera(np.eye(3), np.array([0.0, 0.0, -5.0]), 2 * np.arctan(0.6),
                              width, height)
            from gaussian_renderer import render
            times = []
            for _ in range(repeats + 1):
                start = time.perf_counter()
                with torch.no_grad():
                    image = render(view, model, Pipe, torch.zeros(3)).render
                frame = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
                _encode_image_binary(np.ascontiguousarray(frame), "jpeg",
                                     jpeg_quality=JPEG_QUALITY)
                times.append(time.perf_counter() - start)
            median = statistics.median(times[1:])
            rows.append({"gaussians": points, "width": width, "height": height,
                         "frame_ms": 1e3 * median, "fps": 1.0 / median})
            print(f"  {points:>7} Gaussians {width}x{height}: {1e3 * median:7.1f} ms/frame, "
                  f"{1.0 / median:5.1f} fps")
    return rows


def training_ms_per_step(mode: str, iterations: int) -> float:
    """Median training step (ms, from training_log.json) of a run of the sample at full size:
    mode "disabled", "no page" or "page"."""
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        argv = [sys.executable, "train.py", "-s", SAMPLE, "-m", tmp, "--quiet", "--iterations",
                str(iterations), "--test_iterations", "-1", "--port", str(port)]
        if mode == "disabled":
            argv.append("--disable_viewer")
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if mode == "page":
            from playwright.sync_api import sync_playwright
            chromium = shutil.which("chromium")
            while proc.poll() is None:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, args=[
                    "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader",
                    "--enable-unsafe-swiftshader"])
                page = browser.new_page(viewport={"width": 800, "height": 600})
                page.goto(f"http://127.0.0.1:{port}")
                proc.wait()
                browser.close()
        assert proc.wait() == 0
        with open(os.path.join(tmp, "training_log.json")) as f:
            log = json.load(f)
    steps = log["seconds_per_iteration"][len(log["seconds_per_iteration"]) // 3:]
    return 1e3 * statistics.median(steps)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--train_iterations", type=int, default=300)
    p.add_argument("--models", type=int, nargs="+", default=MODELS, help="Gaussians per model")
    p.add_argument("--sizes", nargs="+", default=[f"{w}x{h}" for w, h in SIZES])
    p.add_argument("--skip_page", action="store_true", help="no run with a browser page")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(f"frames served ({torch.get_num_threads()} threads), render + JPEG:")
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    frames = frame_rates(args.repeats, args.models, sizes)
    modes = ["disabled", "no page"] + (["page"] if shutil.which("chromium")
                                       and not args.skip_page else [])
    training = {}
    for mode in modes:
        training[mode] = training_ms_per_step(mode, args.train_iterations)
        print(f"  training step, viewer {mode:<8}: {training[mode]:6.1f} ms (median)")
    result = {"threads": torch.get_num_threads(), "frames": frames,
              "training_ms_per_step": training, "train_iterations": args.train_iterations}
    if args.json:
        write_result(args.json, "viewer", result)
    return result


if __name__ == "__main__":
    main()
