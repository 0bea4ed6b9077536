"""torch's fused Adam step on `shs` inside the rasterizer's backward pass (CPU).

A training step's SH gradient is the largest tensor it allocates (45 floats per Gaussian at
degree 3). Given an ShAdamStep, the backward pass instead applies Adam to each Gaussian's
coefficients as soon as their gradient is known, with torch's arithmetic, so the parameter and
both moments end bit for bit where `torch.optim.Adam(fused=True).step()` would have put them.
torch rounds the last few elements of each tensor differently, by its vector width
(csrc/cpu/adam.h); `adam_matches_torch` checks once per process and thread count that this build
reproduces the installed torch, and callers use the fused path only then.
"""
from functools import lru_cache
from typing import NamedTuple, Optional, Tuple

import torch

from . import _C

class ShAdamStep(NamedTuple):
    """One Adam step for `shs`: the state torch.optim.Adam keeps for it and its group's
    hyperparameters. `step` (torch's state["step"]) is incremented in place by the backward.
    visible_only: update only the rows of Gaussians drawn in the view (radius > 0), as the
    original's sparse_adam; the others keep their values and moments."""
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    step: torch.Tensor
    lr: float
    betas: Tuple[float, float]
    eps: float
    visible_only: bool = False

    def hyperparameters(self) -> list:
        """The extension's list (csrc/ext.cpp, make_sh_gradient), for the current step."""
        return [self.lr, self.betas[0], self.betas[1], self.eps, float(self.step.item()),
                torch_lanes(), float(self.visible_only)]


def torch_lanes() -> int:
    """The float vector width of torch's fused Adam at the current thread count."""
    return torch_adam_lanes(torch.get_num_threads()) or 8


def adam_step_(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor,
               exp_avg_sq: torch.Tensor, step: float, lr: float, betas: Tuple[float, float],
               eps: float, lanes: Optional[int] = None) -> None:
    """The fused path's arithmetic on a whole tensor, in place (step: after its increment)."""
    _C.adam_step_(param, grad, [exp_avg, exp_avg_sq],
                  [lr, betas[0], betas[1], eps, float(step), lanes or torch_lanes(), 0.0])


def adam_rows_(param: torch.Tensor, grad: torch.Tensor, rows: torch.Tensor,
               step: ShAdamStep) -> None:
    """The same arithmetic on the rows of `param` ([N, ...]) that `rows` ([N] bool) flags, in
    place; the others are not touched (sparse_adam's step, CPU)."""
    _C.adam_rows_(param, grad, [step.exp_avg, step.exp_avg_sq], step.hyperparameters(),
                  rows.contiguous())


def adam_matches_torch() -> bool:
    """Whether `adam_step_` gives torch.optim.Adam(fused=True)'s bits (at the current thread
    count: torch's splitting of a tensor over its threads is checked too)."""
    return torch_adam_lanes(torch.get_num_threads()) is not None


@lru_cache(maxsize=None)
def torch_adam_lanes(threads: int) -> Optional[int]:
    """The vector width torch's fused Adam runs with (it need not be the widest the CPU has:
    torch 2.13 runs its AVX2 kernel on AVX-512 machines), found by trying each; None if
    neither reproduces torch."""
    return next((lanes for lanes in (8, 16) if _reproduces_torch(threads, lanes)), None)


def _reproduces_torch(threads: int, lanes: int) -> bool:
    """Several tensor sizes (so that both of torch's roundings occur), two steps each."""
    generator = torch.Generator().manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return all(_same_step(n, threads, lanes, generator)
                   for n in (1, 15, 17, 45 * 64, 45 * 1000 + 13, 45 * 777 + 5, 45 * 4097 + 29))
    finally:
        torch.set_num_threads(previous)


def _same_step(n: int, threads: int, lanes: int, generator: torch.Generator) -> bool:
    values = torch.randn(n, generator=generator)
    ours = values.clone()
    theirs = torch.nn.Parameter(values.clone())
    optimizer = torch.optim.Adam([theirs], lr=1e-3, eps=1e-15, fused=True)
    exp_avg, exp_avg_sq = torch.zeros(n), torch.zeros(n)
    for step in (1, 2):
        grad = torch.randn(n, generator=generator) * 1e-3
        grad[::3] = 0.0  # rows of Gaussians nobody saw
        theirs.grad = grad.clone()
        optimizer.step()
        adam_step_(ours, grad, exp_avg, exp_avg_sq, step, 1e-3, (0.9, 0.999), 1e-15,
                   lanes)
    state = optimizer.state[theirs]
    return all(torch.equal(a.view(torch.int32), b.view(torch.int32))
               for a, b in ((ours, theirs.detach()), (exp_avg, state["exp_avg"]),
                            (exp_avg_sq, state["exp_avg_sq"])))
