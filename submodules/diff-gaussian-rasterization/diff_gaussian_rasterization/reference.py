"""Plain PyTorch reference of the rasterizer: dense, written for clarity, differentiated by autograd.

It evaluates every (pixel, Gaussian) pair, so it is only for small tests. It follows the same
semantics as the compiled backends, including the original's deliberate gradient choices:
- no gradient through the min(0.99, .) alpha clamp (straight-through),
- no gradient to the lateral position through the guard-band clamp of the EWA Jacobian,
- no gradient through colour channels clamped at 0 after SH evaluation.
Works in float32 and float64 (the latter for finite-difference checks).
"""
import torch

from .constants import (ALPHA_MAX, ALPHA_MIN, ANTIALIAS_MIN_DET_RATIO, BLOCK_X, BLOCK_Y,
                        EIGEN_MIN_DISCRIMINANT, FRUSTUM_GUARD_BAND,
                        NEAR_PLANE, PROJECTION_W_EPS, RADIUS_SIGMAS, SH_C0, SH_C1, SH_C2, SH_C3,
                        SH_COLOR_OFFSET, TRANSMITTANCE_MIN)


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """[P, 4] quaternions (r, x, y, z), used as given -> [P, 3, 3] matrices."""
    r, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - r * z), 2 * (x * z + r * y),
        2 * (x * y + r * z), 1 - 2 * (x * x + z * z), 2 * (y * z - r * x),
        2 * (x * z - r * y), 2 * (y * z + r * x), 1 - 2 * (x * x + y * y),
    ], -1).reshape(-1, 3, 3)


def covariance_3d(scales, rotations, scale_modifier):
    """Sigma = R S^2 R^T: [P, 3, 3]."""
    L = quat_to_rotmat(rotations) * (scale_modifier * scales)[:, None, :]
    return L @ L.transpose(1, 2)


def cov6_to_matrix(c):
    """[P, 6] upper-triangular entries [00, 01, 02, 11, 12, 22] -> [P, 3, 3]."""
    return torch.stack([c[:, 0], c[:, 1], c[:, 2], c[:, 1], c[:, 3], c[:, 4],
                        c[:, 2], c[:, 4], c[:, 5]], -1).reshape(-1, 3, 3)


