"""What a training run does around its steps, as hooks the Trainer's loop calls at named points
(nerfstudio's training callbacks are the model):

    before_step(views)                     the viewer's pause
    model_turn()                           a context the step runs in (the viewer's gate)
    after_backward(views, result)          evaluation and saving: the original's report and
                                           save, before this step's densification
    after_optimizer_step(views, result)    replica check, progress, checkpoints
    after_iteration(views)                 the viewer's status
    stop_requested() / stop(iteration)     Ctrl-C: a checkpoint, then exit code 130
    finish(iteration)                      the summary; the exit code

Only the main process writes files and shows progress (train.py builds its hooks that way).
"""
import signal
import sys
import time
from contextlib import nullcontext
from typing import List, Optional

import torch
from tqdm import tqdm

from gaussian_renderer import render
from scene import Scene
from scene.cameras import score_weight, scored_part
from scene.gaussian_model import PARAMETER_ATTRIBUTES
from scene.resolution import scale_name
from utils.errors import ReportedError
from utils.image_utils import masked_psnr, psnr
from utils.loss_utils import l1_loss
from utils.training_log import TrainingLog
from .checkpoints import save_checkpoint
from .trainer import StepResult, Trainer, check_finite

PROGRESS_EVERY = 10  # iterations between progress-bar (and curve) updates
COARSE_TO_FINE_BAR = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]"
TRAIN_REPORT_VIEWS = (5, 10, 15, 20, 25)  # train cameras evaluated at test iterations


class ReplicasDiverged(ReportedError):
    exit_code = 4


@torch.no_grad()
def evaluate(scene: Scene, gaussians, pipe):
    """Mean L1 and per-image PSNR over the test cameras and 5 train cameras."""
    train = scene.getTrainCameras()
    sets = {"test": scene.getTestCameras(),
            "train": [train[i % len(train)] for i in TRAIN_REPORT_VIEWS] if train else []}
    results = {}
    for name, cameras in sets.items():
        if not cameras:
            results[name] = None
            continue
        l1_total = psnr_total = 0.0
        for cam in cameras:
            image = torch.clamp(render(cam, gaussians, pipe, scene.background,
                                       use_trained_exp=scene.train_test_exp).render, 0.0, 1.0)
            gt = scored_part(cam.original_image.to(image.device), scene.train_test_exp)
            image = scored_part(image, scene.train_test_exp)
            weight = score_weight(cam, scene.train_test_exp)
            if weight is None:
                l1_total += l1_loss(image, gt).item()
                psnr_total += psnr(image, gt).item()
            else:  # only the pixels the mask keeps
                weight = weight.to(image.device)
                l1_total += ((image - gt).abs() * weight).sum().item() / (
                    weight.sum().item() * image.shape[0])
                psnr_total += masked_psnr(image, gt, weight).item()
        results[name] = (l1_total / len(cameras), psnr_total / len(cameras))
    return results


class StopRequest:
    """First Ctrl-C: finish the current iteration, write a checkpoint and stop cleanly.
    A second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupted: stopping after this iteration and writing a checkpoint "
              "(Ctrl-C again to abort).", file=sys.stderr)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


class Hook:
    """One concern of a run; each method is a point of the Trainer's loop (module docstring)."""

    def before_step(self, views: List[int]) -> None:
        pass

    def after_backward(self, views: List[int], result: StepResult) -> None:
        pass

    def reads_model_after_backward(self, views: List[int]) -> bool:
        """Whether after_backward looks at the model at this step (the Trainer then leaves
        every parameter as it was until the optimizer step)."""
        return False

    def after_optimizer_step(self, views: List[int], result: StepResult) -> None:
        pass

    def after_iteration(self, views: List[int]) -> None:
        pass

    def model_turn(self):
        """A context the step runs in (None: this hook needs none)."""
        return None

    def summary(self) -> str:
        """Words for the run's summary line ("": none)."""
        return ""


