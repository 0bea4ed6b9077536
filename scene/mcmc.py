"""The math of 3DGS-MCMC (Kheradmand et al., NeurIPS 2024): where dead Gaussians go, what opacity
and scale the copies of a Gaussian get so that together they render like it did, and the
opacity-gated position noise. Pure functions of tensors; the strategy that calls them at the
right iterations is scene/strategies.py.
"""
import math

import torch

try:  # the rasterizer extension's one-pass CPU version of position_noise (with its own draws)
    from diff_gaussian_rasterization._C import mcmc_noise_draws as _  # noqa: F401
    from diff_gaussian_rasterization._C import mcmc_position_noise_ as _fused_position_noise
except ImportError:  # an older build of the extension
    _fused_position_noise = None

DEAD_OPACITY = 0.005  # a Gaussian at or below this opacity is "dead" and gets relocated
GROWTH_RATE = 0.05  # each refinement adds 5 % new Gaussians (or more: growth_count), up to cap_max
MAX_COPIES = 51  # a Gaussian is split into at most this many copies (the paper's n_max)
# Relocated opacities stay in [DEAD_OPACITY, 1 - eps]: never dead on arrival, never exactly 1.
MAX_RELOCATED_OPACITY = 1.0 - torch.finfo(torch.float32).eps
NOISE_GATE_SHARPNESS = 100.0  # noise gate: sigmoid(k·((1 − opacity) − x0)), the paper's k and x0
NOISE_GATE_CENTRE = 1.0 - DEAD_OPACITY  # so the gate opens around the dead-opacity threshold


def growth_count(count: int, cap_max: int, refinements_left: int = 0) -> int:
    """How many Gaussians one refinement adds to `count`: 5 %, or the constant rate that reaches
    cap_max within `refinements_left` refinements where 5 % would not (0: no such deadline)."""
    target = int((1.0 + GROWTH_RATE) * count)
    if refinements_left > 0 and 0 < count < cap_max:
        target = max(target, math.ceil(count * (cap_max / count) ** (1.0 / refinements_left)))
    return max(0, min(cap_max, target) - count)


def binomial_table(n: int = MAX_COPIES) -> torch.Tensor:
    """[n, n] float64: row r holds C(r, k) for k = 0..r (zero beyond)."""
    table = torch.zeros(n, n, dtype=torch.float64)
    for r in range(n):
        for k in range(r + 1):
            table[r, k] = math.comb(r, k)
    return table


_BINOMIALS = binomial_table()


def relocated_opacity(opacity: torch.Tensor, copies: torch.Tensor) -> torch.Tensor:
    """Opacity o' of each of n copies so that n stacked copies pass the light one did:
    1 − (1 − o')ⁿ = o  →  o' = 1 − (1 − o)^(1/n). opacity [K], copies [K] int ≥ 1."""
    return 1.0 - torch.pow(1.0 - opacity, 1.0 / copies.to(opacity.dtype))


def relocation_scale_factor(opacity: torch.Tensor, new_opacity: torch.Tensor,
                            copies: torch.Tensor) -> torch.Tensor:
    """The factor on the scale of each copy (the paper's Eq. 9) so that the sum of the n copies'
    contributions at the centre matches the original's:
        factor = o / Σ_{i=1..n} Σ_{k=0..i−1} C(i−1, k) (−1)ᵏ (o')^(k+1) / sqrt(k+1).
    Evaluated in float64 (the alternating sum cancels), returned in the opacity's dtype."""
    n_max = int(copies.max()) if copies.numel() else 1
    o_new = new_opacity.double()
    k = torch.arange(n_max, dtype=torch.float64, device=opacity.device)
    # term[g, k] = (−1)ᵏ (o')^(k+1) / sqrt(k+1)
    terms = (-1.0) ** k * o_new[:, None] ** (k + 1) / torch.sqrt(k + 1)
    # inner[g, i-1] = Σ_k C(i−1, k) term[g, k], for i = 1..n_max
    binomials = _BINOMIALS[:n_max, :n_max].to(opacity.device)
    inner = terms @ binomials.T
    # Only i ≤ n counts for each Gaussian.
    upto = torch.arange(1, n_max + 1, device=opacity.device)[None, :] <= copies[:, None]
    denominator = (inner * upto).sum(dim=1)
    return (opacity.double() / denominator).to(opacity.dtype)


