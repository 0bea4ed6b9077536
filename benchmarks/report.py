"""Build docs/results.md from the benchmark JSON files under benchmarks/results/.

    python benchmarks/report.py                      # rewrite docs/results.md
    python benchmarks/report.py --check              # exit 1 if docs/results.md is out of date

Every table row says which runs it summarises (commit, date, CPU instruction set, threads), so
a number on the page can be traced to its JSON. Runs of one recipe on one scene with different
`--seed`s are one row: mean, sample standard deviation and range over the seeds. The page is a
pure function of the JSON files (sorted by name), so the same files give the same bytes.
"""
import argparse
import functools
import glob
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
OUTPUT = os.path.join(REPO, "docs", "results.md")
# Flags that choose the schedule: a fixed-resolution run and a coarse-to-fine run that differ
# only in these are compared with each other.
SCHEDULE_FLAGS = ("--resolution_schedule", "--resolution_ramp", "--num_downscales")
# Defaults that have changed: (flag, the old default, runs dated before this used it, the flag and
# value under which it applies). A run that did not give such a flag is shown with the default it
# ran with, so rows stay truthful.
FORMER_DEFAULTS = (("--resolution_ramp", "0.5", "2026-12-05T05:50:00+00:00",
                    ("--resolution_schedule", "auto")),
                   ("--resolution_ramp", "0.625", "2026-12-05T09:50:00+00:00",
                    ("--resolution_schedule", "auto")),
                   ("--resolution_ramp", "0.65", "2026-12-06T00:30:00+00:00",
                    ("--resolution_schedule", "auto")))  # oldest first
# Commits after which the same flags train other models (bits changed, quality re-measured):
# (commit, its date, which runs: "all", or "schedule" for coarse-to-fine runs only). Runs of one
# recipe before and after such a commit are different rows.
RESULT_CHANGES = (("aa00253", "2026-12-05T06:08:56+00:00", "all"),  # MCMC's noise in one C++ pass
                  ("54f1f56", "2026-12-05T11:00:00+00:00", "all"),  # the projection in vector lanes
                  ("4551faa", "2026-12-05T18:16:17+00:00", "all"),  # MCMC's noise draws its own ε
                  # coarse levels low-pass in full-resolution pixels
                  ("ea168d9", "2026-12-05T19:20:00+00:00", "schedule"),
                  # auto steps up through 1/√2, the budget whole at full resolution
                  ("8ef5c9b", "2026-12-05T23:09:00+00:00", "schedule"))
# Datasets made again from their recipe, whose reconstruction differs (COLMAP's mapper is not
# deterministic): (scene, when it was remade). Runs of the scene before and after are kept apart.
DATASET_CHANGES = (("crackle_large", "2026-12-05T22:29:00+00:00"),)  # 9,465 SfM points, was 9,443


def scheduled(run: dict) -> bool:
    """Whether the run trained coarse-to-fine."""
    return split_flags(run["train_argv"], SCHEDULE_FLAGS)[1].get("--resolution_schedule",
                                                                 "off") != "off"


def code_version(run: dict, fixed_path: bool = False) -> str:
    """Which stretch between result-changing commits a run's code belongs to: by the commit it
    ran where it ran one exactly (a run of older code made later stays with its code), else by
    its date. fixed_path: the version of its fixed-resolution code (what a coarse-to-fine run
    is compared against)."""
    label = "earlier"
    machine = run["machine"]
    commit = "" if machine.get("tree_changed", True) else machine.get("commit", "")
    with_schedule = scheduled(run) and not fixed_path
    for change, date, scope in RESULT_CHANGES:
        if scope == "schedule" and not with_schedule:
            continue
        contains = commit_contains(commit, change) if commit else None
        if contains if contains is not None else machine["date"] >= date:
            label = f"since {change}"
    for scene, date in DATASET_CHANGES:
        if scene_name(run) == scene and machine["date"] >= date:
            label += f"; scene remade {date[:10]} {date[11:16]}"
    return label