class Run:
    """The services a run's hooks share: the trainer, the curve log, the progress bar, the model
    folder, the viewer (or None). `main`: this process writes files and reports."""

    def __init__(self, trainer: Trainer, model_path: str, log: TrainingLog, first_iter: int,
                 quiet: bool, main: bool = True):
        self.trainer, self.model_path, self.log, self.main = trainer, model_path, log, main
        self.first_iter = first_iter
        self.viewer = None
        if trainer.resolution.active:
            # Coarse steps cost less (about their pixel share): the bar counts that work, so
            # its rate and remaining time hold across levels; the postfix names the iteration.
            self.progress = tqdm(total=self.work(first_iter, trainer.opt.iterations),
                                 desc="Training progress", disable=quiet or not main,
                                 dynamic_ncols=True, bar_format=COARSE_TO_FINE_BAR)
        else:
            self.progress = tqdm(range(first_iter, trainer.opt.iterations),
                                 desc="Training progress", disable=quiet or not main,
                                 dynamic_ncols=True)
        self.started = time.perf_counter()
        self.step_ms = float("nan")  # the mean of the last PROGRESS_EVERY views
        self.last_eval = None

    def work(self, after: int, until: int) -> float:
        """The progress bar's units from iteration `after` to `until`: iterations, or with a
        coarse-to-fine schedule each iteration's pixel share."""
        resolution = self.trainer.resolution
        if not resolution.active:
            return until - after
        return sum(resolution.pixel_fraction(t) for t in range(after + 1, until + 1))

    def save_checkpoint(self, iteration: int) -> str:
        t = self.trainer
        return save_checkpoint(t.gaussians, iteration, t.loop, self.log, self.model_path,
                               t.strategy)


class AtIterations(Hook):
    """A hook that acts at some views (--test_iterations, --save_iterations, ...)."""

    def __init__(self, run: Run, iterations):
        self.run, self.iterations = run, set(iterations)

    def due(self, views: List[int]) -> Optional[int]:
        """The step's last view among the iterations, or None."""
        return next((v for v in reversed(views) if v in self.iterations), None)


class ReadsModelAfterBackward(AtIterations):
    """An AtIterations hook whose after_backward reads the model when it is due."""

    def reads_model_after_backward(self, views):
        return self.due(views) is not None


class Evaluation(ReadsModelAfterBackward):
    """At --test_iterations: L1 and PSNR of the test views and five train views, printed, in
    the curve, and shown in the viewer."""

    def after_backward(self, views, result):
        iteration, run = self.due(views), self.run
        if iteration is None:
            return
        run.last_eval = evaluate(run.trainer.scene, run.trainer.gaussians, run.trainer.pipe)
        for name in ("test", "train"):
            if run.last_eval[name]:
                l1, value = run.last_eval[name]
                run.progress.write(f"\n[ITER {iteration}] Evaluating {name}: L1 {l1} PSNR "
                                   f"{value}")
        run.log.record_eval(iteration, *(run.last_eval[k][1] if run.last_eval[k] else None
                                         for k in ("test", "train")))
        if run.viewer is not None and run.last_eval["test"]:
            run.viewer.report(test_psnr=run.last_eval["test"][1], test_iteration=iteration)


class Saving(ReadsModelAfterBackward):
    """At --save_iterations: the PLY (refused if a parameter is not finite, on every process,
    so all stop together)."""

    def after_backward(self, views, result):
        iteration = self.due(views)
        if iteration is None:
            return
        check_finite(self.run.trainer.gaussians, iteration)
        if self.run.main:
            self.run.progress.write(f"\n[ITER {iteration}] Saving Gaussians")
            self.run.trainer.scene.save(iteration)


class ReplicaCheck(Hook):
    """--check_replicas: every process's parameters bit-identical after each row edit."""

    def __init__(self, run: Run):
        self.run, self.checks = run, 0

    def after_optimizer_step(self, views, result):
        trainer = self.run.trainer
        if not any(trainer.strategy.edits_rows_at(v) for v in views):
            return
        params = [getattr(trainer.gaussians, name) for name in PARAMETER_ATTRIBUTES.values()]
        if not trainer.group.same_on_every_rank(params):
            raise ReplicasDiverged(f"the processes' models differ after the row edits of "
                                   f"iteration {views[-1]}")
        self.checks += 1

    def summary(self) -> str:
        return f"replicas identical after all {self.checks} row edits"


