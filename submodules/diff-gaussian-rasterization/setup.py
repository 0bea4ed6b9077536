"""Builds the rasterizer extension. CPU backend always; CUDA comes in a later issue.

Install with `pip install --no-build-isolation .`: build isolation would download a CUDA build
of torch and compile against headers that do not match the installed torch.
"""
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = os.path.dirname(os.path.abspath(__file__))
# -march=native lets the blend loops use the widest vectors of the machine that builds them
# (a 16-pixel tile row is one AVX-512 register). DGR_CPU_ARCH overrides it for portable builds.
ARCH = os.environ.get("DGR_CPU_ARCH", "native")
CXX_FLAGS = ["-O3", "-fopenmp", f"-march={ARCH}", "-std=c++17"]

setup(
    name="diff_gaussian_rasterization",
    version="0.1.0",
    description="Differentiable tile-based Gaussian rasterizer (CPU backend, original 3DGS API)",
    packages=["diff_gaussian_rasterization"],
    ext_modules=[
        CppExtension(
            name="diff_gaussian_rasterization._C",
            sources=["csrc/ext.cpp", "csrc/cpu/rasterize_cpu.cpp"],
            include_dirs=[os.path.join(HERE, "csrc")],
            extra_compile_args={"cxx": CXX_FLAGS},
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
