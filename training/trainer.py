"""The Trainer: one optimizer step over a batch of views, with one path for every batch size and
process count (a single view is a batch of one), and the loop that runs those steps in the
original's order with the run's hooks (training/hooks.py) at named points.

A step, as the original's loop body:
    schedule (xyz learning rate, SH degree, debug) → pick the cameras → render each view →
    loss (photometric, depth, the strategy's regulariser) → backward (÷ B) → gradients and
    per-view statistics shared across processes → [hooks: report, save] → the strategy's
    statistics and row edits → optimizer step → the strategy's post-step work.
"""
import random
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, List, Optional

import torch

from gaussian_renderer import RenderOptions, ShRestUse, render_with
from scene import GaussianModel, Scene
from scene.gaussian_model import PARAMETER_ATTRIBUTES
from scene.resolution import make_schedule
from scene.strategies import RefineContext, Strategy, ViewStatistics
from utils.distributed import Group
from utils.errors import ReportedError
from utils.general_utils import get_expon_lr_func
from utils.loss_utils import photometric_loss

EMA_WEIGHT = 0.4  # progress-bar loss: 0.4·loss + 0.6·previous, as the original
SH_DEGREE_INTERVAL = 1000  # one more SH degree every 1000 iterations


class TrainingDiverged(ReportedError):
    """NaN/Inf in the loss or a parameter; the checkpoints already written stay."""
    exit_code = 3

    def __init__(self, iteration: int, what: str):
        super().__init__(f"training diverged at iteration {iteration}: {what}; the checkpoints "
                         f"already written are kept")


@dataclass
class LoopState:
    """Everything beyond the model that an exact resume needs."""
    viewpoint_stack: List[int] = field(default_factory=list)  # train-camera indices left
    ema_loss: float = 0.0
    # Picks the cameras. A copy of Python's global RNG taken before the loop starts (so the
    # stream is the one the original draws from random.randint), kept apart so that libraries
    # drawing from the global one on other threads (the web server does) cannot change it.
    camera_rng: random.Random = field(default_factory=random.Random)


@dataclass
class StepResult:
    """What one step produced, for the hooks and the strategy: every view's loss and statistics
    (the whole batch's, in batch order, on every process) and the Gaussians any view drew."""
    losses: List[float]
    views: List[ViewStatistics]
    visibility: torch.Tensor  # [N] bool


def check_finite(gaussians: GaussianModel, iteration: int) -> None:
    for name in PARAMETER_ATTRIBUTES.values():
        # The smallest and largest value are finite exactly when every value is (a NaN
        # propagates through both): a reduction with no [N, ...] temporary, where
        # isfinite(...).all() builds a bool copy and a float64 sum a float64 copy (360 MB for
        # f_rest at 1M Gaussians).
        values = getattr(gaussians, name).detach()
        if values.numel() and not torch.isfinite(torch.stack(torch.aminmax(values))).all():
            raise TrainingDiverged(iteration, f"{name} holds NaN/Inf")


def pick_camera(loop: LoopState, num_cameras: int) -> int:
    """A random train camera without replacement; each pass is a fresh permutation."""
    if not loop.viewpoint_stack:
        loop.viewpoint_stack = list(range(num_cameras))
    return loop.viewpoint_stack.pop(loop.camera_rng.randint(0, len(loop.viewpoint_stack) - 1))


def depth_loss(out, camera, opt, iteration: int):
    """-d (GS-2024): w(iteration) · mean |rendered inverse depth − the camera's aligned map|,
    w decaying from --depth_l1_weight_init to _final over --iterations; 0 for a camera without
    a reliable map (then nothing is added to the graph)."""
    if camera.invdepthmap is None or not camera.depth_reliable:
        return 0.0
    weight = get_expon_lr_func(opt.depth_l1_weight_init, opt.depth_l1_weight_final,
                               max_steps=opt.iterations)(iteration)
    if weight <= 0:
        return 0.0
    target = camera.invdepthmap.to(out.depth.device)
    return weight * torch.abs(out.depth - target).mean()


