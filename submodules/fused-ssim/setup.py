"""Builds fused_ssim._C: the CPU kernels always, the CUDA ones as well when torch is a CUDA build
and nvcc is found (DGR_CPU_ONLY=1 forces the CPU-only build, as for the rasterizer). Install with
`pip install --no-build-isolation .`."""
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.environ.get("DGR_CPU_ARCH", "native")
CXX_FLAGS = ["-O3", "-fopenmp", f"-march={ARCH}", "-std=c++17"]
WITH_CUDA = (torch.version.cuda is not None and CUDA_HOME is not None
             and os.environ.get("DGR_CPU_ONLY", "0") != "1")

if WITH_CUDA:
    extension = CUDAExtension(
        name="fused_ssim._C",
        sources=["csrc/ext.cpp", "csrc/ssim_kernels.cu"],
        include_dirs=[os.path.join(HERE, "csrc")],
        define_macros=[("FSSIM_WITH_CUDA", None)],
        extra_compile_args={"cxx": CXX_FLAGS, "nvcc": ["-O3", "-std=c++17"]},
        extra_link_args=["-fopenmp"],
    )
else:
    extension = CppExtension(
        name="fused_ssim._C",
        sources=["csrc/ext.cpp"],
        include_dirs=[os.path.join(HERE, "csrc")],
        extra_compile_args={"cxx": CXX_FLAGS},
        extra_link_args=["-fopenmp"],
    )

setup(
    name="fused_ssim",
    version="0.1.0",
    description="Fused SSIM + L1 loss (forward and backward), CPU and CUDA",
    packages=["fused_ssim"],
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExtension},
)
