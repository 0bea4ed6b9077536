"""Densification strategies: what happens to the set of Gaussians during training.

The training loop calls the same hooks of whichever strategy `--strategy` names and never branches
on its name:

    gaussians.attach_strategy(strategy)                           once: its per-row state
    loss = photometric + strategy.regularization(gaussians)      (None: nothing to add)
    loss.backward()                                               (each view of the step)
    strategy.record_view(iteration, gaussians, view)              statistics, each view in order
    strategy.refine(iteration, gaussians, context)               densify/prune/reset, relocate
    optimizer step
    strategy.after_optimizer_step(iteration, gaussians)           (MCMC: position noise)

Each strategy edits rows only through GaussianModel.edit_rows (scene/optimizer_surgery.py), holds
its thresholds and schedule itself, and its settings go into checkpoints (`state_dict`). A
strategy owns its per-Gaussian state (gsplat's `initialize_state` idea): the default strategy's
statistics (`DensificationStats`) live here, and every row edit carries them along as extra
per-row tensors (`per_row_state` / `set_per_row_state`); MCMC keeps none.

- DefaultStrategy: the original's clone → split → prune every 100 iterations and the opacity
  reset (GS-2024 train.py), with its thresholds in one place.
- MCMCStrategy: 3DGS-MCMC (Kheradmand et al. 2024; gsplat's MCMCStrategy): a Gaussian budget
  (`--cap_max`), dead Gaussians relocated onto live ones, +5 % per refinement, opacity-gated
  position noise, L1 regularisers on opacity and scale, no opacity reset.
"""
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Dict, Optional

import torch

from arguments import MCMCParams, StrategyParams
from utils.errors import DatasetError, UsageError
from utils.general_utils import inverse_sigmoid
from . import mcmc
from .camera_path import distance_to_path
from .densification import (INIT_OPACITY, PRUNE_MIN_OPACITY, SCREEN_SIZE_PRUNE_PIXELS,
                            SPLIT_SAMPLES, DensificationStats, clone_mask, prune_mask, split_mask,
                            split_samples)
from .optimizer_surgery import RowEdit

# MCMC starts every Gaussian at opacity 0.5 and 0.1 × the neighbour-distance scale (the paper's
# code and gsplat's MCMC configuration): many small, half-transparent Gaussians to relocate.
MCMC_INIT_OPACITY = 0.5
MCMC_INIT_SCALE_FACTOR = 0.1
# Each strategy's own defaults for the schedule flags they share (used where --densification_
# interval / --densify_until_iter are not given). The default strategy: the original's. MCMC:
# the paper's code refines until 25,000 every 100 iterations; we refine every 25 and grow fast
# enough to reach --cap_max by --cap_by_iter (2,000), so that the short runs a CPU affords are
# at their Gaussian budget for most of the run and dead Gaussians are recycled quickly
# (docs/strategies.md has the measurements).
DEFAULT_SCHEDULE = {"densification_interval": 100, "densify_until_iter": 15_000}
MCMC_SCHEDULE = {"densification_interval": 25, "densify_until_iter": 25_000}


def schedule(opt, defaults: dict) -> dict:
    """The shared schedule flags, each strategy's default where not given."""
    return {name: default if getattr(opt, name) is None else getattr(opt, name)
            for name, default in defaults.items()}


@dataclass(frozen=True)
class Initialisation:
    """How the Gaussians start: from the SfM points or random points in the cameras' extent
    (--init_type, --init_num), with this opacity and this factor on the neighbour-distance
    scale."""
    points: str = "sfm"
    num_random: int = 100_000
    min_points: int = 0  # SfM starts with fewer points get jittered copies up to this many
    opacity: float = INIT_OPACITY
    scale_factor: float = 1.0


@dataclass(frozen=True)
class RefineContext:
    """What a refinement may need besides the model: the scene's extent (cameras_extent), the
    training cameras' path (scene/camera_path.py, [S, 2, 3]; None: no path) and the share of
    the Gaussian budget the current rendering resolution allows (scene/resolution.py)."""
    extent: float
    camera_path: Optional[torch.Tensor] = None
    budget_fraction: float = 1.0


@dataclass
class ViewStatistics:
    """What a strategy's statistics read of one rendered view of a step."""
    # [N, 2] dL/d(projected mean), this view's own (not ÷ B); None where collects_statistics
    # said the strategy reads none
    viewspace_grad: Optional[torch.Tensor]
    visibility: torch.Tensor  # [N] bool, drawn in this view (radius > 0)
    radii: torch.Tensor  # [N] screen radius in pixels (0: not drawn)


