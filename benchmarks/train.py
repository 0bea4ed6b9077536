"""Training benchmark on the bundled sample scene (or `-s` another): seconds per iteration
(median early and late), Gaussian count, peak RSS, test PSNR / SSIM / LPIPS, and a breakdown of
one training step at about 100k Gaussians. Prints a table, writes JSON and a plot.

    python benchmarks/train.py --iterations 3000 --json benchmarks/results/train.json
    python benchmarks/train.py --densify_grad_threshold 0.0005 --json ...   # the former demo
    python benchmarks/train.py --reference_kernels ...   # PyTorch SSIM + per-tensor Adam
    python benchmarks/train.py --strategy mcmc --cap_max 100000 --iterations 7000 \
        --eval_iterations 3000 7000 --seed 1 --json ...   # MCMC, scored at 3000 and 7000
    python benchmarks/train.py -s ../shared/data/crackle_shards --strategy mcmc --cap_max 100000 \
        --densification_interval 10 --breakdown_points 0 ...   # another scene; train.py's flags

The breakdown (benchmarks/step_cost.py) loads the saved iteration whose Gaussian count is closest
to --breakdown_points, times --timed_steps training steps one by one (their median is the step
time), then profiles --profiled_steps more (Trainer.step + Trainer.refine_and_step of
training/trainer.py, the loop's own functions) with torch.profiler, attributing time to the
rasterizer forward/backward, the loss forward/backward, the optimizer, the densification
statistics, and the rest (activations, autograd, noise, Python).
"""
import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402

import train  # noqa: E402
from benchmarks.step_cost import step_breakdown  # noqa: E402
from benchmarks.trained_model import SAMPLE, load_scene, test_scores  # noqa: E402

EARLY = (100, 500)  # iterations counted as "early" (before densification starts at 600)

def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--source_path", default=SAMPLE,
                   help="the scene (default: the bundled sample)")
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--optimizer_type", default="default")
    p.add_argument("--densify_grad_threshold", type=float, default=None,
                   help="passed to train.py (default: train.py's)")
    p.add_argument("--reference_kernels", action="store_true", help="passed to train.py")
    p.add_argument("--strategy", default="default", help="passed to train.py")
    p.add_argument("--cap_max", type=int, default=None, help="passed to train.py")
    p.add_argument("--seed", type=int, default=0, help="passed to train.py")
    p.add_argument("--eval_iterations", type=int, nargs="+", default=None,
                   help="saved iterations whose test views are scored (default: the last)")
    p.add_argument("--breakdown_points", type=int, default=100_000,
                   help="profile one step at about this many Gaussians (0: no breakdown)")
    p.add_argument("--timed_steps", type=int, default=60, help="steps whose median is reported")
    p.add_argument("--profiled_steps", type=int, default=30,
                   help="steps profiled after the timed ones for the per-stage breakdown")
    p.add_argument("--model_path", default=None, help="keep the trained model here")
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="PNG path (default: beside the JSON)")
    # Any other flag (for example --cap_by_iter 2000) goes to train.py unchanged.
    args, args.train_argv = p.parse_known_args(argv)
    return args


def train_run(source, model_path, iterations, optimizer_type, extra_argv=()):
    saves = sorted(set(range(250, iterations + 1, 250)) | {iterations})
    argv = ["-s", source, "-m", model_path, "--eval", "--quiet", "--iterations", str(iterations),
            "--test_iterations", "-1", "--save_iterations", *map(str, saves),
            "--optimizer_type", optimizer_type, "--disable_viewer", *extra_argv]
    start = time.perf_counter()
    assert train.main(argv) == 0
    wall = time.perf_counter() - start
    with open(os.path.join(model_path, "training_log.json")) as f:
        return json.load(f), wall, saves


