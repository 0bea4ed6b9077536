"""Data-parallel training on this machine: views per second for 1 process x 2 threads against
2 processes x 1 thread (torchrun, gloo) at --batch_size 2; the gradient all-reduce time per step
for 100k and 1M Gaussians (two gloo processes, one flat buffer of 59 floats per Gaussian, as
training sends); and test PSNR on the sample at --batch_size 1, 2, 4 after the same number of
views. Prints tables, writes JSON.

    python benchmarks/distributed.py [--views 600] [--psnr_views 3000] [--seeds 0 1] [--json PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from utils.system_utils import free_port  # noqa: E402

SAMPLE = os.path.join(REPO, "data", "garden_dev")
FLOATS_PER_GAUSSIAN = 3 + 3 + 45 + 1 + 3 + 4  # xyz, f_dc, f_rest, opacity, scaling, rotation
RECIPE_FLAGS = ["--densify_grad_threshold", "0.0005"]  # make demo's recipe until 30 Nov 2026


def train(model, argv, processes: int):
    """Run train.py (under torchrun for processes > 1); returns (wall s, training_log)."""
    base = [sys.executable] + (["-m", "torch.distributed.run", "--standalone",
                                "--nproc_per_node", str(processes)] if processes > 1 else [])
    start = time.perf_counter()
    done = subprocess.run(base + ["train.py", "-s", SAMPLE, "-m", model, "--quiet",
                                  "--disable_viewer", *argv], cwd=REPO, capture_output=True,
                          text=True)
    if done.returncode != 0:  # say why (torchrun's own message is only the exit status)
        sys.exit(f"error: training with {processes} process(es) failed:\n"
                 f"{(done.stdout + done.stderr)[-3000:]}")
    wall = time.perf_counter() - start
    with open(os.path.join(model, "training_log.json")) as f:
        return wall, json.load(f)


def views_per_second(views: int):
    rows = {}
    for name, processes, threads in (("1 process x 2 threads", 1, 2),
                                     ("2 processes x 1 thread", 2, 1)):
        with tempfile.TemporaryDirectory() as tmp:
            argv = ["--iterations", str(views), "--test_iterations", "-1", "--batch_size", "2",
                    "--threads", str(threads)]
            wall, log = train(tmp, argv, processes)
        per_view = statistics.median(log["seconds_per_iteration"][len(log["iteration"]) // 3:])
        rows[name] = {"views_per_second": 1.0 / per_view, "wall_seconds": wall}
        print(f"  {name:<24} {1.0 / per_view:6.2f} views/s (median of the last 2/3), "
              f"{wall:6.1f} s wall for {views} views")
    return rows


def _all_reduce_worker(rank, port, sizes, repeats, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    out = {}
    for gaussians in sizes:
        flat = torch.ones(gaussians * FLOATS_PER_GAUSSIAN)
        times = []
        for _ in range(repeats + 1):
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(flat)
            times.append(time.perf_counter() - start)
        out[gaussians] = statistics.median(times[1:])
    if rank == 0:
        queue.put(out)
    dist.destroy_process_group()


def all_reduce_times(sizes=(100_000, 1_000_000), repeats=7):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_all_reduce_worker, args=(r, port, sizes, repeats, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    result = queue.get(timeout=600)
    for p in procs:
        p.join()
    for gaussians, seconds in result.items():
        megabytes = gaussians * FLOATS_PER_GAUSSIAN * 4 / 1e6
        print(f"  {gaussians:>9} Gaussians ({megabytes:6.1f} MB): {1e3 * seconds:8.1f} ms")
    return {str(k): 1e3 * v for k, v in result.items()}


def psnr_by_batch(views: int, seeds):
    from benchmarks.trained_model import load_scene, test_scores
    rows = {}
    for batch in (1, 2, 4):
        values = []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                argv = ["--eval", "--iterations", str(views), "--test_iterations", "-1",
                        "--batch_size", str(batch), "--seed", str(seed), *RECIPE_FLAGS]
                wall, _ = train(tmp, argv, 1)
                scene, gaussians, config = load_scene(tmp, views)
                values.append(test_scores(scene, gaussians, config.pipeline)["PSNR"])
        rows[batch] = {"psnr": values, "mean": statistics.mean(values)}
        print(f"  batch {batch}: test PSNR {statistics.mean(values):.2f} dB "
              f"(seeds {', '.join(f'{v:.2f}' for v in values)})")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--views", type=int, default=600)
    p.add_argument("--psnr_views", type=int, default=3000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--skip_psnr", action="store_true")
    p.add_argument("--all_reduce_sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    print(f"views per second at --batch_size 2, garden_dev 320x240 ({args.views} views):")
    result = {"views_per_second": views_per_second(args.views)}
    print("gradient all-reduce per step, 2 gloo processes on this machine:")
    result["all_reduce_ms"] = all_reduce_times(args.all_reduce_sizes)
    if not args.skip_psnr:
        print(f"test PSNR after {args.psnr_views} views (--densify_grad_threshold 0.0005):")
        result["psnr_by_batch"] = psnr_by_batch(args.psnr_views, args.seeds)
    if args.json:
        write_result(args.json, "distributed", result)
    return result


if __name__ == "__main__":
    main()
