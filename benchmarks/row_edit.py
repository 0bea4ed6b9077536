"""Row-edit speed: MCMC's relocation and growth and the default strategy's opacity reset on a
model of N Gaussians (SH degree 3, every Adam moment set), and the relocation's row edit alone,
written in place (what training does) against rebuilt as new tensors (what an edit that drops
or appends rows costs). Medians in milliseconds.

    python benchmarks/row_edit.py [--sizes 100000,300000] [--dead 0.03] [--repeats 7] [--json PATH]
"""
import argparse
import contextlib
import io
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402

from scene.gaussian_model import PARAMETER_ATTRIBUTES  # noqa: E402
from scene.optimizer_surgery import RowEdit  # noqa: E402
from scene.synthetic import mcmc_model_with_moments  # noqa: E402


def make_model(n: int, seed: int = 0):
    """N random Gaussians after one Adam step (so every moment exists), opacities spread."""
    with contextlib.redirect_stdout(io.StringIO()):  # its "Number of points" line
        return mcmc_model_with_moments(n, sh_degree=3, cap_max=2 * n, seed=seed)


def kill(model, fraction: float, g: torch.Generator) -> torch.Tensor:
    """Make `fraction` of the Gaussians dead (opacity ~1e-4); returns their rows."""
    rows = torch.randperm(model.num_points, generator=g)[:int(fraction * model.num_points)]
    with torch.no_grad():
        model._opacity[rows] = -9.0
    return rows


def median_ms(fn, repeats: int, before=None) -> float:
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def measure(n: int, dead: float, repeats: int) -> dict:
    model, strategy = make_model(n)
    g = torch.Generator().manual_seed(1)
    row = {"gaussians": n, "dead": int(dead * n)}
    row["relocate_ms"] = median_ms(lambda: strategy.relocate_dead(model), repeats,
                                   before=lambda: kill(model, dead, g))
    # The relocation's edit alone: every group's rows assigned, sources' moments zeroed.
    rows = torch.randperm(n, generator=g)[:int(dead * n)]
    sources = torch.randint(0, n, (len(rows),), generator=g)
    values = {name: getattr(model, attr).detach()[sources].clone()
              for name, attr in PARAMETER_ATTRIBUTES.items()}
    assign = {name: (rows, v) for name, v in values.items()}
    row["edit_in_place_ms"] = median_ms(
        lambda: model.edit_rows(RowEdit(assign=assign, zero_moments=sources)), repeats)
    keep_all = torch.ones(n, dtype=torch.bool)
    row["edit_rebuilt_ms"] = median_ms(
        lambda: model.edit_rows(RowEdit(keep=keep_all, assign=assign, zero_moments=sources)),
        repeats)
    row["reset_opacity_ms"] = median_ms(model.reset_opacity, repeats)
    # Growth appends rows, so it always builds new tensors; the model is rebuilt each time so
    # that every repeat grows the same N by 5 %.
    times = []
    for _ in range(max(1, repeats // 2)):
        grown, grow = make_model(n)
        t0 = time.perf_counter()
        grow.add_new(grown)
        times.append(time.perf_counter() - t0)
    row["add_5_percent_ms"] = 1000.0 * statistics.median(times)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--dead", type=float, default=0.03,
                        help="fraction of dead Gaussians per relocation")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    columns = ["gaussians", "dead", "relocate_ms", "edit_in_place_ms", "edit_rebuilt_ms",
               "reset_opacity_ms", "add_5_percent_ms"]
    print(f"threads: {torch.get_num_threads()}, repeats: {args.repeats} (medians, ms)")
    print(" ".join(f"{c:>17}" for c in columns))
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        row = measure(n, args.dead, args.repeats)
        rows.append(row)
        print(" ".join(f"{row[c]:>17.1f}" if isinstance(row[c], float) else f"{row[c]:>17}"
                       for c in columns))
    if args.json:
        write_result(args.json, "row_edit", {"dead_fraction": args.dead, "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
