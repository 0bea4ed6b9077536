"""Small numeric helpers shared by the model and the training loop."""
import math
import random

import numpy as np
import torch
from diff_gaussian_rasterization.reference import quat_to_rotmat

try:  # the rasterizer extension's one-pass CPU row normalisation
    from diff_gaussian_rasterization._C import normalize_rows as _normalize_rows_cpu
    from diff_gaussian_rasterization._C import normalize_rows_backward as _normalize_rows_backward_cpu
except ImportError:  # an older build of the extension
    _normalize_rows_cpu = _normalize_rows_backward_cpu = None


def inverse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x / (1 - x))


def get_expon_lr_func(lr_init: float, lr_final: float, lr_delay_steps: int = 0,
                      lr_delay_mult: float = 1.0, max_steps: int = 1_000_000):
    """Log-linear decay from lr_init (step 0) to lr_final (step max_steps), optionally warmed up
    by a sine ramp over lr_delay_steps (as in Plenoxels / JaxNeRF and the original)."""
    def helper(step: int) -> float:
        if step < 0 or (lr_init == 0.0 and lr_final == 0.0):
            return 0.0
        if lr_delay_steps > 0:
            ramp = math.sin(0.5 * math.pi * min(max(step / lr_delay_steps, 0.0), 1.0))
            delay = lr_delay_mult + (1 - lr_delay_mult) * ramp
        else:
            delay = 1.0
        t = min(max(step / max_steps, 0.0), 1.0)
        return delay * math.exp((1 - t) * math.log(lr_init) + t * math.log(lr_final))
    return helper


class _NormalizeRows(torch.autograd.Function):
    """x / max(|x|, 1e-12) row by row, as torch.nn.functional.normalize. On the CPU one pass of
    the rasterizer extension each way (torch's broadcasts over rows of 4 made this about 4 ms at
    300k quaternions, forward and backward); elsewhere with the row sums as a matrix product,
    which torch does faster than its row reductions."""

    @staticmethod
    def forward(ctx, x):
        if _fused_rows(x):
            out, inv_norm = _normalize_rows_cpu(x)
        else:
            ones = torch.ones(x.shape[1], 1, dtype=x.dtype, device=x.device)
            inv_norm = ((x * x) @ ones).clamp_min_(1e-24).rsqrt_()
            out = x * inv_norm
        ctx.save_for_backward(out, inv_norm)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, inv_norm = ctx.saved_tensors
        if _fused_rows(out) and grad.is_contiguous() and grad.dtype == out.dtype:
            return _normalize_rows_backward_cpu(grad, out, inv_norm)
        # d(x/|x|) = (I - u u^T) / |x|, u = x / |x|
        ones = torch.ones(out.shape[1], 1, dtype=out.dtype, device=out.device)
        return (grad - out * ((grad * out) @ ones)) * inv_norm


def _fused_rows(x: torch.Tensor) -> bool:
    return (_normalize_rows_cpu is not None and x.is_cpu and x.dtype == torch.float32
            and x.dim() == 2 and x.is_contiguous() and x.shape[1] > 0)


def normalize_rows(x: torch.Tensor) -> torch.Tensor:
    """[N, K] rows scaled to unit length (differentiable)."""
    return _NormalizeRows.apply(x)


def build_rotation(quats: torch.Tensor) -> torch.Tensor:
    """[N, 4] quaternions (w, x, y, z), any norm → [N, 3, 3] rotation matrices (the rasterizer
    reference's formula, after normalising)."""
    return quat_to_rotmat(quats / quats.norm(dim=1, keepdim=True))


def seed_everything(seed: int) -> None:
    """The one explicit seeding call (Python, numpy, torch)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Python and torch RNG states, in a form torch.load(weights_only=True) accepts."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuples(state["python"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(value):
    """random.setstate needs tuples; a round trip through some serialisers gives lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value
