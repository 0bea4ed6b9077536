"""Web export formats on a trained model: file size, bytes per Gaussian, write and read time, and
how much of the render survives — each export, read back by our reader, rendered at the test
views and compared with the PLY's render (PSNR) and with the photos. Prints a table, writes JSON.

    python benchmarks/export.py -m output/garden_dev_demo        # make demo's model
    python benchmarks/export.py --train_iterations 300            # train the sample first

The PSNR against the PLY's render measures only the format's loss (the model is the same).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402

from arguments import ModelParams, PipelineParams, extract, parse_namespace_text  # noqa: E402
from gaussian_renderer import render  # noqa: E402
from scene import GaussianModel, Scene  # noqa: E402
from utils.image_utils import psnr  # noqa: E402
from utils.model_folder import ModelFolder  # noqa: E402
from utils.splat_io import EXTENSIONS, read_splats, write_splats  # noqa: E402

SAMPLE = os.path.join(REPO, "data", "garden_dev")
FORMATS = ("ply", "spz", "compressed_ply", "splat")


def load_scene(model_path):
    cfg_args = ModelFolder(model_path).cfg_args
    with open(cfg_args) as f:
        saved = parse_namespace_text(f.read(), cfg_args)
    args = argparse.Namespace(**{**vars(ModelParams()), **saved, "model_path": model_path})
    dataset = extract(ModelParams, args)
    gaussians = GaussianModel(dataset.sh_degree)
    scene = Scene(dataset, gaussians, load_iteration=-1, shuffle=False)
    return scene, gaussians


@torch.no_grad()
def renders(scene, gaussians, pipe):
    return [torch.clamp(render(cam, gaussians, pipe, scene.background).render, 0, 1)
            for cam in scene.getTestCameras()]


def measure(model_path, folder):
    scene, gaussians = load_scene(model_path)
    pipe = extract(PipelineParams, argparse.Namespace(**vars(PipelineParams())))
    source = scene.folder.ply_path(scene.loaded_iter)
    reference = renders(scene, gaussians, pipe)
    photos = [cam.original_image[:3] for cam in scene.getTestCameras()]
    data = read_splats(source)
    rows = []
    for fmt in FORMATS:
        path = os.path.join(folder, "model" + EXTENSIONS[fmt])
        start = time.perf_counter()
        write_splats(data, path, fmt)
        write_s = time.perf_counter() - start
        start = time.perf_counter()
        gaussians.load_ply(path)
        read_s = time.perf_counter() - start
        images = renders(scene, gaussians, pipe)
        # The PLY renders exactly as itself (PSNR +inf): stored as None.
        vs_ply = [float(psnr(a[None], b[None])) if fmt != "ply" else None
                  for a, b in zip(images, reference)]
        vs_photo = [float(psnr(a[None], b[None])) for a, b in zip(images, photos)]
        size = os.path.getsize(path)
        rows.append({"format": fmt, "bytes": size, "bytes_per_gaussian": size / len(data),
                     "ratio_to_ply": os.path.getsize(source) / size, "write_s": write_s,
                     "read_s": read_s,
                     "psnr_vs_ply_mean": None if fmt == "ply" else statistics.mean(vs_ply),
                     "psnr_vs_ply_min": None if fmt == "ply" else min(vs_ply),
                     "psnr_vs_photo_mean": statistics.mean(vs_photo)})
    return {"model": model_path, "iteration": scene.loaded_iter, "gaussians": len(data),
            "test_views": len(photos), "results": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model_path", default="")
    parser.add_argument("--train_iterations", type=int, default=300,
                        help="without -m: train the sample this long (-r 4) first")
    parser.add_argument("--json", default=os.path.join(REPO, "benchmarks", "results",
                                                       "export.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model_path
        if not model:
            import train
            model = os.path.join(tmp, "model")
            assert train.main(["-s", SAMPLE, "-m", model, "--eval", "-r", "4", "--quiet",
                               "--iterations", str(args.train_iterations), "--test_iterations",
                               "-1", "--disable_viewer"]) == 0
        result = measure(model, tmp)
    print(f"\n{result['model']} (iteration {result['iteration']}): {result['gaussians']:,} "
          f"Gaussians, {result['test_views']} test views")
    print(f"{'format':<15}{'MB':>8}{'B/Gaussian':>12}{'vs PLY':>8}{'write s':>9}{'read s':>8}"
          f"{'PSNR vs PLY render':>20}{'(min)':>8}{'PSNR vs photo':>15}")
    for row in result["results"]:
        exact = row["psnr_vs_ply_mean"] is None
        vs_ply = (f"{'exact':>20}{'':>8}" if exact else
                  f"{row['psnr_vs_ply_mean']:>20.2f}{row['psnr_vs_ply_min']:>8.2f}")
        print(f"{row['format']:<15}{row['bytes'] / 1e6:>8.2f}{row['bytes_per_gaussian']:>12.1f}"
              f"{row['ratio_to_ply']:>7.1f}x{row['write_s']:>9.2f}{row['read_s']:>8.2f}"
              f"{vs_ply}{row['psnr_vs_photo_mean']:>15.2f}")
    write_result(args.json, "export", result)


if __name__ == "__main__":
    main()
