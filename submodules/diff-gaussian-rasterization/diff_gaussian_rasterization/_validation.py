"""Argument checks of the rasterizer: each problem is one ValueError that names the argument."""
import torch

from . import _C
from .constants import MAX_SH_DEGREE


def _fail(name: str, problem: str):
    raise ValueError(f"GaussianRasterizer: {name} {problem}")


def _check_tensor(name, t, device, shapes, allow_none=False):
    """t must be a float32 tensor on `device` whose shape matches one of `shapes`
    (tuples where None matches any size)."""
    if t is None:
        if allow_none:
            return
        _fail(name, "is required")
    if not isinstance(t, torch.Tensor):
        _fail(name, f"must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != torch.float32:
        _fail(name, f"must be float32, got {t.dtype}")
    if t.device != device:
        _fail(name, f"is on {t.device} but means3D is on {device}")
    for shape in shapes:
        if len(shape) == t.dim() and all(s is None or s == n for s, n in zip(shape, t.shape)):
            return
    wanted = " or ".join("[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
                         for shape in shapes)
    _fail(name, f"must have shape {wanted}, got {list(t.shape)}")


def check_settings(s, means3D):
    """Validates the settings against means3D's device; returns them with contiguous tensors."""
    if not isinstance(means3D, torch.Tensor):
        _fail("means3D", f"must be a torch.Tensor, got {type(means3D).__name__}")
    device = means3D.device
    if device.type != "cpu" and not _C.has_cuda:
        _fail("means3D", f"is on {device}, but this build has only the CPU backend")
    for name in ("image_height", "image_width", "sh_degree"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(f"raster_settings.{name}", f"must be an int, got {type(value).__name__}")
    if s.image_height <= 0 or s.image_width <= 0:
        _fail("raster_settings.image_height/image_width",
              f"must be positive, got {s.image_height} x {s.image_width}")
    if not 0 <= s.sh_degree <= MAX_SH_DEGREE:
        _fail("raster_settings.sh_degree", f"must be in 0..{MAX_SH_DEGREE}, got {s.sh_degree}")
    for name in ("tanfovx", "tanfovy"):
        value = float(getattr(s, name))
        if not value > 0:
            _fail(f"raster_settings.{name}", f"must be positive, got {value}")
    low_pass = float(s.low_pass_variance)
    if not low_pass > 0:  # the conic's determinant floor needs it (csrc/math/gaussian.h)
        _fail("raster_settings.low_pass_variance", f"must be positive, got {low_pass}")
    _check_tensor("raster_settings.bg", s.bg, device, [(3,)])
    _check_tensor("raster_settings.viewmatrix", s.viewmatrix, device, [(4, 4)])
    _check_tensor("raster_settings.projmatrix", s.projmatrix, device, [(4, 4)])
    _check_tensor("raster_settings.campos", s.campos, device, [(3,)])
    return s._replace(bg=s.bg.contiguous(), viewmatrix=s.viewmatrix.contiguous(),
                      projmatrix=s.projmatrix.contiguous(), campos=s.campos.contiguous(),
                      tanfovx=float(s.tanfovx), tanfovy=float(s.tanfovy),
                      scale_modifier=float(s.scale_modifier), low_pass_variance=low_pass)


def check_inputs(s, means3D, means2D, opacities, shs, colors_precomp, scales, rotations,
                 cov3D_precomp, dc=None):
    device = means3D.device
    _check_tensor("means3D", means3D, device, [(None, 3)])
    P = means3D.shape[0]
    _check_tensor("means2D", means2D, device, [(P, 3), (P, 2)])
    _check_tensor("opacities", opacities, device, [(P, 1), (P,)])
    if (shs is None) == (colors_precomp is None):
        _fail("shs/colors_precomp", "— give exactly one of shs and colors_precomp, got "
              + ("both" if shs is not None else "neither"))
    if dc is not None and shs is None:
        _fail("dc", "is given without shs (which then holds the other SH coefficients)")
    n_coeffs = (s.sh_degree + 1) ** 2
    _check_tensor("shs", shs, device, [(P, None, 3)], allow_none=True)
    _check_tensor("dc", dc, device, [(P, 1, 3)], allow_none=True)
    given = 0 if shs is None else shs.shape[1] + (dc is not None)
    if shs is not None and given < n_coeffs:
        _fail("shs", f"has {given} coefficients per Gaussian" + (" with dc" if dc is not None else "")
              + f", but sh_degree {s.sh_degree} needs {n_coeffs}")
    _check_tensor("colors_precomp", colors_precomp, device, [(P, 3)], allow_none=True)
    has_scale_rot = scales is not None or rotations is not None
    if has_scale_rot == (cov3D_precomp is not None):
        _fail("scales/rotations/cov3D_precomp", "— give either scales and rotations or "
              "cov3D_precomp, got " + ("both" if has_scale_rot else "neither"))
    if has_scale_rot:
        _check_tensor("scales", scales, device, [(P, 3)])
        _check_tensor("rotations", rotations, device, [(P, 4)])
    _check_tensor("cov3D_precomp", cov3D_precomp, device, [(P, 6)], allow_none=True)
    if s.debug:
        named = dict(means3D=means3D, opacities=opacities, shs=shs, dc=dc,
                     colors_precomp=colors_precomp,
                     scales=scales, rotations=rotations, cov3D_precomp=cov3D_precomp)
        for name, t in named.items():
            if t is not None and not bool(torch.isfinite(t).all()):
                _fail(name, "contains NaN or Inf (checked because raster_settings.debug is set)")