@functools.lru_cache(maxsize=None)
def commit_contains(commit: str, change: str) -> Optional[bool]:
    """Whether `change` is `commit` or one of its ancestors (None: git cannot tell)."""
    result = subprocess.run(["git", "merge-base", "--is-ancestor", change, commit], cwd=REPO,
                            capture_output=True)
    return {0: True, 1: False}.get(result.returncode)


def load(folder: str) -> List[dict]:
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            run = json.load(f)
        run["file"] = os.path.basename(path)
        run["train_argv"] = with_former_defaults(run)
        runs.append(run)
    return runs


def with_former_defaults(run: dict) -> List[str]:
    argv = list(run["train_argv"])
    for flag, value, until, (needs, needs_value) in FORMER_DEFAULTS:
        given = split_flags(argv, (flag, needs))[1]
        if flag not in given and run["machine"]["date"] < until and \
                given.get(needs) == needs_value:
            argv += [flag, value]
    return argv


def split_flags(argv: List[str], drop: Tuple[str, ...]) -> Tuple[str, Dict[str, str]]:
    """(the flags without those in `drop`, as one string; the dropped flags' values)."""
    kept, dropped, i = [], {}, 0
    while i < len(argv):
        flag = argv[i]
        takes_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
        value = argv[i + 1] if takes_value else ""
        if flag in drop:
            dropped[flag] = value
        else:
            kept.extend([flag, value] if takes_value else [flag])
        i += 2 if takes_value else 1
    return " ".join(kept), dropped


def scene_name(run: dict) -> str:
    return os.path.basename(os.path.normpath(run["source_path"]))


def machine_text(runs: List[dict]) -> str:
    """Commits, dates and machines of a group of runs, shortest form that is still exact."""
    commits = sorted({r["machine"]["commit"][:7] + ("+" if r["machine"]["tree_changed"] else "")
                      for r in runs})
    dates = sorted({r["machine"]["date"][:10] for r in runs})
    cpus = sorted({f'{r["machine"]["cpu"]["isa"]}, {r["machine"]["threads"]} thr.' for r in runs})
    span = " – ".join([dates[0], dates[-1]] if len(dates) > 1 else dates)
    return f'{", ".join(commits)}; {span}; {"; ".join(cpus)}'


