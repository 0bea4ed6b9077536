"""The trainable set of 3D Gaussians: raw parameters, their activations, the optimizer, PLY files
and checkpoints.

Public names are the original's so code written against it keeps working. Behind them, every
change to the set of Gaussians goes through one row edit (scene/optimizer_surgery.py,
`edit_rows`), and the decisions of what to densify, prune or relocate, with the statistics they
read, live in the strategy attached for training (scene/strategies.py): the original's
densification methods here are thin entry points that delegate to it.

Raw parameters (pre-activation), N Gaussians, K = (max_sh_degree + 1)² − 1:
    _xyz           [N, 3]     positions
    _features_dc   [N, 1, 3]  SH degree-0 coefficient (colour)
    _features_rest [N, K, 3]  higher SH coefficients
    _scaling       [N, 3]     log of the scale
    _rotation      [N, 4]     quaternion (w, x, y, z), not normalised
    _opacity       [N, 1]     logit of the opacity
"""
import math
from typing import Optional

import numpy as np
import torch
from torch import nn

from diff_gaussian_rasterization import ShAdamStep, adam_matches_torch
from diff_gaussian_rasterization.reference import covariance_3d
from utils.errors import DatasetError
from simple_knn._C import distCUDA2
from utils.general_utils import get_expon_lr_func, inverse_sigmoid, normalize_rows
from utils.sh_utils import RGB2SH
from utils.splat_io import SplatData, detect_format, is_lossy, read_splats, write_splats
from .densification import (INIT_OPACITY, OPACITY_RESET_CEILING, SPLIT_SAMPLES,
                            DensificationStats)
from .optimizer_surgery import RowEdit, apply_row_edit, check_one_tensor_per_group

MIN_NEIGHBOUR_DIST2 = 1e-7  # floor of the squared neighbour distance that sets initial scales
ADAM_EPS = 1e-15
ADAM_BETAS = (0.9, 0.999)  # torch's defaults, as the original uses
F_REST_LR_DIVISOR = 20.0  # higher SH coefficients learn 20x slower than the DC term

# Optimizer group name → attribute holding that parameter (the order is the PLY's and capture's).
PARAMETER_ATTRIBUTES = {
    "xyz": "_xyz", "f_dc": "_features_dc", "f_rest": "_features_rest",
    "opacity": "_opacity", "scaling": "_scaling", "rotation": "_rotation",
}


