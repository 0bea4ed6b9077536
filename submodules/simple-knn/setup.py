"""Builds simple_knn._C (CPU). Install with `pip install --no-build-isolation .`."""
import os

from setuptools import setup
from torch.utils.cpp_extension import BuildExtension, CppExtension

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.environ.get("DGR_CPU_ARCH", "native")

setup(
    name="simple_knn",
    version="0.1.0",
    description="Exact 3-nearest-neighbour distances (the original's distCUDA2), CPU build",
    packages=["simple_knn"],
    ext_modules=[
        CppExtension(
            name="simple_knn._C",
            sources=["csrc/ext.cpp"],
            include_dirs=[os.path.join(HERE, "csrc")],
            extra_compile_args={"cxx": ["-O3", "-fopenmp", f"-march={ARCH}", "-std=c++17"]},
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
