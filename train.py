"""Train 3D Gaussians on a COLMAP, NeRF-synthetic or nerfstudio dataset.

    python train.py -s data/garden_dev -m output/garden --eval --iterations 3000

Flags and defaults are the original's (GS-2024), plus --seed and --device. The loop reads like
the algorithm: pick camera → render → loss → backward → densification statistics →
densify/prune → optimizer step → report/save; one step is training/step.py, checkpoints are
training/checkpoints.py.
"""
import os
import random
import signal
import sys
import time
import uuid
from argparse import ArgumentParser
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch
from tqdm import tqdm

from arguments import (ModelParams, OptimizationParams, PipelineParams, add_device_flag,
                       add_group, check_device, extract, namespace_text)
from gaussian_renderer import render
from scene import GaussianModel, Scene
from scene.cameras import scored_part
from scene.strategies import Strategy, make_strategy
from scene.gaussian_model import PARAMETER_ATTRIBUTES
from training.checkpoints import load_checkpoint, save_checkpoint
from training.step import LoopState, batch_step, check_finite, refine_and_step
from utils.cli import run_main
from utils.errors import DatasetError, ReportedError, UsageError
from utils.distributed import Group, join
from utils.general_utils import seed_everything
from utils.image_utils import psnr
from utils.loss_utils import l1_loss
from utils.system_utils import write_text_atomic
from utils.training_log import TrainingLog
from viewer.settings import DEFAULT_IP, DEFAULT_PORT, ViewerSettings

PROGRESS_EVERY = 10  # iterations between progress-bar (and curve) updates
TRAIN_REPORT_VIEWS = (5, 10, 15, 20, 25)  # train cameras evaluated at test iterations


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Training script parameters")
    add_group(parser, ModelParams)
    add_group(parser, OptimizationParams)
    add_group(parser, PipelineParams)
    parser.add_argument("--debug_from", type=int, default=-1)
    parser.add_argument("--detect_anomaly", action="store_true", default=False)
    parser.add_argument("--test_iterations", nargs="+", type=int, default=[7_000, 30_000])
    parser.add_argument("--save_iterations", nargs="+", type=int, default=[7_000, 30_000])
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--ip", type=str, default=DEFAULT_IP,
                        help="the web viewer listens here (default: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the web viewer's port")
    parser.add_argument("--disable_viewer", action="store_true", default=False,
                        help="do not start the web viewer")
    parser.add_argument("--checkpoint_iterations", nargs="+", type=int, default=[])
    parser.add_argument("--start_checkpoint", type=str, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: all cores; under torchrun, the cores "
                             "divided among this machine's processes)")
    parser.add_argument("--check_replicas", action="store_true",
                        help="under torchrun: after every step that adds or removes Gaussians, "
                             "check that all processes hold bit-identical parameters")
    parser.add_argument("--dist_timeout", type=float, default=120.0,
                        help="under torchrun: seconds a process waits for the others before "
                             "the job stops")
    add_device_flag(parser)
    return parser


def prepare_output(dataset: ModelParams) -> None:
    if not dataset.model_path:
        dataset.model_path = os.path.join("./output", str(uuid.uuid4())[:10])
    print(f"Output folder: {dataset.model_path}")
    os.makedirs(dataset.model_path, exist_ok=True)
    write_text_atomic(os.path.join(dataset.model_path, "cfg_args"), namespace_text(dataset))


@torch.no_grad()
def evaluate(scene: Scene, gaussians, pipe, background):
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
            image = torch.clamp(render(cam, gaussians, pipe, background,
                                       use_trained_exp=scene.train_test_exp).render, 0.0, 1.0)
            gt = scored_part(cam.original_image.to(image.device), scene.train_test_exp)
            image = scored_part(image, scene.train_test_exp)
            l1_total += l1_loss(image, gt).item()
            psnr_total += psnr(image, gt).item()
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


def start_viewer(settings: Optional[ViewerSettings], scene: Scene, gaussians, pipe, model_path):
    """The web viewer on settings' address, or None (disabled, or its port taken: one warning
    line). Imported here, so that --disable_viewer runs never load the web server."""
    if settings is None:
        return None
    from viewer import Viewer
    return Viewer.start(gaussians, {"train": scene.getTrainCameras(),
                                    "test": scene.getTestCameras()},
                        scene.background, pipe, model_path, settings=settings, training=True)