class GaussianModel:
    def __init__(self, sh_degree: int, optimizer_type: str = "default", device="cpu"):
        self.active_sh_degree = 0
        self.max_sh_degree = sh_degree
        self.optimizer_type = optimizer_type
        self.device = torch.device(device)
        empty = lambda *shape: torch.empty(0, *shape, device=self.device)  # noqa: E731
        self._xyz = empty(3)
        self._features_dc = empty(1, 3)
        self._features_rest = empty((sh_degree + 1) ** 2 - 1, 3)
        self._scaling = empty(3)
        self._rotation = empty(4)
        self._opacity = empty(1)
        self.optimizer = None
        # The densification strategy training attached (attach_strategy): its per-row state
        # travels with every row edit, and the original's densification methods delegate to it.
        self.strategy = None
        self.spatial_lr_scale = 0.0
        self.exposures = None  # scene.exposure.Exposures with --train_test_exp

    # --- activations -----------------------------------------------------------------------
    @property
    def get_scaling(self):
        return torch.exp(self._scaling)

    @property
    def get_rotation(self):
        return normalize_rows(self._rotation)

    @property
    def get_xyz(self):
        return self._xyz

    @property
    def get_features(self):
        return torch.cat((self._features_dc, self._features_rest), dim=1)

    @property
    def get_features_dc(self):
        return self._features_dc

    @property
    def get_features_rest(self):
        return self._features_rest

    @property
    def get_opacity(self):
        return torch.sigmoid(self._opacity)

    def get_exposure_from_name(self, image_name: str):
        """[3, 4] exposure of a training image (the original's name), or None."""
        return None if self.exposures is None else self.exposures.matrix(image_name)

    def get_full_covariance(self, scaling_modifier: float = 1.0):
        """[N, 3, 3] R·S·Sᵀ·Rᵀ."""
        return covariance_3d(self.get_scaling, self.get_rotation, scaling_modifier)

    def get_covariance(self, scaling_modifier: float = 1.0):
        """[N, 6] upper triangle (xx, xy, xz, yy, yz, zz) of R·S·Sᵀ·Rᵀ."""
        cov = self.get_full_covariance(scaling_modifier)
        return cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]]

    @property
    def num_points(self) -> int:
        return self._xyz.shape[0]

    def oneupSHdegree(self):
        if self.active_sh_degree < self.max_sh_degree:
            self.active_sh_degree += 1

    # --- initialisation and optimizer --------------------------------------------------------
    def _set_parameters(self, **values):
        """Group name (xyz, f_dc, ...) → values (tensor or array): the new raw nn.Parameters,
        float32 and contiguous on the model's device."""
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.detach()
            data = torch.as_tensor(value, dtype=torch.float32, device=self.device).contiguous()
            setattr(self, PARAMETER_ATTRIBUTES[name], nn.Parameter(data.requires_grad_(True)))

    def create_from_pcd(self, pcd, cam_infos=None, spatial_lr_scale: float = 1.0,
                        init_opacity: float = INIT_OPACITY, init_scale_factor: float = 1.0):
        """One Gaussian per point: its colour, isotropic scale = init_scale_factor × the RMS
        distance to its 3 nearest neighbours, opacity init_opacity (0.1 as the original; the
        MCMC strategy starts at 0.5 and 0.1 × the distance, as its paper's code)."""
        self.spatial_lr_scale = spatial_lr_scale
        points = torch.tensor(np.asarray(pcd.points), dtype=torch.float32, device=self.device)
        colors = torch.tensor(np.asarray(pcd.colors), dtype=torch.float32, device=self.device)
        n = points.shape[0]
        print("Number of points at initialisation : ", n)
        features = torch.zeros((n, 3, (self.max_sh_degree + 1) ** 2), device=self.device)
        features[:, :3, 0] = RGB2SH(colors)
        dist2 = torch.clamp_min(distCUDA2(points.cpu()).to(self.device), MIN_NEIGHBOUR_DIST2)
        scales = torch.log(torch.sqrt(dist2))[:, None].repeat(1, 3)
        if init_scale_factor != 1.0:
            scales = scales + math.log(init_scale_factor)
        rots = torch.zeros((n, 4), device=self.device)
        rots[:, 0] = 1
        opacities = inverse_sigmoid(torch.full((n, 1), init_opacity, device=self.device))
        self._set_parameters(xyz=points, f_dc=features[:, :, 0:1].transpose(1, 2),
                             f_rest=features[:, :, 1:].transpose(1, 2), opacity=opacities,
                             scaling=scales, rotation=rots)

    def training_setup(self, training_args):
        # A batch of B views per step (--batch_size): learning rates × √B and Adam's betas raised
        # to the B-th power, as Grendel-GS does, so that B steps' worth of views move the model
        # about as far as B single-view steps would. B = 1 leaves the original's values.
        batch = getattr(training_args, "batch_size", 1)
        lr_scale = math.sqrt(batch)
        betas = (ADAM_BETAS[0] ** batch, ADAM_BETAS[1] ** batch)
        rates = {
            "xyz": training_args.position_lr_init * self.spatial_lr_scale,
            "f_dc": training_args.feature_lr,
            "f_rest": training_args.feature_lr / F_REST_LR_DIVISOR,
            "opacity": training_args.opacity_lr,
            "scaling": training_args.scaling_lr,
            "rotation": training_args.rotation_lr,
        }
        if batch != 1:
            rates = {name: rate * lr_scale for name, rate in rates.items()}
        groups = [{"params": [getattr(self, attr)], "lr": rates[name], "name": name}
                  for name, attr in PARAMETER_ATTRIBUTES.items()]
        if self.optimizer_type == "sparse_adam":
            from utils.sparse_adam import SparseGaussianAdam
            self.optimizer = SparseGaussianAdam(groups, lr=0.0, betas=betas, eps=ADAM_EPS)
        elif self.optimizer_type == "default":
            # fused: torch's single-kernel Adam (same algorithm and state; 5x faster on the CPU
            # than the per-tensor loop at 100k Gaussians; results agree to float rounding).
            # --reference_kernels keeps the per-tensor loop, as the original.
            self.optimizer = torch.optim.Adam(groups, lr=0.0, betas=betas, eps=ADAM_EPS,
                                              fused=not training_args.reference_kernels)
        else:
            raise ValueError(f"--optimizer_type must be 'default' or 'sparse_adam', "
                             f"not {self.optimizer_type!r}")
        check_one_tensor_per_group(self.optimizer)
        self._start_optimizer_state()
        if self.exposures is not None:
            self.exposures.training_setup(training_args)
        # lr_delay_mult is not passed for xyz, as in the original (position_lr_delay_mult has
        # no effect there either: without delay steps the delay branch never runs).
        self.xyz_scheduler_args = get_expon_lr_func(
            lr_init=training_args.position_lr_init * self.spatial_lr_scale * lr_scale,
            lr_final=training_args.position_lr_final * self.spatial_lr_scale * lr_scale,
            max_steps=training_args.position_lr_max_steps)

    def current_xyz_lr(self) -> float:
        return next(g["lr"] for g in self.optimizer.param_groups if g["name"] == "xyz")

    def update_learning_rate(self, iteration: int) -> float:
        """Only xyz (and the exposures) are scheduled; returns the new xyz rate."""
        if self.exposures is not None:
            self.exposures.update_learning_rate(iteration)
        for group in self.optimizer.param_groups:
            if group["name"] == "xyz":
                lr = self.xyz_scheduler_args(iteration)
                group["lr"] = lr
                return lr

    def _start_optimizer_state(self) -> None:
        """Every group's Adam state (step 0, zero moments), as torch would make it at the first
        step. Made now, before any step's temporaries exist, the moments (two thirds of a
        model's memory) sit together at the start of the heap and every step's temporaries
        reuse the same space above them; made by the first step, they land between that step's
        freed temporaries and the heap grows by ~0.14 KiB per Gaussian (benchmarks/memory.py)."""
        fused = bool(self.optimizer.defaults.get("fused"))
        for group in self.optimizer.param_groups:
            param = group["params"][0]
            state = self.optimizer.state[param]
            if state:
                continue
            # torch: a float32 count, on the parameter's device only for the fused kernel.
            state["step"] = torch.zeros((), dtype=torch.float32,
                                        device=param.device if fused else "cpu")
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)

    def sh_rest_adam(self) -> Optional[ShAdamStep]:
        """This step's Adam update of f_rest for the rasterizer's backward pass to apply row by
        row (so that f_rest's gradient, the largest tensor of a step, is never allocated), or
        None where that would not reproduce `optimizer_step` bit for bit: the default optimizer
        as torch's fused Adam on the CPU, checked against the installed torch, or sparse_adam
        on the CPU (whose CPU step is the same code)."""
        if self.device.type != "cpu":
            return None
        sparse = self.optimizer_type == "sparse_adam"
        if not sparse and (self.optimizer_type != "default"
                           or not self.optimizer.defaults.get("fused")
                           or not adam_matches_torch()):
            return None
        group = next(g for g in self.optimizer.param_groups if g["name"] == "f_rest")
        if group["weight_decay"] or group["amsgrad"] or group["maximize"]:
            return None
        state = self.optimizer.state[group["params"][0]]
        if not state:  # a checkpoint of a run that had not stepped yet
            self._start_optimizer_state()
        return ShAdamStep(state["exp_avg"], state["exp_avg_sq"], state["step"], group["lr"],
                          group["betas"], group["eps"], visible_only=sparse)

    def optimizer_step(self, visible: torch.Tensor):
        """One optimizer step and zero_grad. visible [N] bool (radii > 0) is used by
        sparse_adam, which updates only those rows; Adam updates every row. The exposures
        (--train_test_exp) step first, as the original."""
        if self.exposures is not None:
            self.exposures.step()
        if self.optimizer_type == "sparse_adam":
            self.optimizer.step(visible, self.num_points)
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    # --- the row edit, behind the original's method names ------------------------------------
    def attach_strategy(self, strategy) -> None:
        """Train with `strategy` (scene/strategies.py): it starts its per-row state for the
        current rows, and every row edit from now on carries that state along."""
        self.strategy = strategy
        strategy.initialize_state(self.num_points, self.device)

    def edit_rows(self, edit: RowEdit):
        """Apply one row edit to every parameter, its Adam moments and the attached strategy's
        per-row state."""
        extra = self.strategy.per_row_state() if self.strategy is not None else {}
        params, extra = apply_row_edit(self.optimizer, extra, edit)
        for name, param in params.items():
            setattr(self, PARAMETER_ATTRIBUTES[name], param)
        if self.strategy is not None:
            self.strategy.set_per_row_state(extra)
        return params

    def cat_tensors_to_optimizer(self, tensors_dict):
        """Append rows (group name → [M, ...]); new moments and per-row state are zero."""
        return self.edit_rows(RowEdit(append=tensors_dict))

    def replace_tensor_to_optimizer(self, tensor, name):
        """Replace every row of one group; its Adam moments restart at zero."""
        return self.edit_rows(RowEdit(replace={name: tensor}))

    def _prune_optimizer(self, mask):
        """Keep the rows where `mask` [N] is True (the original's helper of prune_points)."""
        return self.edit_rows(RowEdit(keep=mask))

    def prune_points(self, mask):
        """Remove the rows where `mask` [N] is True."""
        self._prune_optimizer(~mask)

    def densification_postfix(self, new_xyz, new_features_dc, new_features_rest, new_opacities,
                              new_scaling, new_rotation, keep_mask=None):
        """Append new Gaussians (optionally dropping the rows not in `keep_mask` in the same
        edit); the strategy restarts its statistics afterwards."""
        self.edit_rows(RowEdit(keep=keep_mask, append={
            "xyz": new_xyz, "f_dc": new_features_dc, "f_rest": new_features_rest,
            "opacity": new_opacities, "scaling": new_scaling, "rotation": new_rotation}))

    def rows_of(self, rows):
        """Group name → raw parameter rows selected by `rows` ([N] bool or [K] indices)."""
        return {name: getattr(self, attr)[rows] for name, attr in PARAMETER_ATTRIBUTES.items()}

    def reset_opacity(self):
        ceiling = torch.full_like(self._opacity, OPACITY_RESET_CEILING)
        new = inverse_sigmoid(torch.min(self.get_opacity, ceiling))
        self.replace_tensor_to_optimizer(new, "opacity")

    @torch.no_grad()
    def displace(self, offsets: torch.Tensor) -> None:
        """Move every position by offsets [N, 3] in place (moments untouched: MCMC's noise)."""
        self._xyz.add_(offsets)

    # --- the original's densification entry points (the default strategy does the work) -------
    def _densification(self):
        if self.strategy is None or not hasattr(self.strategy, "densify_and_prune"):
            raise RuntimeError("the original's densification needs the default strategy "
                               "attached (attach_strategy)")
        return self.strategy

    def add_densification_stats(self, viewspace_point_tensor, update_filter):
        """One view's gradient statistics (viewspace_point_tensor.grad [N, 2+], update_filter
        [N] bool or indices), as the original's."""
        self._densification().stats.add(viewspace_point_tensor.grad[:, :2], update_filter)

    def densify_and_clone(self, grads, grad_threshold, scene_extent):
        self._densification().densify_and_clone(self, grads, grad_threshold, scene_extent)

    def densify_and_split(self, grads, grad_threshold, scene_extent, N=SPLIT_SAMPLES):
        self._densification().densify_and_split(self, grads, grad_threshold, scene_extent, N)

    def densify_and_prune(self, max_grad, min_opacity, extent, max_screen_size, radii=None):
        """The original's signature (radii: GS-2024's, unused: the statistics hold them)."""
        self._densification().densify_and_prune(self, extent, max_screen_size, max_grad,
                                                 min_opacity)

    # --- files (PLY and the compact web formats: utils/splat_io) -------------------------------
    def splat_data(self) -> SplatData:
        """The raw parameters as numpy arrays (what every file format writes)."""
        to_np = lambda t: t.detach().cpu().numpy()  # noqa: E731
        return SplatData(xyz=to_np(self._xyz), f_dc=to_np(self._features_dc[:, 0]),
                         f_rest=to_np(self._features_rest), opacity=to_np(self._opacity[:, 0]),
                         scale=to_np(self._scaling), rotation=to_np(self._rotation))

    def save_ply(self, path):
        """The original's binary PLY, written to a temporary name and renamed."""
        write_splats(self.splat_data(), path, "ply")

    def load_ply(self, path):
        """Load a saved model from any file utils/splat_io reads (the PLY, or an exported
        .compressed.ply / .spz / .splat). A PLY must hold exactly this model's SH degree; the
        lossy web formats may hold fewer bands (.splat has none), which load as zeros."""
        self.load_splats(read_splats(path), path)

    def load_splats(self, data: SplatData, path) -> None:
        """load_ply for data already read from `path` (named in errors)."""
        if data.sh_degree != self.max_sh_degree:
            if data.sh_degree > self.max_sh_degree or not is_lossy(detect_format(path)):
                expected = 3 * (self.max_sh_degree + 1) ** 2 - 3
                raise DatasetError(path, f"has {3 * data.f_rest.shape[1]} f_rest properties; "
                                         f"SH degree {self.max_sh_degree} needs {expected} "
                                         f"(check --sh_degree)")
            data = data.with_sh_degree(self.max_sh_degree)
        self._set_parameters(xyz=data.xyz, f_dc=data.f_dc[:, None, :], f_rest=data.f_rest,
                             opacity=data.opacity[:, None], scaling=data.scale,
                             rotation=data.rotation)
        self.active_sh_degree = self.max_sh_degree

    # --- checkpoints --------------------------------------------------------------------------
    def capture(self):
        """The original's 12-tuple (checkpoint layout of GS-2023/2024); its statistics slots
        hold the attached strategy's (zeros for a strategy without them)."""
        stats = self._statistics_rows()
        return (self.active_sh_degree, self._xyz, self._features_dc, self._features_rest,
                self._scaling, self._rotation, self._opacity, stats["max_radii2D"],
                stats["xyz_gradient_accum"], stats["denom"], self.optimizer.state_dict(),
                self.spatial_lr_scale)

    def _statistics_rows(self) -> dict:
        rows = self.strategy.per_row_state() if self.strategy is not None else {}
        if not rows:
            rows = DensificationStats.zeros(self.num_points, self.device).rows()
        return rows

    def restore(self, model_args, training_args):
        (self.active_sh_degree, xyz, features_dc, features_rest, scaling, rotation, opacity,
         max_radii2D, xyz_gradient_accum, denom, opt_dict, self.spatial_lr_scale) = model_args
        self._set_parameters(xyz=xyz, f_dc=features_dc, f_rest=features_rest, opacity=opacity,
                             scaling=scaling, rotation=rotation)
        self.training_setup(training_args)
        if self.strategy is not None and self.strategy.per_row_state():  # it keeps statistics
            self.strategy.set_per_row_state({
                "xyz_gradient_accum": xyz_gradient_accum.to(self.device),
                "denom": denom.to(self.device), "max_radii2D": max_radii2D.to(self.device)})
        self.optimizer.load_state_dict(opt_dict)
