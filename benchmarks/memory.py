"""Peak memory per Gaussian of a training run: peak RSS of train.py with N Gaussians from the start
(random initialisation, MCMC capped at N, relocation every 25 iterations) at a large and a small N,
the difference divided by the difference in N. What a Gaussian costs, without the fixed part
(Python, torch, the photos).

    python benchmarks/memory.py --json benchmarks/results/memory.json
    python benchmarks/memory.py --counts 1000000 10000 -s data/garden_dev

For reference, fp32 parameters (59 floats), their gradients and Adam's two moments take
4 × 59 × 4 = 944 bytes = 0.92 KiB per Gaussian.
"""
import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

SAMPLE = os.path.join(REPO, "data", "garden_dev")
FLOATS_PER_GAUSSIAN = 59  # xyz 3, f_dc 3, f_rest 45, opacity 1, scaling 3, rotation 4
# The child reports its own peak: RUSAGE_CHILDREN of a fresh wrapper holds only this child.
MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
           "stdout=subprocess.DEVNULL); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_mib(source: str, count: int, iterations: int, extra=()) -> float:
    """Peak RSS (MiB) of one training run with `count` Gaussians throughout."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, os.path.join(REPO, "train.py"), "-s", source, "-m", tmp,
                "--strategy", "mcmc", "--cap_max", str(count), "--init_type", "random",
                "--init_num", str(count), "--densify_from_iter", "25",
                "--densification_interval", "25", "--iterations", str(iterations),
                "--save_iterations", str(iterations), "--test_iterations", "-1",
                "--disable_viewer", "--quiet", *extra]
        out = subprocess.run([sys.executable, "-c", MEASURE, *argv], check=True,
                             capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-s", "--source_path", default=SAMPLE)
    p.add_argument("--counts", type=int, nargs=2, default=[1_000_000, 10_000],
                   metavar=("LARGE", "SMALL"))
    p.add_argument("--iterations", type=int, default=80)
    p.add_argument("--json", default=None)
    args, extra = p.parse_known_args(argv)
    large, small = args.counts
    peaks = {}
    for count in (small, large):
        peaks[count] = peak_rss_mib(args.source_path, count, args.iterations, extra)
        print(f"  {count:>9} Gaussians: peak RSS {peaks[count]:8.0f} MiB")
    per_gaussian = (peaks[large] - peaks[small]) * 1024 / (large - small)
    floor = 4 * FLOATS_PER_GAUSSIAN * 4 / 1024
    print(f"peak RSS per Gaussian: {per_gaussian:.2f} KiB (parameters, gradients and Adam's "
          f"moments alone: {floor:.2f} KiB)")
    result = {"source_path": args.source_path, "iterations": args.iterations, "train_argv": extra,
              "peak_rss_mib": {str(k): v for k, v in peaks.items()},
              "kib_per_gaussian": per_gaussian, "floor_kib_per_gaussian": floor}
    if args.json:
        write_result(args.json, "memory", result)
    return result


if __name__ == "__main__":
    main()
