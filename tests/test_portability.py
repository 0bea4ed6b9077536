"""The rasterizer's CPU code paths for other instruction sets compile: the build uses
-march=native, so on this machine `make setup` compiles only the AVX-512 paths of
csrc/cpu/simd.h; these compile the AVX2 and plain x86-64 (SSE2) ones too (syntax and types, no
code generation). The fused SSIM has no instruction-set-specific code."""
import shutil
import subprocess
from pathlib import Path

import pytest
import torch.utils.cpp_extension as cpp

REPO = Path(__file__).resolve().parents[1]
DGR = REPO / "submodules" / "diff-gaussian-rasterization" / "csrc"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("arch", ["haswell", "x86-64"])
def test_cpu_rasterizer_compiles_for(arch):
    command = ["g++", "-std=c++17", f"-march={arch}", "-fopenmp", "-fsyntax-only",
               "-Wno-psabi", "-Wno-c++20-extensions", f"-I{DGR}",
               *(f"-I{p}" for p in cpp.include_paths()), str(DGR / "cpu" / "rasterize_cpu.cpp")]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