class Strategy:
    name = ""

    init: Initialisation  # each strategy's dataclass field

    def initialisation(self) -> Initialisation:
        """How Scene creates the Gaussians for this strategy."""
        return self.init

    def regularization(self, gaussians) -> Optional[torch.Tensor]:
        """A term added to the loss (before backward), or None."""
        return None

    def collects_statistics(self, iteration: int) -> bool:
        """Whether record_view needs the view-space gradients of this iteration."""
        return False

    def edits_rows_at(self, iteration: int) -> bool:
        """Whether refine changes the set of Gaussians at this iteration."""
        return False

    def will_edit_rows(self, iteration: int, gaussians, context: RefineContext) -> Optional[bool]:
        """Whether refine will edit rows at this iteration, told before the step's forward pass
        (None: cannot tell before it runs). A row edit leaves every parameter without a
        gradient, so the optimizer step after it reads none of this step's gradients."""
        return None if self.edits_rows_at(iteration) else False

    def initialize_state(self, num_points: int, device) -> None:
        """Start the per-Gaussian state for a model of num_points rows (none by default)."""

    def per_row_state(self) -> Dict[str, torch.Tensor]:
        """Name → [N, ...] tensors that every row edit must carry along (none by default)."""
        return {}

    def set_per_row_state(self, rows: Dict[str, torch.Tensor]) -> None:
        """Take back per_row_state's tensors after a row edit (or from a checkpoint)."""

    def record_view(self, iteration: int, gaussians, view: ViewStatistics) -> None:
        """Statistics of one rendered view, before any row edit of this step."""

    def refine(self, iteration: int, gaussians, context: RefineContext) -> None:
        """Row edits scheduled at this iteration (after every view's statistics)."""

    def after_optimizer_step(self, iteration: int, gaussians) -> None:
        """After the optimizer step (not run at the last iteration, which has no step)."""

    def settings(self) -> dict:
        """The strategy's settings (its dataclass fields given at construction)."""
        settings = {}
        for f in fields(self):
            if f.init:  # not the state (DefaultStrategy.stats)
                value = getattr(self, f.name)
                settings[f.name] = asdict(value) if is_dataclass(value) else value
        return settings

    def state_dict(self) -> dict:
        """What a checkpoint records: the strategy's name and settings (its random draws use
        torch's global RNG, which the checkpoint saves; its per-row state goes into the model's
        capture() slots)."""
        return {"name": self.name, "settings": self.settings()}

    def check_state(self, state: dict, path: str) -> None:
        """Refuse to resume a checkpoint written by another strategy."""
        if state.get("name") != self.name:
            raise DatasetError(path, f"was written with --strategy {state.get('name')}; resume it "
                                     f"with the same strategy (not {self.name})")


