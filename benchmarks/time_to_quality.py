"""Time to quality: test PSNR against training seconds for one recipe on one scene, written as
JSON and a PNG curve; several JSONs drawn on one plot to compare recipes.

    python benchmarks/time_to_quality.py -s data/crackle_large --strategy mcmc --cap_max 300000 \
        --iterations 7000 --every 500 --json benchmarks/results/ttq_fixed.json
    python benchmarks/time_to_quality.py ... --resolution_schedule auto --json .../ttq_auto.json
    python benchmarks/time_to_quality.py --plot .../ttq_fixed.json .../ttq_auto.json \
        --png docs/time_to_quality.png

Training runs once (train.py, in this process) and saves a snapshot every --every iterations;
the snapshots are scored on the test views at full resolution afterwards, outside the timed
loop. A snapshot's time is the training step time up to its iteration (train.py's curve records
it every 10 iterations without evaluation and saving), plus the time from the start of train.py
to its first step (loading, initialisation, the schedule). Any flag not listed here goes to
train.py unchanged.
"""
import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

import train  # noqa: E402
from arguments import TrainingConfig  # noqa: E402
from gaussian_renderer import render  # noqa: E402
from scene import GaussianModel, Scene  # noqa: E402
from stamp import write_result  # noqa: E402
from utils.image_utils import psnr  # noqa: E402


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--source_path", help="the scene")
    p.add_argument("--iterations", type=int, default=7000)
    p.add_argument("--every", type=int, default=500, help="iterations between snapshots")
    p.add_argument("--model_path", default=None, help="keep the trained model here")
    p.add_argument("--json", default=None)
    p.add_argument("--png", default=None, help="the curve (default: beside the JSON)")
    p.add_argument("--label", default=None, help="the curve's name (default: the flags)")
    p.add_argument("--plot", nargs="+", default=None,
                   help="only draw these JSON results on one plot (--png)")
    args, args.train_argv = p.parse_known_args(argv)
    return args


@torch.no_grad()
def test_psnrs(model_path: str, iterations, source: str) -> dict:
    """Iteration → mean test PSNR of each snapshot (the photos decoded once)."""
    config = TrainingConfig.from_args(train.build_parser().parse_args(
        ["-s", source, "-m", model_path, "--eval"]))
    gaussians = GaussianModel(config.model.sh_degree)
    scene = Scene(config.model, gaussians, load_iteration=iterations[0], shuffle=False)
    scores = {}
    for iteration in iterations:
        gaussians.load_ply(scene.folder.point_cloud_file(iteration))
        values = [psnr(render(cam, gaussians, config.pipeline, scene.background).render
                       .clamp(0, 1), cam.original_image).item()
                  for cam in scene.getTestCameras()]
        scores[iteration] = sum(values) / len(values)
    return scores


def measure(args, model_path: str) -> dict:
    snapshots = sorted(set(range(args.every, args.iterations + 1, args.every))
                       | {args.iterations})
    argv = ["-s", args.source_path, "-m", model_path, "--eval", "--quiet", "--disable_viewer",
            "--iterations", str(args.iterations), "--test_iterations", "-1",
            "--save_iterations", *map(str, snapshots), *args.train_argv]
    start = time.perf_counter()
    first_step = {}
    original_train = train.Trainer.train

    def timed_train(trainer, first_iter, hooks):  # when the first step starts
        first_step["at"] = time.perf_counter()
        return original_train(trainer, first_iter, hooks)

    train.Trainer.train = timed_train
    try:
        assert train.main(argv) == 0
    finally:
        train.Trainer.train = original_train
    wall = time.perf_counter() - start
    # The process's peak so far: loading and training (scoring comes after). Linux: KiB.
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    setup = first_step["at"] - start
    with open(os.path.join(model_path, "training_log.json")) as f:
        log = json.load(f)
    seconds, elapsed, previous = {}, setup, 0
    for iteration, per_step in zip(log["iteration"], log["seconds_per_iteration"]):
        elapsed += per_step * (iteration - previous)
        seconds[iteration], previous = elapsed, iteration
    scores = test_psnrs(model_path, snapshots, args.source_path)
    points = []
    for iteration in snapshots:
        recorded = max(i for i in seconds if i <= iteration)
        points.append({"iteration": iteration, "seconds": seconds[recorded],
                       "test_psnr": scores[iteration]})
        print(f"  {iteration:>6}  {points[-1]['seconds']:8.1f} s  {points[-1]['test_psnr']:6.2f} dB")
    return {"source_path": args.source_path, "iterations": args.iterations,
            "train_argv": args.train_argv, "label": args.label or " ".join(args.train_argv),
            "setup_seconds": setup, "wall_seconds": wall, "points": points,
            "final_gaussians": log["num_points"][-1], "peak_rss_mib": peak_rss_mib,
            "dataset": dataset_fingerprint(args.source_path)}


def dataset_fingerprint(source_path: str) -> str:
    """The first 12 hex digits of the SfM model's sha256 (cameras, images, points: COLMAP's
    binary or text files) or of transforms_*.json: a dataset made again from the same photos
    can differ (COLMAP's mapper is not deterministic), and runs on the two do not compare."""
    names = [os.path.join("sparse", "0", f"{part}.{ext}") for ext in ("bin", "txt")
             for part in ("cameras", "images", "points3D")]
    names += ["transforms_train.json", "transforms_test.json", "transforms.json"]
    digest = hashlib.sha256()
    for name in names:
        path = os.path.join(source_path, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest.update(name.encode() + b"\0" + f.read())
    return digest.hexdigest()[:12]


def plot(results, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for result in results:
        xs = [p["seconds"] for p in result["points"]]
        ys = [p["test_psnr"] for p in result["points"]]
        ax.plot(xs, ys, marker="o", label=result.get("label") or "run")
    scene = os.path.basename(os.path.normpath(results[0]["source_path"]))
    ax.set(xlabel="training seconds", ylabel="test PSNR (dB)", title=f"time to quality, {scene}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None):
    args = parse(argv)
    if args.plot:
        results = []
        for path in args.plot:
            with open(path) as f:
                results.append(json.load(f))
        plot(results, args.png or "time_to_quality.png")
        return 0
    if not args.source_path:
        sys.exit("error: -s SCENE is required")
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, args.model_path or os.path.join(tmp, "model"))
    if args.json:
        write_result(args.json, "time_to_quality", result)
        plot([result], args.png or os.path.splitext(args.json)[0] + ".png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