def training(dataset: ModelParams, opt: OptimizationParams, pipe: PipelineParams,
             testing_iterations, saving_iterations, checkpoint_iterations, checkpoint,
             debug_from, device, quiet=False, viewer_settings: Optional[ViewerSettings] = None,
             group: Optional[Group] = None, check_replicas: bool = False):
    group = group or Group()
    if group.is_main:
        prepare_output(dataset)
    strategy = make_strategy(opt, dataset.white_background)
    gaussians = GaussianModel(dataset.sh_degree, opt.optimizer_type, device=device)
    scene = Scene(dataset, gaussians, device=device, init=strategy.initialisation())
    gaussians.training_setup(opt)
    loop, log = LoopState(), TrainingLog()
    first_iter = 0
    if checkpoint:
        first_iter = load_checkpoint(checkpoint, gaussians, opt, loop, log, strategy)
        print(f"Resuming from {checkpoint} at iteration {first_iter}")
        if first_iter % opt.batch_size:
            raise UsageError(f"{checkpoint} is at iteration {first_iter}, which is not a multiple "
                             f"of --batch_size {opt.batch_size}")

    if not scene.getTrainCameras():
        raise DatasetError(dataset.source_path, "no training images")

    loop.camera_rng.setstate(random.getstate())  # after the resume, before the viewer starts
    viewer = (start_viewer(viewer_settings, scene, gaussians, pipe, dataset.model_path)
              if group.is_main else None)
    run = Run(dataset, opt, pipe, set(testing_iterations), set(saving_iterations),
              set(checkpoint_iterations), debug_from, device, quiet or not group.is_main, scene,
              gaussians, strategy, loop, log, viewer, group, check_replicas)
    try:
        return training_loop(run, first_iter)
    finally:
        if viewer is not None:
            viewer.stop()


@dataclass
class Run:
    """Everything one training run's loop works with."""
    dataset: ModelParams
    opt: OptimizationParams
    pipe: PipelineParams
    testing_iterations: set
    saving_iterations: set
    checkpoint_iterations: set
    debug_from: int
    device: str
    quiet: bool
    scene: Scene
    gaussians: GaussianModel
    strategy: Strategy
    loop: LoopState
    log: TrainingLog
    viewer: object  # viewer.Viewer or None
    group: Group
    check_replicas: bool = False
    replica_checks: int = 0


class ReplicasDiverged(ReportedError):
    exit_code = 4


def check_replicas(run: Run, iteration: int) -> None:
    """--check_replicas: every rank's parameters bit-identical after this row edit."""
    params = [getattr(run.gaussians, name) for name in PARAMETER_ATTRIBUTES.values()]
    if not run.group.same_on_every_rank(params):
        raise ReplicasDiverged(f"the processes' models differ after the row edits of "
                               f"iteration {iteration}")
    run.replica_checks += 1


