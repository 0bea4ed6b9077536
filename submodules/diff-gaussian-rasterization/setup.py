"""Builds the rasterizer extension: the CPU backend always, the CUDA backend as well when torch
is a CUDA build and nvcc is found (TORCH_CUDA_ARCH_LIST selects the GPU architectures, as for
any torch extension; DGR_CPU_ONLY=1 forces the CPU-only build).

Install with `pip install --no-build-isolation .`: build isolation would download a different
torch and compile against headers that do not match the installed one.
"""
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))
# -march=native lets the blend loops use the widest vectors of the machine that builds them
# (a 16-pixel tile row is one AVX-512 register). DGR_CPU_ARCH overrides it for portable builds.
ARCH = os.environ.get("DGR_CPU_ARCH", "native")
CXX_FLAGS = ["-O3", "-fopenmp", f"-march={ARCH}", "-std=c++17"]
SOURCES = ["csrc/ext.cpp", "csrc/cpu/rasterize_cpu.cpp", "csrc/cpu/mcmc_noise.cpp",
           "csrc/cpu/normalize_rows.cpp"]
WITH_CUDA = (torch.version.cuda is not None and CUDA_HOME is not None
             and os.environ.get("DGR_CPU_ONLY", "0") != "1")

if WITH_CUDA:
    extension = CUDAExtension(
        name="diff_gaussian_rasterization._C",
        sources=SOURCES + ["csrc/cuda/rasterize_cuda.cpp", "csrc/cuda/rasterize_kernels.cu"],
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=[("DGR_WITH_CUDA", None)],
        extra_compile_args={"cxx": CXX_FLAGS, "nvcc": ["-O3", "-std=c++17"]},
        extra_link_args=["-fopenmp"],
    )
else:
    extension = CppExtension(
        name="diff_gaussian_rasterization._C",
        sources=SOURCES,
        include_dirs=[os.path.join(HERE, "csrc")],
        extra_compile_args={"cxx": CXX_FLAGS},
        extra_link_args=["-fopenmp"],
    )

setup(
    name="diff_gaussian_rasterization",
    version="0.1.0",
    description="Differentiable tile-based Gaussian rasterizer (CPU and CUDA, original 3DGS API)",
    packages=["diff_gaussian_rasterization"],
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExtension},
)