@dataclass(eq=False)
class DefaultStrategy(Strategy):
    """The original's adaptive density control. Settings come from the flags (from_params);
    their defaults live in arguments (and DEFAULT_SCHEDULE where the flag is not given). Its
    state: the densification statistics (`stats`, started by initialize_state)."""
    grad_threshold: float
    percent_dense: float
    densify_from_iter: int
    densify_until_iter: int
    densification_interval: int
    opacity_reset_interval: int
    white_background: bool
    # False reproduces the original, whose screen-size prune never fires (docs/differences.md).
    screen_size_prune: bool
    init: Initialisation
    min_opacity: float = PRUNE_MIN_OPACITY
    stats: Optional[DensificationStats] = field(default=None, init=False, repr=False)

    name = "default"

    @classmethod
    def from_params(cls, opt, choice: StrategyParams = StrategyParams(),
                    white_background: bool = False) -> "DefaultStrategy":
        return cls(grad_threshold=opt.densify_grad_threshold, percent_dense=opt.percent_dense,
                   densify_from_iter=opt.densify_from_iter, **schedule(opt, DEFAULT_SCHEDULE),
                   opacity_reset_interval=opt.opacity_reset_interval,
                   white_background=white_background,
                   screen_size_prune=choice.screen_size_prune,
                   init=Initialisation(points=choice.init_type, num_random=choice.init_num))

    # --- schedule ---------------------------------------------------------------------------
    def collects_statistics(self, iteration: int) -> bool:
        return iteration < self.densify_until_iter

    def densifies_at(self, iteration: int) -> bool:
        return (self.collects_statistics(iteration) and iteration > self.densify_from_iter
                and iteration % self.densification_interval == 0)

    def edits_rows_at(self, iteration: int) -> bool:
        return self.densifies_at(iteration) or self.resets_opacity_at(iteration)

    def max_screen_size(self, iteration: int) -> Optional[int]:
        return SCREEN_SIZE_PRUNE_PIXELS if iteration > self.opacity_reset_interval else None

    def resets_opacity_at(self, iteration: int) -> bool:
        return self.collects_statistics(iteration) and (
            iteration % self.opacity_reset_interval == 0
            or (self.white_background and iteration == self.densify_from_iter))

    # --- its state ----------------------------------------------------------------------------
    def initialize_state(self, num_points, device):
        self.stats = DensificationStats.zeros(num_points, device)

    def per_row_state(self):
        return self.stats.rows() if self.stats is not None else {}

    def set_per_row_state(self, rows):
        if rows:
            self.stats = DensificationStats.from_rows(rows)

    # --- the loop's hooks ---------------------------------------------------------------------
    def record_view(self, iteration, gaussians, view):
        if not self.collects_statistics(iteration):
            return
        with torch.profiler.record_function("densification statistics"):  # benchmarks/train.py
            self.stats.update_max_radii(view.radii)
            self.stats.add(view.viewspace_grad, view.visibility)

    def refine(self, iteration, gaussians, context):
        # The original's growth follows the view-space gradients (resolution-independent, in
        # NDC units), with no budget to scale: context.budget_fraction does not apply here.
        if self.densifies_at(iteration):
            self.densify_and_prune(gaussians, context.extent, self.max_screen_size(iteration))
        if self.resets_opacity_at(iteration):
            gaussians.reset_opacity()

    # --- the original's steps (its method names; GaussianModel's delegate here) ----------------
    def densify_and_clone(self, gaussians, grads, grad_threshold, extent):
        """Copy small Gaussians with a large mean view-space gradient."""
        selected = clone_mask(grads.squeeze(1), gaussians.get_scaling, grad_threshold,
                              self.percent_dense, extent)
        rows = gaussians.rows_of(selected)
        gaussians.densification_postfix(rows["xyz"], rows["f_dc"], rows["f_rest"],
                                        rows["opacity"], rows["scaling"], rows["rotation"])
        self.stats.reset(keep_max_radii=self.screen_size_prune)

    def densify_and_split(self, gaussians, grads, grad_threshold, extent, n=SPLIT_SAMPLES):
        """Replace large Gaussians with a large gradient by n samples of themselves. `grads`
        covers the Gaussians before cloning; fresh clones are never split (their gradient
        counts as zero, as the original pads it)."""
        padded = torch.zeros(gaussians.num_points, device=gaussians.device)
        padded[:grads.shape[0]] = grads.squeeze(1)
        selected = split_mask(padded, gaussians.get_scaling, grad_threshold,
                              self.percent_dense, extent)
        rows = gaussians.rows_of(selected)
        new_xyz, new_scales = split_samples(rows["xyz"], gaussians.get_scaling[selected],
                                            rows["rotation"], n)
        repeat = lambda t: t.repeat(n, *([1] * (t.dim() - 1)))  # noqa: E731
        gaussians.densification_postfix(new_xyz, repeat(rows["f_dc"]), repeat(rows["f_rest"]),
                                        repeat(rows["opacity"]), torch.log(new_scales),
                                        repeat(rows["rotation"]), keep_mask=~selected)
        self.stats.reset(keep_max_radii=self.screen_size_prune)

    def densify_and_prune(self, gaussians, extent, max_screen_size=None, max_grad=None,
                          min_opacity=None):
        """Clone, split, then prune; the thresholds are this strategy's unless given (the
        original's GaussianModel.densify_and_prune passes them)."""
        max_grad = self.grad_threshold if max_grad is None else max_grad
        min_opacity = self.min_opacity if min_opacity is None else min_opacity
        grads = self.stats.mean_grads()
        self.densify_and_clone(gaussians, grads, max_grad, extent)
        self.densify_and_split(gaussians, grads, max_grad, extent)
        prune = prune_mask(gaussians.get_opacity, gaussians.get_scaling, self.stats.max_radii2D,
                           min_opacity, extent, max_screen_size)
        gaussians.prune_points(prune)
        self.stats.reset()


