"""The one writer of benchmark results: every JSON under benchmarks/results/ is stamped with what
produced it (commit, whether the tree had changes, date, CPU model and instruction set, threads),
so a number can be traced to its run and compared only with runs on the same kind of machine."""
import datetime
import json
import os
import platform
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISA_LEVELS = ("avx512f", "avx2", "avx")  # the best the CPU has decides our rasterizer's path


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_description() -> dict:
    """The CPU's model name and the best of ISA_LEVELS it supports (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                if flags and model:
                    break
    except OSError:
        pass
    isa = next((level for level in ISA_LEVELS if level in flags), "generic")
    return {"model": model, "isa": isa, "cores": os.cpu_count()}


# The code a benchmark runs is the code it imported: the commit is read when this module is
# imported (at the benchmark's start), not when its result is written, which may be an hour later
# and after the tree has moved on.
_SOURCE = {"commit": _git("rev-parse", "HEAD"),
           "tree_changed": bool(_git("status", "--porcelain", "--", ".", ":!benchmarks/results"))}


def stamp() -> dict:
    import torch  # every benchmark has it loaded already
    return {**_SOURCE,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_description(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def write_result(path, benchmark: str, result: dict) -> None:
    """{"benchmark": name, "machine": stamp(), **result} to `path`, atomically."""
    import sys
    sys.path.insert(0, REPO)
    from utils.system_utils import write_text_atomic
    write_text_atomic(path, json.dumps({"benchmark": benchmark, "machine": stamp(), **result},
                                       indent=1) + "\n")
    print(f"wrote {path}")
