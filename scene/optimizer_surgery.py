"""The one mechanism that changes the set of Gaussians: a row edit applied in a single pass to
every parameter group, to that group's Adam moments and to every per-Gaussian statistic.

Clone, split, prune, opacity reset and MCMC's relocation and growth are all short callers of
`apply_row_edit`, so the rows of parameters, moments and statistics can never drift apart (the
original writes this surgery three times and re-binds six attributes after each).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import torch
from torch import nn

ADAM_MOMENTS = ("exp_avg", "exp_avg_sq")


@dataclass
class RowEdit:
    """keep, then append, then assign and zero_moments, then replace.

    keep:    [N] bool, the rows that stay (None = all).
    append:  group name → [M, ...] new parameter rows, one entry per group; their Adam moments and
             statistics start at zero.
    assign:  group name → (rows [K] int64, values [K, ...]): overwrite those rows of that group
             (indices after keep and append); their moments are kept unless zero_moments names
             them (MCMC's relocated dead Gaussians keep theirs, to keep exploring).
    zero_moments: [K] int64 rows whose Adam moments restart at zero in every group (MCMC's
             sampled source Gaussians: biased to stay where they are).
    replace: group name → new values for all rows of that group; its moments restart at zero.
    The Adam step count is never changed, as in the original.
    """
    keep: Optional[torch.Tensor] = None
    append: Dict[str, torch.Tensor] = field(default_factory=dict)
    assign: Dict[str, Tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    zero_moments: Optional[torch.Tensor] = None
    replace: Dict[str, torch.Tensor] = field(default_factory=dict)

    def rows(self, tensor: torch.Tensor, new_rows: Optional[torch.Tensor]) -> torch.Tensor:
        if self.keep is not None:
            tensor = tensor[self.keep]
        if new_rows is not None:
            tensor = torch.cat([tensor, new_rows.to(tensor.dtype)], dim=0)
        return tensor

    def appended_count(self) -> int:
        return next(iter(self.append.values())).shape[0] if self.append else 0


def check_one_tensor_per_group(optimizer: torch.optim.Optimizer) -> None:
    """Asserted once at setup: each named group holds exactly one per-Gaussian tensor."""
    for group in optimizer.param_groups:
        assert len(group["params"]) == 1, f"group {group.get('name')} holds {len(group['params'])}"
        assert "name" in group, "every parameter group needs a name"


def apply_row_edit(optimizer: torch.optim.Optimizer, statistics: Dict[str, torch.Tensor],
                   edit: RowEdit):
    """Apply `edit`; returns (parameters by group name, statistics by name).

    An edit that keeps the row count (no keep, no append: MCMC's relocation, the opacity reset)
    writes into the existing parameters and moments, so it costs only the rows it touches;
    otherwise each group's parameter takes its new rows in place (`param.data`, so the model,
    the optimizer and its state keep the same Parameter object) and its moments are edited row
    for row. Groups are rebuilt one after the other and every old tensor is dropped as soon as its
    successor exists, so an edit never holds a second copy of more than one group's tensor at a
    time (a peak-memory bound: at 1M Gaussians a full second copy of every parameter and moment
    is 700 MB). The values are the same either way."""
    same_rows = all(edit.replace[g["name"]].shape == g["params"][0].shape
                    for g in optimizer.param_groups if g["name"] in edit.replace)
    if edit.keep is None and not edit.append and same_rows:
        return _edit_in_place(optimizer, edit), statistics
    if edit.append:
        names = {g["name"] for g in optimizer.param_groups}
        assert set(edit.append) == names, f"append needs rows for every group {sorted(names)}"
    appended = edit.appended_count()
    params = {}
    for group in optimizer.param_groups:
        params[group["name"]] = _rebuild_group(optimizer, group, edit, appended)
    new_statistics = {}
    for name, stat in statistics.items():
        zeros = (torch.zeros((appended,) + stat.shape[1:], dtype=stat.dtype, device=stat.device)
                 if appended else None)
        new_statistics[name] = edit.rows(stat, zeros)
    return params, new_statistics


@torch.no_grad()
def _rebuild_group(optimizer, group, edit: RowEdit, appended: int) -> nn.Parameter:
    """One group of a row edit that changes the row count (or replaces a group's rows)."""
    name = group["name"]
    param = group["params"][0]
    param.grad = None  # stale after any edit (see _edit_in_place); freed before the copies
    if name in edit.replace:
        data = edit.replace[name].detach()
    else:
        data = edit.rows(param.detach(), edit.append.get(name))
        if name in edit.assign:
            rows, values = edit.assign[name]
            data.index_put_((rows,), values.detach().to(data.dtype))  # data is already a copy
    param.data = data.contiguous()  # the old rows go here
    state = optimizer.state.get(param, {})
    for key in ADAM_MOMENTS:
        if key not in state:
            continue
        if name in edit.replace:
            state[key] = torch.zeros_like(param)
            continue
        zeros = (torch.zeros((appended,) + state[key].shape[1:], dtype=state[key].dtype,
                             device=state[key].device) if appended else None)
        state[key] = edit.rows(state[key], zeros)  # the old moment goes here
        if edit.zero_moments is not None:
            state[key].index_fill_(0, edit.zero_moments, 0.0)
    return param


@torch.no_grad()
def _edit_in_place(optimizer: torch.optim.Optimizer, edit: RowEdit) -> Dict[str, nn.Parameter]:
    """assign / zero_moments / replace without a new tensor: at 100k Gaussians a relocation
    otherwise copies every parameter and moment of every group (~60 MB) to change a few
    thousand rows."""
    params = {}
    for group in optimizer.param_groups:
        name = group["name"]
        param = group["params"][0]
        state = optimizer.state.get(param, {})
        moments = [state[key] for key in ADAM_MOMENTS if key in state]
        if name in edit.replace:
            param.copy_(edit.replace[name].detach())
            for moment in moments:
                moment.zero_()
        elif name in edit.assign:
            rows, values = edit.assign[name]
            param.index_put_((rows,), values.detach().to(param.dtype))
        if edit.zero_moments is not None and name not in edit.replace:
            for moment in moments:
                moment.index_fill_(0, edit.zero_moments, 0.0)
        # Every edit leaves the parameters without a gradient, so the optimizer step of an
        # iteration that edits rows skips them, as in the original, the MCMC paper's code and
        # gsplat (each makes new parameters there); the rows' gradients are stale by now.
        param.grad = None
        params[name] = param
    return params