def _pack(views: List[ViewStatistics]) -> torch.Tensor:
    """[k, N, 4]: gradient (2; zeros where none was made), visibility, radius per view, for one
    all-gather."""
    def gradient(v):
        return (v.viewspace_grad if v.viewspace_grad is not None
                else v.radii.new_zeros(len(v.radii), 2, dtype=torch.float32))
    return torch.stack([torch.cat([gradient(v), v.visibility[:, None].float(),
                                   v.radii[:, None].float()], dim=1) for v in views])


def _unpack(record: torch.Tensor) -> ViewStatistics:
    return ViewStatistics(record[:, :2], record[:, 2] > 0.5, record[:, 3])


class Trainer:
    """Trains `gaussians` on the scene's training cameras with `strategy`. `iteration` counts
    views (the original's iterations when --batch_size is 1); views are numbered from 1."""

    def __init__(self, scene: Scene, gaussians: GaussianModel, strategy: Strategy, opt, pipe,
                 group: Optional[Group] = None, debug_from: int = -1):
        self.scene, self.gaussians, self.strategy = scene, gaussians, strategy
        self.opt, self.group, self.debug_from = opt, group or Group(), debug_from
        self.pipe = pipe  # replaced (not changed) by a copy with debug on at --debug_from
        self.loop = LoopState()
        self.cameras = scene.getTrainCameras()
        self.resolution = make_schedule(opt, (camera.original_image for camera in self.cameras))
        self.train_seconds = 0.0  # steps only: no evaluation, saving or viewer

    # --- the loop -----------------------------------------------------------------------------
    def batches(self, first_iter: int) -> Iterator[List[int]]:
        """Each step's view numbers, from after first_iter to --iterations."""
        batch = self.opt.batch_size
        for last in range(first_iter + batch, self.opt.iterations + 1, batch):
            yield list(range(last - batch + 1, last + 1))

    def train(self, first_iter: int, hooks) -> int:
        """Steps until --iterations; returns the process's exit code (hooks.finish, or
        hooks.stop after a requested stop)."""
        last = first_iter
        for views in self.batches(first_iter):
            hooks.before_step(views)  # the viewer's pause
            with hooks.model_turn():  # the viewer never draws while a step changes the model
                result = self._timed(self.step, views, hooks)
                with torch.no_grad():
                    # The original's order: report and save the state before this step's
                    # densification and optimizer step, checkpoint after them.
                    hooks.after_backward(views, result)
                    self._timed(self.refine_and_step, views, result)
                    hooks.after_optimizer_step(views, result)
            hooks.after_iteration(views)
            last = views[-1]
            if hooks.stop_requested():
                return hooks.stop(last)
        return hooks.finish(last)

    def _timed(self, work, *args):
        start = time.perf_counter()
        value = work(*args)
        self.train_seconds += time.perf_counter() - start
        return value

    # --- one step -----------------------------------------------------------------------------
    def apply_schedule(self, views: List[int]) -> None:
        """The xyz (and exposure) learning rate at the step's last view, one more SH degree at
        every multiple of SH_DEGREE_INTERVAL, the rasterizer's debug mode from --debug_from."""
        self.gaussians.update_learning_rate(views[-1])
        for view in views:
            if view % SH_DEGREE_INTERVAL == 0:
                self.gaussians.oneupSHdegree()
            if view - 1 == self.debug_from:
                self.pipe = replace(self.pipe, debug=True)

    def refine_context(self, view: int) -> RefineContext:
        return RefineContext(self.scene.cameras_extent, self.scene.camera_path,
                             self.resolution.budget_fraction(view))

    def sh_rest_use(self, views: List[int], hooks=None) -> ShRestUse:
        """What this step's backward pass does with f_rest's gradient. No optimizer step reads
        it at the last iteration or after a row edit: then none is made. Otherwise Adam
        consumes it inside the backward pass (bit for bit the optimizer step's result, and
        f_rest's gradient is never allocated) unless a hook looks at the model between the
        backward pass and the step, the strategy cannot tell before the step whether it will
        edit rows, or the optimizer is not one that path reproduces."""
        view = views[-1]
        if len(views) > 1 or self.group.distributed:
            return ShRestUse()
        if view >= self.opt.iterations:
            return ShRestUse(gradient=False)
        edits = self.strategy.will_edit_rows(view, self.gaussians, self.refine_context(view))
        if edits:
            return ShRestUse(gradient=False)
        if edits is None or (hooks is not None and hooks.reads_model_after_backward(views)):
            return ShRestUse()
        return ShRestUse(adam=self.gaussians.sh_rest_adam())  # None: the gradient, as above

    def view_loss(self, view: int, camera, sh_rest: ShRestUse = ShRestUse()):
        """(render result, loss) of one training view: render (with its exposure), photometric
        loss (+ depth loss, + the strategy's regulariser); a non-finite loss stops training."""
        opt, gaussians = self.opt, self.gaussians
        bg = (torch.rand(3, device=gaussians.device) if opt.random_background
              else self.scene.background)
        out = render_with(camera, gaussians, self.pipe, bg, RenderOptions(
            use_trained_exp=gaussians.exposures is not None, sh_rest=sh_rest,
            viewspace_gradient=self.strategy.collects_statistics(view)))
        loss, _ = photometric_loss(*camera.training_pair(out.render), opt.lambda_dssim,
                                   fused=not opt.reference_kernels)
        loss = loss + depth_loss(out, camera, opt, view)
        regularization = self.strategy.regularization(gaussians)
        if regularization is not None:
            loss = loss + regularization
        if not torch.isfinite(loss):
            raise TrainingDiverged(view, f"loss is {loss.item()}")
        return out, loss

    def step(self, views: List[int], hooks=None) -> StepResult:
        """Schedule, the B cameras (the same picks on every process), this process's renders,
        each loss ÷ B backpropagated; then the gradients summed over the processes and every
        view's statistics and loss shared, so every process holds the whole batch's. `hooks`:
        the run's (Hooks), asked whether they read the model after the backward pass."""
        batch = len(views)
        self.apply_schedule(views)
        picks = [pick_camera(self.loop, len(self.cameras)) for _ in views]
        factor = self.resolution.factor_at(views[-1])  # coarse-to-fine: 1 = full resolution
        sh_rest = self.sh_rest_use(views, hooks)
        records, losses = [], []
        for j in self.group.my_views(batch):
            out, loss = self.view_loss(views[j], self.cameras[picks[j]].at_scale(factor),
                                       sh_rest)
            (loss / batch).backward()
            # The statistics see each view's own gradient (× B undoes the 1/B of the batch
            # mean), so --densify_grad_threshold keeps its meaning.
            gradient = out.viewspace_points.grad  # None where the strategy reads none
            if gradient is not None:
                gradient = gradient[:, :2] * batch if batch > 1 else gradient[:, :2]
            records.append(ViewStatistics(gradient, out.visibility_filter, out.radii))
            losses.append(loss.detach().reshape(1))
        if self.group.distributed:
            self.group.sum_gradients([getattr(self.gaussians, name)
                                      for name in PARAMETER_ATTRIBUTES.values()])
            records = [_unpack(r) for r in self.group.gather_views(_pack(records))]
            losses = self.group.gather_views(torch.stack(losses))
        loss_values = [value.item() for value in losses]
        for value in loss_values:
            self.loop.ema_loss = EMA_WEIGHT * value + (1 - EMA_WEIGHT) * self.loop.ema_loss
        visibility = (records[0].visibility if len(records) == 1
                      else torch.stack([r.visibility for r in records]).any(dim=0))
        return StepResult(loss_values, records, visibility)

    def refine_and_step(self, views: List[int], result: StepResult) -> None:
        """Every view's statistics (in batch order) → the row edits scheduled at any of the
        step's views → optimizer step → the strategy's post-step work (neither at the last
        iteration, as the original)."""
        strategy, gaussians = self.strategy, self.gaussians
        for view, record in zip(views, result.views):
            strategy.record_view(view, gaussians, record)
        for view in views:
            strategy.refine(view, gaussians, self.refine_context(view))
        if views[-1] < self.opt.iterations:
            gaussians.optimizer_step(result.visibility)
            strategy.after_optimizer_step(views[-1], gaussians)
