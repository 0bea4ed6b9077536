"""Adam that updates only the Gaussians visible in the step (`--optimizer_type sparse_adam`, as
the 2024 original's accelerated option).

Invisible Gaussians get no gradient from the rasterizer, but dense Adam still moves them with
their decaying moments and spends time on every row. Here the moments and parameters of rows with
radii == 0 stay untouched. On the CPU the visible rows are updated in place by the rasterizer
extension with torch's fused Adam arithmetic (f_rest's inside the backward pass, where training
can: GaussianModel.sh_rest_adam); elsewhere by torch operations with torch Adam's arithmetic
(same bias correction, same order of operations). Either way, with every Gaussian visible the
result equals torch.optim.Adam's to float rounding. The state layout is Adam's, so checkpoints
and the row edits work unchanged.
"""
import math

import torch
from diff_gaussian_rasterization.adam import ShAdamStep, adam_rows_


class SparseGaussianAdam(torch.optim.Adam):
    @torch.no_grad()
    def step(self, visibility: torch.Tensor, N: int):
        """visibility: [N] bool, the rows to update."""
        rows = None  # their indices, for the torch path only
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                assert param.shape[0] == N, "sparse_adam expects per-Gaussian parameters"
                state = self.state[param]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param,
                                                           memory_format=torch.preserve_format)
                state["step"] += 1
                if param.device.type == "cpu":
                    adam_rows_(param, param.grad, visibility, ShAdamStep(
                        state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"],
                        group["betas"], group["eps"]))
                    continue
                if rows is None:
                    rows = visibility.nonzero().squeeze(1)
                step = state["step"].item()
                grad = param.grad.index_select(0, rows)
                exp_avg = state["exp_avg"].index_select(0, rows)
                exp_avg_sq = state["exp_avg_sq"].index_select(0, rows)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] / (1 - beta1 ** step)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2 ** step)).add_(group["eps"])
                values = param.index_select(0, rows).addcdiv_(exp_avg, denom, value=-step_size)
                state["exp_avg"].index_copy_(0, rows, exp_avg)
                state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
                param.index_copy_(0, rows, values)