def main(argv=None):
    args = parse(argv)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model_path or os.path.join(tmp, "model")
        extra = []
        if args.densify_grad_threshold is not None:
            extra += ["--densify_grad_threshold", str(args.densify_grad_threshold)]
        if args.reference_kernels:
            extra.append("--reference_kernels")
        extra += ["--strategy", args.strategy, "--seed", str(args.seed)]
        if args.cap_max is not None:
            extra += ["--cap_max", str(args.cap_max)]
        extra += args.train_argv
        log, wall, saves = train_run(args.source_path, model_path, args.iterations,
                                     args.optimizer_type, extra)
        spi = dict(zip(log["iteration"], log["seconds_per_iteration"]))
        counts = dict(zip(log["iteration"], log["num_points"]))
        early = [s for i, s in spi.items() if EARLY[0] <= i <= EARLY[1]]
        late_from = int(args.iterations * 0.9)
        late = [s for i, s in spi.items() if i > late_from]
        scores_at = {}
        for it in args.eval_iterations or [args.iterations]:
            scene, gaussians, config = load_scene(model_path, it, source=args.source_path)
            pipe = config.pipeline
            scores_at[it] = dict(test_scores(scene, gaussians, pipe), gaussians=gaussians.num_points,
                                 training_ms_per_step=1e3 * statistics.mean(
                                     s for i, s in spi.items() if i <= it))
        scores = scores_at[max(scores_at)]
        breakdown = None
        if args.breakdown_points > 0:
            nearest = min(saves, key=lambda i: abs(counts.get(i, 0) - args.breakdown_points))
            breakdown = step_breakdown(model_path, nearest, args.timed_steps,
                                       args.profiled_steps, args.optimizer_type, extra,
                                       args.source_path)
    result = {
        "iterations": args.iterations, "optimizer_type": args.optimizer_type,
        "densify_grad_threshold": args.densify_grad_threshold,
        "reference_kernels": args.reference_kernels,
        "threads": torch.get_num_threads(), "wall_seconds": wall,
        "median_seconds_per_iteration_early": statistics.median(early) if early else None,
        "median_seconds_per_iteration_late": statistics.median(late) if late else None,
        "final_gaussians": log["num_points"][-1],
        "strategy": args.strategy, "cap_max": args.cap_max, "seed": args.seed,
        "source_path": args.source_path, "train_argv": args.train_argv,
        "whole_process_ms_per_step": 1e3 * wall / args.iterations,
        "test_at": scores_at,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "test": scores, "breakdown": breakdown, "log": log,
    }
    print(f"\ntraining {args.iterations} iterations on "
          f"{os.path.basename(os.path.normpath(args.source_path))} (--eval"
          + (", " + " ".join(args.train_argv) if args.train_argv else "") + "), "
          f"{result['threads']} threads, optimizer {args.optimizer_type}, densify_grad_threshold "
          f"{args.densify_grad_threshold or 'default'}"
          + (", reference kernels" if args.reference_kernels else ""))
    print(f"  wall time                       {wall:9.1f} s")
    def seconds(value):
        return "        -" if value is None else f"{value:9.4f}"
    print(f"  s/iteration, iterations {EARLY[0]}-{EARLY[1]} "
          f"{seconds(result['median_seconds_per_iteration_early'])}  (median)")
    print(f"  s/iteration, last 10%            "
          f"{seconds(result['median_seconds_per_iteration_late'])}")
    print(f"  final Gaussians                 {result['final_gaussians']:9d}")
    print(f"  whole process                   {result['whole_process_ms_per_step']:9.1f} ms/step")
    for it, sc in scores_at.items():
        print(f"  at {it:>6}: {sc['gaussians']:>8} Gaussians, training {sc['training_ms_per_step']:.1f} "
              f"ms/step, test PSNR / SSIM / LPIPS {sc['PSNR']:.2f} / {sc['SSIM']:.3f} / "
              f"{sc['LPIPS']:.3f}")
    print(f"  peak RSS                        {result['peak_rss_mb']:9.0f} MB")
    print(f"  test PSNR / SSIM / LPIPS-VGG     {scores['PSNR']:.2f} / {scores['SSIM']:.3f} / "
          f"{scores['LPIPS']:.3f}")
    if breakdown is not None:
        print(f"\nstep breakdown at {breakdown['gaussians']} Gaussians (iteration "
              f"{breakdown['iteration']}), median step {breakdown['median_step_ms']:.1f} ms:")
        for name, ms in breakdown["stages_ms"].items():
            print(f"  {name:<50} {ms:7.1f} ms")
    if args.json:
        write_result(args.json, "train", result)
        plot(result, args.plot or os.path.splitext(args.json)[0] + ".png")
    return result


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    log = result["log"]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].plot(log["iteration"], [s * 1e3 for s in log["seconds_per_iteration"]])
    ax[0].set(title="ms per iteration", xlabel="iteration")
    ax[1].plot(log["iteration"], log["num_points"])
    ax[1].set(title="Gaussians", xlabel="iteration")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
