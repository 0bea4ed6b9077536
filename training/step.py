"""One training step, as the loop runs it: the schedule, the camera pick, each view's render and
loss (photometric, depth, the strategy's regulariser), backward, the batch's gradients and
statistics shared across processes, then the strategy's refinement and the optimizer step."""
import random
from dataclasses import dataclass, field
from typing import List

import torch

from gaussian_renderer import render
from scene import GaussianModel
from scene.gaussian_model import PARAMETER_ATTRIBUTES
from scene.strategies import Strategy
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


def check_finite(gaussians: GaussianModel, iteration: int) -> None:
    for name in PARAMETER_ATTRIBUTES.values():
        if not torch.isfinite(getattr(gaussians, name)).all():
            raise TrainingDiverged(iteration, f"{name} holds NaN/Inf")


def pick_camera(loop: LoopState, num_cameras: int) -> int:
    """A random train camera without replacement; each pass is a fresh permutation."""
    if not loop.viewpoint_stack:
        loop.viewpoint_stack = list(range(num_cameras))
    return loop.viewpoint_stack.pop(loop.camera_rng.randint(0, len(loop.viewpoint_stack) - 1))



def apply_schedule(views, gaussians, pipe, debug_from) -> None:
    """The per-iteration schedule for a step covering `views` (1-based view numbers): the xyz
    (and exposure) learning rate at the step's last view, one more SH degree at every multiple of
    SH_DEGREE_INTERVAL, the rasterizer's debug mode from --debug_from."""
    gaussians.update_learning_rate(views[-1])
    for view in views:
        if view % SH_DEGREE_INTERVAL == 0:
            gaussians.oneupSHdegree()
        if view - 1 == debug_from:
            pipe.debug = True


def view_loss(view, camera, gaussians, pipe, opt, background, device, strategy: Strategy):
    """(render result, loss) of one training view: render (with its exposure), photometric
    loss (+ depth loss, + the strategy's regulariser); a non-finite loss stops training."""
    bg = torch.rand(3, device=device) if opt.random_background else background
    out = render(camera, gaussians, pipe, bg, use_trained_exp=gaussians.exposures is not None)
    loss, _ = photometric_loss(*camera.training_pair(out.render), opt.lambda_dssim,
                               fused=not opt.reference_kernels)
    loss = loss + depth_loss(out, camera, opt, view)
    regularization = strategy.regularization(gaussians)
    if regularization is not None:
        loss = loss + regularization
    if not torch.isfinite(loss):
        raise TrainingDiverged(view, f"loss is {loss.item()}")
    return out, loss


def training_step(iteration, gaussians, loop: LoopState, train_cameras, pipe, opt, background,
                  debug_from, device, strategy: Strategy):
    """Schedule → pick camera → render → loss (+ the strategy's regulariser) → backward.
    Returns the render result."""
    apply_schedule([iteration], gaussians, pipe, debug_from)
    camera = train_cameras[pick_camera(loop, len(train_cameras))]
    out, loss = view_loss(iteration, camera, gaussians, pipe, opt, background, device, strategy)
    loss.backward()
    loop.ema_loss = EMA_WEIGHT * loss.item() + (1 - EMA_WEIGHT) * loop.ema_loss
    return out


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


def densify_and_step(iteration, gaussians, out, strategy: Strategy, extent, opt,
                     camera_path=None):
    """refine_and_step for one view (training_step's result): the strategy's statistics and row
    edits → optimizer step → the strategy's post-step work (neither at the last iteration)."""
    refine_and_step([iteration], gaussians, BatchResult([out], out.visibility_filter), strategy,
                    extent, opt, camera_path)


class _Gradient:
    """Holds a view-space gradient as `.grad`, the way the rendered view's tensor carries it."""

    def __init__(self, grad: torch.Tensor):
        self.grad = grad


@dataclass
class ViewRecord:
    """What the strategy's statistics read of one rendered view (a RenderResult's fields)."""
    viewspace_points: _Gradient  # .grad [N, 2]
    visibility_filter: torch.Tensor  # [N] bool
    radii: torch.Tensor  # [N]


@dataclass
class BatchResult:
    views: list  # per view of the batch, in order: RenderResult (one view, one process) or ViewRecord
    visibility: torch.Tensor  # [N] bool, visible in any view of the batch


def batch_step(views, gaussians, loop: LoopState, train_cameras, pipe, opt, background,
               debug_from, device, strategy: Strategy, group: Group) -> BatchResult:
    """One optimizer step's views (1-based view numbers `views`): schedule, the B cameras (the
    same picks on every rank), this rank's renders, each loss (+ the strategy's regulariser)
    divided by B and backpropagated; then the gradients summed over the ranks and every view's
    statistics record and loss shared, so every rank holds the whole batch's. With one view in
    one process this is exactly training_step."""
    if len(views) == 1 and not group.distributed:
        out = training_step(views[0], gaussians, loop, train_cameras, pipe, opt, background,
                            debug_from, device, strategy)
        return BatchResult([out], out.visibility_filter)
    batch = len(views)
    apply_schedule(views, gaussians, pipe, debug_from)
    picks = [pick_camera(loop, len(train_cameras)) for _ in views]
    records, losses = [], []
    for j in group.my_views(batch):
        out, loss = view_loss(views[j], train_cameras[picks[j]], gaussians, pipe, opt,
                              background, device, strategy)
        (loss / batch).backward()
        # The statistics see each view's own gradient (× B undoes the 1/B of the batch mean),
        # so --densify_grad_threshold keeps its meaning.
        records.append(torch.cat([out.viewspace_points.grad[:, :2] * batch,
                                  out.visibility_filter[:, None].float(),
                                  out.radii[:, None].float()], dim=1))
        losses.append(loss.detach().reshape(1))
    group.sum_gradients([getattr(gaussians, name) for name in PARAMETER_ATTRIBUTES.values()])
    shared = group.gather_views(torch.stack(records))
    for value in group.gather_views(torch.stack(losses)):
        loop.ema_loss = EMA_WEIGHT * value.item() + (1 - EMA_WEIGHT) * loop.ema_loss
    view_records = [ViewRecord(_Gradient(r[:, :2]), r[:, 2] > 0.5, r[:, 3]) for r in shared]
    visibility = torch.stack([r.visibility_filter for r in view_records]).any(dim=0)
    return BatchResult(view_records, visibility)


def refine_and_step(views, gaussians, result: BatchResult, strategy: Strategy, extent, opt,
                    camera_path=None):
    """Every view's statistics (in batch order) → the row edits scheduled at any of the step's
    views → optimizer step → the strategy's post-step work (neither at the last iteration)."""
    for view, record in zip(views, result.views):
        strategy.record_view(view, gaussians, record)
    for view in views:
        strategy.refine(view, gaussians, extent, camera_path)
    if views[-1] < opt.iterations:
        gaussians.optimizer_step(result.visibility)
        strategy.after_optimizer_step(views[-1], gaussians)