class Progress(Hook):
    """Every PROGRESS_EVERY views: the bar (loss, Gaussians) and a point of the curve with the
    mean step time since the previous one."""

    def __init__(self, run: Run):
        self.run = run
        self.last_record = run.first_iter - run.first_iter % PROGRESS_EVERY
        self.seconds_at_record = run.trainer.train_seconds

    def after_optimizer_step(self, views, result):
        iteration, run = views[-1], self.run
        if iteration // PROGRESS_EVERY <= (iteration - len(views)) // PROGRESS_EVERY:
            return
        trainer = run.trainer
        postfix = {"Loss": f"{trainer.loop.ema_loss:.7f}",
                   "Gaussians": trainer.gaussians.num_points}
        if trainer.resolution.active:
            postfix.update(Iteration=iteration,
                           Scale=scale_name(trainer.resolution.factor_at(iteration)))
        run.progress.set_postfix(postfix)
        run.progress.update(run.work(self.last_record, iteration))
        seconds = trainer.train_seconds - self.seconds_at_record
        seconds_per_view = seconds / (iteration - self.last_record)
        run.step_ms = 1e3 * seconds_per_view
        run.log.record_step(iteration, trainer.loop.ema_loss, trainer.gaussians.num_points,
                            seconds_per_view)
        self.seconds_at_record, self.last_record = trainer.train_seconds, iteration


class Checkpoints(AtIterations):
    """At --checkpoint_iterations: a checkpoint after the step's row edits and optimizer step
    (named by the step's last view)."""

    def after_optimizer_step(self, views, result):
        if self.due(views) is not None:
            self.run.progress.write(f"\n[ITER {views[-1]}] Saving Checkpoint")
            self.run.save_checkpoint(views[-1])


class ViewerLink(Hook):
    """The web viewer: training waits while it is paused, shares the model through its gate,
    and reports its status after each step."""

    def __init__(self, run: Run, stop: StopRequest):
        self.run, self.viewer, self.stop = run, run.viewer, stop

    def before_step(self, views):
        self.viewer.wait_while_paused(lambda: self.stop.requested)

    def model_turn(self):
        return self.viewer.gate.training()

    def after_iteration(self, views):
        trainer = self.run.trainer
        self.viewer.model_changed()
        self.viewer.report(iteration=views[-1], iterations=trainer.opt.iterations,
                           loss=trainer.loop.ema_loss, gaussians=trainer.gaussians.num_points,
                           step_ms=self.run.step_ms)


class Hooks:
    """The run's hooks, called in order at each point of the loop; the stop request and the
    ends of the run."""

    def __init__(self, run: Run, hooks: List[Hook], stop: Optional[StopRequest] = None):
        self.run, self.hooks, self.stop_request = run, hooks, stop

    def before_step(self, views):
        for hook in self.hooks:
            hook.before_step(views)

    def model_turn(self):
        return next((turn for turn in (hook.model_turn() for hook in self.hooks)
                     if turn is not None), nullcontext())

    def after_backward(self, views, result):
        for hook in self.hooks:
            hook.after_backward(views, result)

    def reads_model_after_backward(self, views) -> bool:
        return any(hook.reads_model_after_backward(views) for hook in self.hooks)

    def after_optimizer_step(self, views, result):
        for hook in self.hooks:
            hook.after_optimizer_step(views, result)

    def after_iteration(self, views):
        for hook in self.hooks:
            hook.after_iteration(views)

    def stop_requested(self) -> bool:
        return self.stop_request is not None and self.stop_request.requested and self.run.main

    def stop(self, iteration: int) -> int:
        """A requested stop: a checkpoint to resume from, the curve; exit code 130."""
        run = self.run
        path = run.save_checkpoint(iteration)
        run.progress.close()
        run.log.write(run.model_path)
        print(f"Stopped at iteration {iteration}; resume with --start_checkpoint {path}")
        return 130

    def finish(self, iteration: int) -> int:
        """The end of the run: every process waits for the others; the main one writes the
        curve and prints the summary."""
        run, trainer = self.run, self.run.trainer
        run.progress.close()
        trainer.group.barrier("the end of training")
        if not run.main:
            return 0
        elapsed = time.perf_counter() - run.started
        curve = run.log.write(run.model_path)
        steps = max(iteration - run.first_iter, 1)
        summary = (f"\nTraining complete: {iteration} iterations in {elapsed:.1f} s "
                   f"({elapsed / steps:.3f} s/iteration), {trainer.gaussians.num_points} "
                   f"Gaussians")
        if trainer.group.distributed:
            summary += f", {trainer.group.world_size} processes"
        summary += "".join(f", {hook.summary()}" for hook in self.hooks if hook.summary())
        if run.last_eval and run.last_eval["test"]:
            summary += f", test PSNR {run.last_eval['test'][1]:.2f} dB"
        print(summary + f"\nModel: {run.model_path}  (training curve: {curve})")
        return 0