def split_into_copies(opacity: torch.Tensor, scales: torch.Tensor, copies: torch.Tensor):
    """(opacity [K], scales [K, 3]) of each of `copies` [K] copies of K Gaussians, with the
    copy count clamped to 1..MAX_COPIES and the opacity to [DEAD_OPACITY, 1 − eps]."""
    copies = copies.clamp(1, MAX_COPIES)
    new_opacity = relocated_opacity(opacity, copies)
    factor = relocation_scale_factor(opacity, new_opacity, copies)
    new_opacity = new_opacity.clamp(DEAD_OPACITY, MAX_RELOCATED_OPACITY)
    return new_opacity, scales * factor[:, None]


def sample_by_opacity(opacity: torch.Tensor, count: int, generator=None) -> torch.Tensor:
    """`count` indices into opacity [M], drawn with replacement with probability ∝ opacity
    (torch's global RNG unless a generator is given, so checkpoints can resume it)."""
    probs = opacity / (opacity.sum() + torch.finfo(opacity.dtype).eps)
    return torch.multinomial(probs, count, replacement=True, generator=generator)


def noise_gate(opacity: torch.Tensor) -> torch.Tensor:
    """≈1 for near-dead Gaussians (opacity ≲ 0.005), ≈0 for visible ones: the paper's
    sigmoid(100·((1 − o) − 0.995))."""
    return torch.sigmoid(NOISE_GATE_SHARPNESS * ((1.0 - opacity) - NOISE_GATE_CENTRE))


def rotate(quats: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """R(q)·v for unit quaternions (w, x, y, z) [N, 4] and vectors [N, 3], without building the
    3×3 matrices: v + 2w(u × v) + 2u × (u × v), u = (x, y, z)."""
    w, u = quats[:, :1], quats[:, 1:]
    t = 2.0 * torch.linalg.cross(u, vectors, dim=1)
    return vectors + w * t + torch.linalg.cross(u, t, dim=1)


def covariance_times(quats: torch.Tensor, scales: torch.Tensor,
                     vectors: torch.Tensor) -> torch.Tensor:
    """Σ·v with Σ = R S² Rᵀ (each Gaussian's covariance) for unit quats [N, 4], activated scales
    [N, 3] and vectors [N, 3]: two quaternion rotations instead of [N, 3, 3] matrices (3x faster
    on the CPU at 100k Gaussians)."""
    conjugate = quats * quats.new_tensor([1.0, -1.0, -1.0, -1.0])
    return rotate(quats, scales * scales * rotate(conjugate, vectors))


def position_noise(quats: torch.Tensor, scales: torch.Tensor, opacity: torch.Tensor,
                   scale: float, generator=None) -> torch.Tensor:
    """[N, 3] displacement Σ·ε·gate(o)·scale with ε ~ N(0, I): shaped by each Gaussian's own
    covariance Σ (unit quats [N, 4], activated scales [N, 3]) and switched off for opaque ones.
    scale = noise_lr × the current xyz learning rate."""
    eps = torch.randn(opacity.shape[0], 3, dtype=scales.dtype, device=scales.device,
                      generator=generator)
    eps = eps * (noise_gate(opacity.reshape(-1)) * scale)[:, None]
    return covariance_times(quats, scales, eps)


def fused_noise_available(xyz: torch.Tensor) -> bool:
    return _fused_position_noise is not None and xyz.is_cpu and xyz.is_contiguous()


def noise_key(generator=None) -> list:
    """The fused noise's stream for one step: two 32-bit words from torch's RNG (the global one
    unless a generator is given), so a checkpoint of that RNG resumes the draws exactly."""
    return torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=generator).tolist()


def add_position_noise_fused(xyz: torch.Tensor, log_scales: torch.Tensor, quats: torch.Tensor,
                             opacity_logits: torch.Tensor, scale: float, generator=None) -> None:
    """position_noise added to xyz in place, in one pass over the raw parameters (log-scales,
    unnormalised quaternions, opacity logits) instead of some twenty torch operations, with ε
    drawn inside the pass from a counter-based generator keyed by noise_key (torch's randn is
    single-threaded and alone cost more than the rest): the same formula and distribution,
    another random stream than position_noise's. CPU tensors, with the rasterizer extension's
    mcmc_position_noise_; mcmc_noise_draws(n, key) returns the ε it uses."""
    _fused_position_noise(xyz.data, log_scales.data.contiguous(), quats.data.contiguous(),
                          opacity_logits.data.contiguous(), noise_key(generator), float(scale),
                          NOISE_GATE_SHARPNESS, NOISE_GATE_CENTRE)
