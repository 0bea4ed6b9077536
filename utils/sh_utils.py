"""Spherical-harmonics helpers. The evaluation itself lives with the rasterizer's PyTorch
reference (one copy of the SH constants in Python), re-exported here under the original's name."""
from diff_gaussian_rasterization.reference import eval_sh  # noqa: F401  (public re-export)

from diff_gaussian_rasterization.constants import SH_C0 as C0  # 1 / (2·sqrt(pi))


def RGB2SH(rgb):
    return (rgb - 0.5) / C0


def SH2RGB(sh):
    return sh * C0 + 0.5
