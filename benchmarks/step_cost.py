"""What a training step costs, and where: a trained model's saved iteration stepped at one or more
rendering resolutions (train.py's -r), the median step timed, then a few steps profiled with
torch.profiler and attributed to stages. Two resolutions also split the step into a per-Gaussian
part and a per-pixel part by a straight line through the two step times (time = a + b·pixels):
`a` is what a step costs however small the image, the work proportional to the Gaussians
(activations, projection, Adam, MCMC noise, regularisers).

    python benchmarks/step_cost.py -m MODEL -s SCENE --iteration 7000 --resolutions 400 800 \
        --strategy mcmc --cap_max 300000 --json benchmarks/results/step_cost.json

Steps are taken inside the densification window but never at a densification iteration, with the
SH degree at its maximum (no row edits: statistics, optimizer and post-step work only). Any other
flag goes to train.py's parser (the recipe's flags: --strategy, --cap_max, --optimizer_type...).
"""
import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402

from benchmarks.trained_model import SAMPLE, load_scene  # noqa: E402
from scene.strategies import make_strategy  # noqa: E402
from training.trainer import Trainer  # noqa: E402
from utils.system_utils import keep_freed_memory_for_reuse  # noqa: E402

FIRST_STEP = 601  # inside every strategy's densification window

# profiler event name → stage
STAGES = {
    "_RasterizeGaussians": "rasterizer forward",
    "_RasterizeGaussiansBackward": "rasterizer backward",
    "_SSIMAndL1": "loss forward (fused SSIM + L1)",
    "_SSIMAndL1Backward": "loss backward",
    "densification statistics": "densification statistics",
}
REST = "rest (activations, autograd, noise, Python)"


def step_breakdown(model_path, iteration, timed_steps, profiled_steps, optimizer_type="default",
                   extra_argv=(), source=SAMPLE):
    """{iteration, gaussians, width, height, median_step_ms, stages_ms, top_ops_ms}: the median of
    `timed_steps` steps and the mean per stage of `profiled_steps` more. With --reference_kernels
    the PyTorch loss has no event of its own and counts under "rest"."""
    from torch.profiler import ProfilerActivity, profile
    scene, gaussians, config = load_scene(model_path, iteration, optimizer_type, extra_argv,
                                          source)
    gaussians.active_sh_degree = gaussians.max_sh_degree
    opt = config.optimization
    gaussians.training_setup(opt)
    strategy = make_strategy(opt, config.strategy, config.mcmc)
    gaussians.attach_strategy(strategy)
    trainer = Trainer(scene, gaussians, strategy, opt, config.pipeline)

    def run(first, n):
        for it in range(first, first + n):
            if strategy.edits_rows_at(it) or it % 1000 == 0:
                continue
            result = trainer.step([it])
            with torch.no_grad():
                trainer.refine_and_step([it], result)

    run(FIRST_STEP, 5)  # warm-up
    wall = []
    for k in range(timed_steps):
        t = time.perf_counter()
        run(FIRST_STEP + 5 + k, 1)
        wall.append(time.perf_counter() - t)
    steps = profiled_steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(FIRST_STEP + 5 + timed_steps, steps)
    per_stage = {name: 0.0 for name in STAGES.values()}
    optimizer = 0.0
    for event in prof.key_averages():
        if event.key in STAGES:
            per_stage[STAGES[event.key]] += event.cpu_time_total / 1e3 / steps
        elif event.key.startswith("Optimizer.step#"):
            optimizer += event.cpu_time_total / 1e3 / steps
    per_stage["optimizer step"] = optimizer
    median_ms = statistics.median(wall) * 1e3
    per_stage[REST] = max(0.0, median_ms - sum(per_stage.values()))
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    camera = trainer.cameras[0]
    return {"iteration": iteration, "gaussians": gaussians.num_points,
            "width": camera.image_width, "height": camera.image_height,
            "median_step_ms": median_ms, "stages_ms": per_stage,
            "top_ops_ms": {e.key: e.self_cpu_time_total / 1e3 / steps for e in top}}


def split_by_pixels(breakdowns):
    """Per-Gaussian (a) and per-megapixel (b) parts of the step time from the first and last
    breakdown: time = a + b·pixels."""
    first, last = breakdowns[0], breakdowns[-1]
    p0, p1 = (b["width"] * b["height"] / 1e6 for b in (first, last))
    if p1 == p0:
        return None
    per_mp = (last["median_step_ms"] - first["median_step_ms"]) / (p1 - p0)
    return {"per_gaussian_ms": first["median_step_ms"] - per_mp * p0,
            "per_megapixel_ms": per_mp}


def print_breakdown(b):
    print(f"\nstep at {b['gaussians']} Gaussians, {b['width']}x{b['height']} (iteration "
          f"{b['iteration']}): median {b['median_step_ms']:.1f} ms")
    for name, ms in b["stages_ms"].items():
        print(f"  {name:<50} {ms:7.1f} ms")
    print("  heaviest operations (self time):")
    for name, ms in b["top_ops_ms"].items():
        print(f"    {name:<48} {ms:7.1f} ms")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--allocator_default", action="store_true",
                   help="leave glibc's malloc settings as they are (train.py changes them)")
    p.add_argument("-m", "--model_path", required=True)
    p.add_argument("-s", "--source_path", default=SAMPLE)
    p.add_argument("--iteration", type=int, default=-1, help="saved iteration (-1: the latest)")
    p.add_argument("--resolutions", nargs="+", default=["1"],
                   help="train.py -r values to step at (two or more: the per-Gaussian split)")
    p.add_argument("--optimizer_type", default="default")
    p.add_argument("--timed_steps", type=int, default=20)
    p.add_argument("--profiled_steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", default=None)
    args, train_argv = p.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    allocator_tuned = not args.allocator_default and keep_freed_memory_for_reuse()
    breakdowns = []
    for resolution in args.resolutions:
        b = step_breakdown(args.model_path, args.iteration, args.timed_steps,
                           args.profiled_steps, args.optimizer_type,
                           ["-r", resolution, *train_argv], args.source_path)
        print_breakdown(b)
        breakdowns.append(b)
    split = split_by_pixels(breakdowns) if len(breakdowns) > 1 else None
    if split:
        print(f"\nper-Gaussian part {split['per_gaussian_ms']:.1f} ms per step, per-pixel part "
              f"{split['per_megapixel_ms']:.1f} ms per megapixel")
    result = {"model_path": args.model_path, "source_path": args.source_path,
              "optimizer_type": args.optimizer_type, "train_argv": train_argv,
              "threads": torch.get_num_threads(), "allocator_tuned": allocator_tuned,
              "breakdowns": breakdowns, "split": split}
    if args.json:
        write_result(args.json, "step_cost", result)
    return result


if __name__ == "__main__":
    main()