@dataclass(frozen=True)
class MCMCStrategy(Strategy):
    """3DGS-MCMC. Refinement (relocate dead Gaussians, then add 5 % up to cap_max) runs at the
    iterations --densify_from_iter, --densify_until_iter and --densification_interval give
    (MCMC's own defaults for them: MCMC_SCHEDULE); the noise runs after every optimizer step.
    Settings come from the flags (from_params), whose defaults live in arguments.MCMCParams."""
    cap_max: int
    noise_lr: float
    opacity_reg: float
    scale_reg: float
    refine_from_iter: int
    refine_until_iter: int
    refinement_interval: int
    init: Initialisation
    cap_by_iter: int = 0
    path_clearance: float = 0.0  # × extent; 0: the paper's (nothing is kept clear)
    min_opacity: float = mcmc.DEAD_OPACITY
    fused_noise: bool = True  # the one-pass CPU noise; False (--reference_kernels): torch's ops

    name = "mcmc"

    @classmethod
    def from_params(cls, opt, choice: StrategyParams = StrategyParams(),
                    mcmc_params: MCMCParams = MCMCParams()) -> "MCMCStrategy":
        if mcmc_params.cap_max <= 0:
            raise UsageError("--strategy mcmc needs --cap_max N, the most Gaussians (N > 0)")
        shared = schedule(opt, MCMC_SCHEDULE)
        return cls(cap_max=mcmc_params.cap_max, noise_lr=mcmc_params.noise_lr,
                   opacity_reg=mcmc_params.opacity_reg, scale_reg=mcmc_params.scale_reg,
                   refine_from_iter=opt.densify_from_iter,
                   refine_until_iter=shared["densify_until_iter"],
                   refinement_interval=shared["densification_interval"],
                   cap_by_iter=mcmc_params.cap_by_iter,
                   path_clearance=mcmc_params.path_clearance,
                   fused_noise=not opt.reference_kernels,
                   init=Initialisation(points=choice.init_type, num_random=choice.init_num,
                                       min_points=int(mcmc_params.init_fill
                                                      * mcmc_params.cap_max),
                                       opacity=MCMC_INIT_OPACITY,
                                       scale_factor=MCMC_INIT_SCALE_FACTOR))

    def refines_at(self, iteration: int) -> bool:
        return (self.refine_from_iter < iteration < self.refine_until_iter
                and iteration % self.refinement_interval == 0)

    def edits_rows_at(self, iteration: int) -> bool:
        return self.refines_at(iteration)

    def regularization(self, gaussians):
        """L1 of the activated opacities and scales (means over Gaussians): pushes unneeded
        Gaussians to zero opacity, where relocation recycles them, and keeps them small."""
        # Sigmoid and exp are positive, so the paper's |·| is left out: the same values and
        # gradients (the sign is 1) without two [N, ...] copies kept for the backward pass.
        return (self.opacity_reg * gaussians.get_opacity.mean()
                + self.scale_reg * gaussians.get_scaling.mean())

    def refine(self, iteration, gaussians, context):
        if self.refines_at(iteration):
            self.relocate_dead(gaussians, self.in_camera_path(gaussians, context.extent,
                                                              context.camera_path))
            self.add_new(gaussians, self.refinements_left(iteration), self.budget(context))

    def budget(self, context) -> int:
        """The Gaussian budget now: it follows the rendered pixel count while training runs
        coarse."""
        return max(1, int(self.cap_max * context.budget_fraction))

    @torch.no_grad()
    def will_edit_rows(self, iteration, gaussians, context):
        """Exactly what refine will do: relocate when some but not all Gaussians are dead, else
        grow when below the budget."""
        if not self.refines_at(iteration):
            return False
        dead = self.dead_mask(gaussians.get_opacity[:, 0], self.in_camera_path(
            gaussians, context.extent, context.camera_path))
        if 0 < int(dead.sum()) < len(dead):
            return True
        return mcmc.growth_count(gaussians.num_points, self.budget(context),
                                 self.refinements_left(iteration)) > 0

    def dead_mask(self, opacity: torch.Tensor, evict: Optional[torch.Tensor]) -> torch.Tensor:
        """[N] bool: the Gaussians relocate_dead moves (opacity [N] activated)."""
        dead = opacity <= self.min_opacity
        return dead if evict is None else dead | evict

    def after_optimizer_step(self, iteration, gaussians):
        self.add_noise(gaussians, gaussians.current_xyz_lr())

    # --- the steps ----------------------------------------------------------------------------
    @staticmethod
    def _copies_of(gaussians, sources):
        """Rows for copies of `sources` [K] (a Gaussian sampled m times has m + 1 copies, itself
        included) with the relocated opacity and scale: (all groups' rows, raw opacity [K, 1],
        raw scale [K, 3])."""
        counts = torch.bincount(sources, minlength=gaussians.num_points)
        copies = counts[sources] + 1
        opacity, scale = mcmc.split_into_copies(gaussians.get_opacity[sources, 0],
                                                gaussians.get_scaling[sources], copies)
        rows = gaussians.rows_of(sources)
        rows["opacity"] = inverse_sigmoid(opacity)[:, None]
        rows["scaling"] = torch.log(scale)
        return rows

    def in_camera_path(self, gaussians, extent, camera_path) -> Optional[torch.Tensor]:
        """[N] bool: Gaussians whose centre lies within path_clearance × extent of the training
        cameras' path (None: clearance off or no path)."""
        if self.path_clearance <= 0 or camera_path is None or len(camera_path) == 0:
            return None
        distance = distance_to_path(gaussians.get_xyz.detach(), camera_path)
        return distance < self.path_clearance * extent

    def relocate_dead(self, gaussians, evict: Optional[torch.Tensor] = None) -> int:
        """Move every dead Gaussian (opacity ≤ min_opacity), and every one `evict` [N] marks,
        onto a live one sampled by opacity (never an evicted one); the source and its copies share
        its opacity and coverage. Returns how many moved."""
        opacity = gaussians.get_opacity[:, 0]
        dead = self.dead_mask(opacity, evict)
        dead_rows = dead.nonzero()[:, 0]
        alive_rows = (~dead).nonzero()[:, 0]
        if len(dead_rows) == 0 or len(alive_rows) == 0:
            return 0
        sources = alive_rows[mcmc.sample_by_opacity(opacity[alive_rows], len(dead_rows))]
        rows = self._copies_of(gaussians, sources)
        assign = {name: (dead_rows, values) for name, values in rows.items()}
        for name in ("opacity", "scaling"):  # the sources shrink like their copies
            assign[name] = (torch.cat([dead_rows, sources]), torch.cat([rows[name]] * 2))
        gaussians.edit_rows(RowEdit(assign=assign, zero_moments=sources))
        return len(dead_rows)

    def refinements_left(self, iteration: int) -> int:
        """Refinements from `iteration` up to --cap_by_iter, both included (0: no deadline)."""
        last = min(self.cap_by_iter, self.refine_until_iter - 1)
        if self.cap_by_iter <= 0 or iteration > last:
            return 0
        return last // self.refinement_interval - iteration // self.refinement_interval + 1

    def add_new(self, gaussians, refinements_left: int = 0, cap: Optional[int] = None) -> int:
        """Append copies of Gaussians sampled by opacity: 5 % of N, more where needed to reach
        cap_max within `refinements_left` refinements, never beyond cap_max."""
        count = mcmc.growth_count(gaussians.num_points, cap or self.cap_max, refinements_left)
        if count == 0:
            return 0
        sources = mcmc.sample_by_opacity(gaussians.get_opacity[:, 0], count)
        rows = self._copies_of(gaussians, sources)
        assign = {name: (sources, rows[name]) for name in ("opacity", "scaling")}
        gaussians.edit_rows(RowEdit(append=rows, assign=assign, zero_moments=sources))
        return count

    def add_noise(self, gaussians, xyz_lr: float) -> None:
        """Position noise: Σ·ε scaled by noise_lr × the current xyz learning rate, gated by
        opacity (only near-dead Gaussians move noticeably)."""
        with torch.no_grad():
            if self.fused_noise and mcmc.fused_noise_available(gaussians.get_xyz):
                mcmc.add_position_noise_fused(gaussians.get_xyz, gaussians._scaling,
                                              gaussians._rotation, gaussians._opacity,
                                              self.noise_lr * xyz_lr)
                return
            noise = mcmc.position_noise(gaussians.get_rotation, gaussians.get_scaling,
                                        gaussians.get_opacity, self.noise_lr * xyz_lr)
            gaussians.displace(noise)


def make_strategy(opt, choice: StrategyParams = StrategyParams(),
                  mcmc_params: MCMCParams = MCMCParams(),
                  white_background: bool = False) -> Strategy:
    """The strategy --strategy names, from the optimisation, strategy and MCMC flags."""
    if choice.strategy == "mcmc":
        return MCMCStrategy.from_params(opt, choice, mcmc_params)
    return DefaultStrategy.from_params(opt, choice, white_background)
