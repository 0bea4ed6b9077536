"""distCUDA2 speed on the CPU: median seconds for uniform and clustered clouds.

    python benchmarks/knn.py [--sizes 100000,1000000] [--repeats 3] [--json PATH]
"""
import argparse
import statistics
import sys
import time

import torch

from simple_knn._C import distCUDA2

from stamp import write_result  # noqa: E402


def clouds(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    uniform = torch.rand(n, 3, generator=g) * 20 - 10
    centres = torch.randn(max(1, n // 1000), 3, generator=g) * 10
    clustered = (centres[torch.randint(0, len(centres), (n,), generator=g)]
                 + 0.05 * torch.randn(n, 3, generator=g))
    return {"uniform": uniform, "clustered": clustered}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    print(f"threads: {torch.get_num_threads()}, repeats: {args.repeats} (medians)")
    print(f"{'points':>10} {'cloud':>10} {'seconds':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        for name, pts in clouds(n).items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                distCUDA2(pts)
                times.append(time.perf_counter() - t0)
            row = dict(points=n, cloud=name, seconds=statistics.median(times), all_seconds=times)
            rows.append(row)
            print(f"{n:>10} {name:>10} {row['seconds']:>9.3f}")
    if args.json:
        write_result(args.json, "simple_knn", {"results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