def training_loop(run: Run, first_iter: int) -> int:
    """Steps of --batch_size views until --iterations views; `iteration` counts views (the
    original's iterations when B = 1). Only rank 0 writes files and shows progress."""
    opt, gaussians, scene, loop, log, viewer = (run.opt, run.gaussians, run.scene, run.loop,
                                                run.log, run.viewer)
    main = run.group.is_main
    background = scene.background
    train_cameras = scene.getTrainCameras()
    iteration = first_iter
    batch = opt.batch_size
    start = time.perf_counter()
    progress = tqdm(range(first_iter, opt.iterations), desc="Training progress",
                    disable=run.quiet, dynamic_ncols=True)
    last_eval = None
    step_seconds = 0.0  # training time since the last progress record (no eval, no saving)
    last_record = first_iter - first_iter % PROGRESS_EVERY
    step_ms = float("nan")  # for the viewer: the mean of the last PROGRESS_EVERY views
    # The viewer never draws while a step changes the model; without one, nothing to share.
    model_turn = viewer.gate.training if viewer is not None else nullcontext
    with StopRequest() as stop:
        for iteration in range(first_iter + batch, opt.iterations + 1, batch):
            views = list(range(iteration - batch + 1, iteration + 1))
            if viewer is not None:
                viewer.wait_while_paused(lambda: stop.requested)
            with model_turn():
                step_start = time.perf_counter()
                result = batch_step(views, gaussians, loop, train_cameras, run.pipe, opt,
                                    background, run.debug_from, run.device, run.strategy,
                                    run.group)
                step_seconds += time.perf_counter() - step_start

                # The original's order: report and save the state before this step's
                # densification and optimizer step, checkpoint after them.
                with torch.no_grad():
                    tested = [v for v in views if v in run.testing_iterations]
                    if tested and main:
                        last_eval = evaluate(scene, gaussians, run.pipe, background)
                        report_evaluation(tested[-1], last_eval, progress)
                        log.record_eval(tested[-1], *(last_eval[k][1] if last_eval[k] else None
                                                      for k in ("test", "train")))
                        if viewer is not None and last_eval["test"]:
                            viewer.report(test_psnr=last_eval["test"][1],
                                          test_iteration=tested[-1])
                    saved = [v for v in views if v in run.saving_iterations]
                    if saved:
                        check_finite(gaussians, saved[-1])
                        if main:
                            progress.write(f"\n[ITER {saved[-1]}] Saving Gaussians")
                            scene.save(saved[-1])

                    step_start = time.perf_counter()
                    refine_and_step(views, gaussians, result, run.strategy,
                                    scene.cameras_extent, opt, scene.camera_path)
                    step_seconds += time.perf_counter() - step_start
                    if run.check_replicas and any(run.strategy.edits_rows_at(v) for v in views):
                        check_replicas(run, iteration)

                    if iteration // PROGRESS_EVERY > (iteration - batch) // PROGRESS_EVERY:
                        progress.set_postfix({"Loss": f"{loop.ema_loss:.7f}",
                                              "Gaussians": gaussians.num_points})
                        progress.update(iteration - last_record)
                        seconds_per_view = step_seconds / (iteration - last_record)
                        step_ms = 1e3 * seconds_per_view
                        log.record_step(iteration, loop.ema_loss, gaussians.num_points,
                                        seconds_per_view)
                        step_seconds, last_record = 0.0, iteration
                    if main and any(v in run.checkpoint_iterations for v in views):
                        progress.write(f"\n[ITER {iteration}] Saving Checkpoint")
                        save_checkpoint(gaussians, iteration, loop, log,
                                        run.dataset.model_path, run.strategy)
            if viewer is not None:
                viewer.model_changed()
                viewer.report(iteration=iteration, iterations=opt.iterations,
                              loss=loop.ema_loss, gaussians=gaussians.num_points,
                              step_ms=step_ms)

            if stop.requested and main:
                path = save_checkpoint(gaussians, iteration, loop, log, run.dataset.model_path,
                                       run.strategy)
                progress.close()
                log.write(run.dataset.model_path)
                print(f"Stopped at iteration {iteration}; resume with --start_checkpoint {path}")
                return 130
    progress.close()
    run.group.barrier("the end of training")
    if not main:
        return 0
    elapsed = time.perf_counter() - start
    curve = log.write(run.dataset.model_path)
    steps = max(iteration - first_iter, 1)
    summary = (f"\nTraining complete: {iteration} iterations in {elapsed:.1f} s "
               f"({elapsed / steps:.3f} s/iteration), {gaussians.num_points} Gaussians")
    if run.group.distributed:
        summary += f", {run.group.world_size} processes"
    if run.check_replicas:
        summary += f", replicas identical after all {run.replica_checks} row edits"
    if last_eval and last_eval["test"]:
        summary += f", test PSNR {last_eval['test'][1]:.2f} dB"
    print(summary + f"\nModel: {run.dataset.model_path}  (training curve: {curve})")
    return 0


def report_evaluation(iteration, results, progress):
    for name in ("test", "train"):
        if results[name]:
            l1, value = results[name]
            progress.write(f"\n[ITER {iteration}] Evaluating {name}: L1 {l1} PSNR {value}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.save_iterations.append(args.iterations)
    dataset, opt = extract(ModelParams, args), extract(OptimizationParams, args)
    pipe = extract(PipelineParams, args)
    if not dataset.source_path:
        raise UsageError("--source_path/-s is required")
    check_device(args.device)
    print("Optimizing " + (dataset.model_path or "(new output folder)"))
    seed_everything(args.seed)
    torch.autograd.set_detect_anomaly(args.detect_anomaly)
    viewer = None if args.disable_viewer else ViewerSettings(ip=args.ip, port=args.port)
    group = join(args.device, args.dist_timeout, args.threads)
    if group.distributed and group.is_main:
        print(f"Data-parallel training: {group.world_size} processes, batch of "
              f"{opt.batch_size} views, {torch.get_num_threads()} threads each")
    if opt.batch_size % group.world_size:
        raise UsageError(f"--batch_size {opt.batch_size} must be a multiple of the number of "
                         f"processes ({group.world_size})")
    try:
        return training(dataset, opt, pipe, args.test_iterations, args.save_iterations,
                        args.checkpoint_iterations, args.start_checkpoint, args.debug_from,
                        args.device, args.quiet, viewer_settings=viewer, group=group,
                        check_replicas=args.check_replicas)
    finally:
        group.close()


if __name__ == "__main__":
    run_main(main)