def eval_sh(degree: int, sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """SH colour (before the +0.5 offset): sh [P, M, 3], unit dirs [P, 3] -> [P, 3]."""
    x, y, z = (dirs[:, i:i + 1] for i in range(3))
    result = SH_C0 * sh[:, 0]
    if degree >= 1:
        result = result - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        result = (result + SH_C2[0] * xy * sh[:, 4] + SH_C2[1] * yz * sh[:, 5]
                  + SH_C2[2] * (2 * zz - xx - yy) * sh[:, 6] + SH_C2[3] * xz * sh[:, 7]
                  + SH_C2[4] * (xx - yy) * sh[:, 8])
    if degree >= 3:
        result = (result + SH_C3[0] * y * (3 * xx - yy) * sh[:, 9]
                  + SH_C3[1] * xy * z * sh[:, 10]
                  + SH_C3[2] * y * (4 * zz - xx - yy) * sh[:, 11]
                  + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[:, 12]
                  + SH_C3[4] * x * (4 * zz - xx - yy) * sh[:, 13]
                  + SH_C3[5] * z * (xx - yy) * sh[:, 14]
                  + SH_C3[6] * x * (xx - 3 * yy) * sh[:, 15])
    return result


def tile_rects(xy, radius, width: int, height: int):
    """Tile rectangles [x0, x1) x [y0, y1) covered by discs of `radius` pixels around the pixel
    positions xy [P, 2], clamped to the grid: the original's getRect. Returns four [P] tensors."""
    grid_x, grid_y = (width + BLOCK_X - 1) // BLOCK_X, (height + BLOCK_Y - 1) // BLOCK_Y
    x0 = ((xy[:, 0] - radius) / BLOCK_X).clamp(0, grid_x).floor()
    y0 = ((xy[:, 1] - radius) / BLOCK_Y).clamp(0, grid_y).floor()
    x1 = ((xy[:, 0] + radius + BLOCK_X - 1) / BLOCK_X).clamp(0, grid_x).floor()
    y1 = ((xy[:, 1] + radius + BLOCK_Y - 1) / BLOCK_Y).clamp(0, grid_y).floor()
    return x0, y0, x1, y1


def _straight_through_min(x, cap):
    """min(x, cap) in value, identity in gradient."""
    return x - (x - cap).clamp(min=0).detach()


def rasterize_reference(settings, means3D, means2D, opacities, shs=None, colors_precomp=None,
                        scales=None, rotations=None, cov3D_precomp=None, ndc_offset=None):
    """Same call as GaussianRasterizer(settings)(...) -> (color [3,H,W], radii [P], invdepth [1,H,W]).

    As in the compiled renderer, the values of means2D are ignored and its gradient is
    dL/d(projected mean in NDC). ndc_offset ([P, 2], tests only) shifts the projected means, so
    that finite differences can check that gradient.
    """
    s = settings
    dtype, device = means3D.dtype, means3D.device
    H, W = s.image_height, s.image_width
    P = means3D.shape[0]
    view = s.viewmatrix.to(dtype)
    proj = s.projmatrix.to(dtype)
    bg = s.bg.to(dtype)
    campos = s.campos.to(dtype)
    opacities = opacities.reshape(P)

    # --- preprocess -------------------------------------------------------------------------
    hom = torch.cat([means3D, torch.ones(P, 1, dtype=dtype, device=device)], 1)
    t = (hom @ view)[:, :3]  # view space (the matrices are stored transposed)
    clip = hom @ proj
    ndc = clip[:, :2] / (clip[:, 3:4] + PROJECTION_W_EPS)
    if means2D is not None:  # routes dL/d(ndc) to means2D without changing values
        ndc = ndc + (means2D[:, :2] - means2D[:, :2].detach())
    if ndc_offset is not None:
        ndc = ndc + ndc_offset
    size = torch.tensor([W, H], dtype=dtype, device=device)
    xy = ((ndc + 1) * size - 1) * 0.5  # pixel coordinates

    if cov3D_precomp is not None:
        sigma = cov6_to_matrix(cov3D_precomp)
    else:
        sigma = covariance_3d(scales, rotations, s.scale_modifier)

    fx = W / (2 * s.tanfovx)
    fy = H / (2 * s.tanfovy)
    tz = t[:, 2]
    lateral = []
    for axis, tan_half in ((0, s.tanfovx), (1, s.tanfovy)):
        lim = FRUSTUM_GUARD_BAND * tan_half
        ratio = t[:, axis] / tz
        outside = (ratio < -lim) | (ratio > lim)
        lateral.append(torch.where(outside, (ratio.clamp(-lim, lim) * tz).detach(), t[:, axis]))
    tx, ty = lateral
    zero = torch.zeros_like(tz)
    J = torch.stack([fx / tz, zero, -fx * tx / tz ** 2,
                     zero, fy / tz, -fy * ty / tz ** 2], -1).reshape(P, 2, 3)
    T = J @ view[:3, :3].T  # view[:3,:3].T is the world-to-view rotation
    cov2d = T @ sigma @ T.transpose(1, 2)
    a, b, c = cov2d[:, 0, 0], cov2d[:, 0, 1], cov2d[:, 1, 1]
    det_raw = a * c - b * b
    lp = s.low_pass_variance
    a = a + lp
    c = c + lp
    det = a * c - b * b
    # As the kernels: det is at least lp (a + c) - lp^2 (the raw covariance is PSD); rounding can
    # take a c - b^2 below that for needles seen from the side, so it is raised to the bound.
    det_floor = lp * (a + c) - lp * lp
    det = torch.where(det < det_floor, det_floor, det)
    if s.antialiasing:
        opacities = opacities * torch.sqrt((det_raw / det).clamp(min=ANTIALIAS_MIN_DET_RATIO))
    conic_a, conic_b, conic_c = c / det, -b / det, a / det

    with torch.no_grad():
        mid = 0.5 * (a + c)
        disc = torch.sqrt((mid * mid - det).clamp(min=EIGEN_MIN_DISCRIMINANT))
        radius = torch.ceil(RADIUS_SIGMAS * torch.sqrt(torch.maximum(mid + disc, mid - disc)))
        x0, y0, x1, y1 = tile_rects(xy, radius, W, H)
        visible = ((tz > NEAR_PLANE) & torch.isfinite(radius)
                   & torch.isfinite(xy).all(1) & ((x1 - x0) * (y1 - y0) > 0))
        radii = torch.where(visible, radius, torch.zeros_like(radius)).to(torch.int32)

    if colors_precomp is not None:
        rgb = colors_precomp
    else:
        dirs = means3D - campos
        dirs = dirs / dirs.norm(dim=1, keepdim=True)
        rgb = (eval_sh(s.sh_degree, shs, dirs) + SH_COLOR_OFFSET).clamp(min=0)

    # --- blend: every pixel against every visible Gaussian, front to back ---------------------
    idx = torch.nonzero(visible).squeeze(1)
    idx = idx[torch.sort(tz[idx].detach(), stable=True).indices]
    py, px = torch.meshgrid(torch.arange(H, device=device), torch.arange(W, device=device),
                            indexing="ij")
    px = px.reshape(-1, 1)
    py = py.reshape(-1, 1)
    in_rect = ((px // BLOCK_X >= x0[idx]) & (px // BLOCK_X < x1[idx])
               & (py // BLOCK_Y >= y0[idx]) & (py // BLOCK_Y < y1[idx]))  # [HW, V]
    dx = xy[idx, 0] - px.to(dtype)
    dy = xy[idx, 1] - py.to(dtype)
    power = -0.5 * (conic_a[idx] * dx * dx + conic_c[idx] * dy * dy) - conic_b[idx] * dx * dy
    alpha = _straight_through_min(opacities[idx] * torch.exp(power), ALPHA_MAX)
    valid = in_rect & (power <= 0) & (alpha >= ALPHA_MIN)
    alpha = torch.where(valid, alpha, torch.zeros_like(alpha))
    with torch.no_grad():  # a pixel stops at the splat that would push T below the cut
        stop = torch.cumsum((torch.cumprod(1 - alpha, 1) < TRANSMITTANCE_MIN).int(), 1) > 0
    alpha = torch.where(stop, torch.zeros_like(alpha), alpha)
    T_after = torch.cumprod(1 - alpha, 1)
    T_before = torch.cat([torch.ones_like(T_after[:, :1]), T_after[:, :-1]], 1)
    weights = alpha * T_before  # [HW, V]
    T_final = T_after[:, -1] if idx.numel() else torch.ones(H * W, dtype=dtype, device=device)
    color = weights @ rgb[idx] + T_final[:, None] * bg
    invdepth = weights @ (1 / tz[idx])
    return color.T.reshape(3, H, W), radii, invdepth.reshape(1, H, W)