def spread(values: List[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    sd = statistics.stdev(values)
    return f"{mean:.2f} (sd {sd:.2f}; {min(values):.2f}–{max(values):.2f})"


@dataclass
class Recipe:
    scene: str
    iterations: int
    flags: str
    code: str
    runs: List[dict] = field(default_factory=list)

    def seeds(self) -> List[int]:
        return [int(split_flags(r["train_argv"], ("--seed",))[1].get("--seed", 0))
                for r in self.runs]


def recipes(runs: List[dict]) -> List[Recipe]:
    groups: Dict[Tuple[str, int, str], Recipe] = {}
    for run in runs:
        if run["benchmark"] != "time_to_quality":
            continue
        flags, _ = split_flags(run["train_argv"], ("--seed",))
        key = (scene_name(run), run["iterations"], flags, code_version(run))
        groups.setdefault(key, Recipe(*key)).runs.append(run)
    for group in groups.values():  # by seed as a number (file names sort s10 before s2)
        group.runs.sort(key=lambda r: int(split_flags(r["train_argv"], ("--seed",))[1].get("--seed", 0)))
    return [groups[k] for k in sorted(groups)]


def quality_table(groups: List[Recipe]) -> List[str]:
    lines = ["| scene | iterations | flags | code | seeds | test PSNR (dB) | seconds per run | "
             "Gaussians | peak RSS | runs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        psnrs = [r["points"][-1]["test_psnr"] for r in g.runs]
        seconds = statistics.fmean(r["points"][-1]["seconds"] for r in g.runs)
        gaussians = sorted({r["final_gaussians"] for r in g.runs})
        rss = [r["peak_rss_mib"] for r in g.runs if "peak_rss_mib" in r]
        lines.append(
            f"| {g.scene} | {g.iterations} | `{g.flags}` | {g.code} | "
            f"{', '.join(map(str, g.seeds()))} | "
            f"{spread(psnrs)} | {seconds:.0f} | {'–'.join(f'{n:,}' for n in gaussians)} | "
            f"{f'{max(rss):.0f} MiB' if rss else 'not recorded'} | {machine_text(g.runs)} |")
    return lines


def seconds_to_reach(points: List[dict], target: float) -> Optional[float]:
    """Training seconds at which the PSNR curve first reaches `target` (linear between
    snapshots), or None if it never does."""
    previous = None
    for p in points:
        if p["test_psnr"] >= target:
            if previous is None:
                return p["seconds"]
            t = (target - previous["test_psnr"]) / (p["test_psnr"] - previous["test_psnr"])
            return previous["seconds"] + t * (p["seconds"] - previous["seconds"])
        previous = p
    return None


def schedule_table(runs: List[dict]) -> List[str]:
    """Each coarse-to-fine run against the fixed-resolution run of the same scene, seed,
    iterations and other flags."""
    fixed, pairs = {}, []
    for run in runs:
        if run["benchmark"] != "time_to_quality":
            continue
        flags, schedule = split_flags(run["train_argv"], SCHEDULE_FLAGS)
        key = (scene_name(run), run["iterations"], flags, code_version(run, fixed_path=True))
        if not scheduled(run):
            fixed[key] = run
        else:
            pairs.append((key, schedule, run))
    lines = ["| scene | iterations | flags | code | schedule | fixed: PSNR, seconds | schedule: "
             "PSNR, seconds | Δ PSNR | time at equal iterations | time to the fixed run's PSNR | "
             "runs |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, schedule, run in pairs:
        base = fixed.get(key)
        if base is None:
            continue
        f_psnr, f_sec = base["points"][-1]["test_psnr"], base["points"][-1]["seconds"]
        s_psnr, s_sec = run["points"][-1]["test_psnr"], run["points"][-1]["seconds"]
        reach = seconds_to_reach(run["points"], f_psnr)
        lines.append(
            f"| {key[0]} | {key[1]} | `{key[2]}` | {code_version(run)} | "
            f"`{' '.join(f'{k} {v}' for k, v in schedule.items())}` | {f_psnr:.2f}, {f_sec:.0f} | "
            f"{s_psnr:.2f}, {s_sec:.0f} | {s_psnr - f_psnr:+.2f} | {100 * s_sec / f_sec:.0f} % | "
            f"{'not reached' if reach is None else f'{100 * reach / f_sec:.0f} %'} | "
            f"{machine_text([base, run])} |")
    return lines


def memory_table(runs: List[dict]) -> List[str]:
    lines = ["| file | Gaussians: peak RSS | KiB per Gaussian | floor (parameters, gradients, "
             "Adam) | runs |", "|---|---|---|---|---|"]
    for run in runs:
        if run["benchmark"] != "memory":
            continue
        peaks = ", ".join(f"{int(n):,}: {mib:,.0f} MiB" for n, mib in
                          sorted(run["peak_rss_mib"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {run['file']} | {peaks} | {run['kib_per_gaussian']:.2f} | "
                     f"{run['floor_kib_per_gaussian']:.2f} | {machine_text([run])} |")
    return lines


def step_cost_table(runs: List[dict]) -> List[str]:
    lines = ["| file | Gaussians | image | freed memory kept | median step | per-Gaussian part | "
             "per megapixel | runs |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        if run["benchmark"] != "step_cost":
            continue
        for b in run["breakdowns"]:
            lines.append(
                f"| {run['file']} | {b['gaussians']:,} | {b['width']}×{b['height']} | "
                f"{'yes' if run.get('allocator_tuned') else 'no'} | "
                f"{b['median_step_ms']:.1f} ms | {run['split']['per_gaussian_ms']:.0f} ms | "
                f"{run['split']['per_megapixel_ms']:.0f} ms | {machine_text([run])} |")
    return lines


HEADER = """# Results

Generated by `python benchmarks/report.py` from the JSON files in `benchmarks/results/`; do not
edit by hand. Each row names the runs it summarises: commit (`+`: the tree had uncommitted
changes), date and the CPU's best instruction set with the thread count. Times from different
dates or machines are not comparable (the project's virtual machines drift by up to 20 %); compare
times only within one row or within a side-by-side benchmark. Test PSNR is the mean over the
held-out views (`--eval`: every 8th image) at full resolution. Where a default has changed since
a run, its row shows the value it ran with (`--resolution_ramp` was 0.5 before 5 Dec 2026, 05:50
UTC, 0.625 until 09:50 UTC and 0.65 until 6 Dec, 00:30 UTC). "Code": runs made before and
after a commit that changed what the same flags train
(aa00253: MCMC's position noise in one C++ pass, other rounding) are kept apart; a commit
that changed only coarse-to-fine training (ea168d9: the coarse levels' low-pass filter;
8ef5c9b: the 1/√2 level and the budget whole at full resolution) parts only the coarse-to-fine
runs, which are then compared with fixed-resolution runs of the same
fixed-resolution code. "Scene remade": runs on a dataset made again from its recipe (COLMAP's
reconstruction differs from one run of it to the next) are kept apart from those on the earlier
one.

Scenes: `garden_dev` is the bundled sample (48 path-traced photos, 320×240); `crackle_shards`
is a second 320×240 scene of POV-Ray shards (48 views); `crackle_large` is the same POV-Ray scene
at 1024×768 from 96 views, made by `tools/make_crackle_large.py` and this project's `convert.py`.
"""


def build(runs: List[dict]) -> str:
    out = [HEADER,
           "## Quality and time per recipe",
           "",
           "`python benchmarks/time_to_quality.py -s SCENE --iterations N --seed S [flags]`: the "
           "final test PSNR (mean over seeds, sample standard deviation, range), training seconds "
           "including loading (mean over seeds), Gaussians at the end and the process's peak "
           "resident memory during loading and training.",
           "", *quality_table(recipes(runs)), "",
           "## Coarse-to-fine against fixed resolution",
           "",
           "Each `--resolution_schedule` run against the fixed-resolution run of the same scene, "
           "seed and flags. \"Time at equal iterations\": the schedule's training seconds as a "
           "share of the fixed run's; \"time to the fixed run's PSNR\": when the schedule's test "
           "PSNR curve (snapshots, linear between them) first reaches the fixed run's final PSNR, "
           "as a share of the fixed run's seconds.",
           "", *schedule_table(runs), "",
           "## Memory per Gaussian",
           "",
           "`python benchmarks/memory.py`: peak RSS of a training run with N Gaussians throughout "
           "(MCMC capped at N, random start, relocation every 25 iterations), at 1,000,000 minus "
           "at 10,000, divided by 990,000.",
           "", *memory_table(runs), "",
           "## Step cost",
           "",
           "`python benchmarks/step_cost.py -m MODEL -s SCENE --resolutions ...`: median "
           "training step of a saved model at several image sizes, and a straight line through "
           "them: the part that does not depend on the image size (per Gaussian) and the part per "
           "megapixel. \"Freed memory kept\": whether glibc's malloc kept freed blocks for reuse "
           "(train.py does since 5 Dec 2026; step_cost.py's `--allocator_default` leaves "
           "glibc's settings).",
           "", *step_cost_table(runs), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=RESULTS, help="folder of benchmark JSON files")
    p.add_argument("--output", default=OUTPUT, help="the page to write")
    p.add_argument("--check", action="store_true",
                   help="only compare with the existing page; exit 1 if it differs")
    args = p.parse_args(argv)
    page = build(load(args.results))
    if args.check:
        with open(args.output, encoding="utf-8") as f:
            same = f.read() == page
        state = "up to date" if same else "out of date: run benchmarks/report.py"
        print(f"{args.output} is {state}")
        return 0 if same else 1
    sys.path.insert(0, REPO)
    from utils.system_utils import write_text_atomic
    write_text_atomic(args.output, page)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
