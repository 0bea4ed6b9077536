"""Builds fused_ssim._C (CPU). Install with `pip install --no-build-isolation .`."""
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.environ.get("DGR_CPU_ARCH", "native")

setup(
    name="fused_ssim",
    version="0.1.0",
    description="Fused SSIM + L1 loss (forward and backward), CPU build",
    packages=["fused_ssim"],
    ext_modules=[
        CppExtension(
            name="fused_ssim._C",
            sources=["csrc/ext.cpp"],
            include_dirs=[os.path.join(HERE, "csrc")],
            extra_compile_args={"cxx": ["-O3", "-fopenmp", f"-march={ARCH}", "-std=c++17"]},
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
