"""Train 3D Gaussians on a COLMAP, NeRF-synthetic or nerfstudio dataset.

    python train.py -s data/garden_dev -m output/garden --eval --iterations 3000

Flags and defaults are the original's (GS-2024), plus ours (each says so in --help). The loop
reads like the original's: pick camera → render → loss → backward → report/save →
densification statistics → densify/prune → optimizer step → checkpoint; the step is
training/trainer.py, what happens around it (evaluation, saving, progress, checkpoints, the
viewer, Ctrl-C) training/hooks.py.
"""
import os
import sys
import random
import uuid
from argparse import ArgumentParser
from typing import List, Optional

import torch

from arguments import (ModelParams, RunParams, TrainingConfig, check_device, make_parser,
                       namespace_text)
from scene import GaussianModel, Scene
from scene.strategies import Strategy, make_strategy
from training.checkpoints import load_checkpoint
from training.hooks import (Checkpoints, Evaluation, Hook, Hooks, Progress, ReplicaCheck, Run,
                            Saving, StopRequest, ViewerLink)
from training.trainer import Trainer
from utils.cli import report_errors
from utils.distributed import Group, join
from utils.errors import DatasetError, UsageError
from utils.general_utils import seed_everything
from utils.model_folder import ModelFolder
from utils.system_utils import file_record, keep_freed_memory_for_reuse, write_text_atomic
from utils.training_log import TrainingLog
from viewer.settings import ViewerSettings


def build_parser() -> ArgumentParser:
    parser = make_parser("Training script parameters")
    TrainingConfig.add_flags(parser)
    return parser


def prepare_output(dataset: ModelParams) -> None:
    """The model folder with cfg_args (the original's form: the loading parameters);
    config.json follows once the scene is read (it lists the dataset files)."""
    if not dataset.model_path:
        dataset.model_path = os.path.join("./output", str(uuid.uuid4())[:10])
    print(f"Output folder: {dataset.model_path}")
    os.makedirs(dataset.model_path, exist_ok=True)
    folder = ModelFolder(dataset.model_path)
    write_text_atomic(folder.cfg_args, namespace_text(dataset))


def start_viewer(run_params: RunParams, trainer: Trainer, model_path: str):
    """The web viewer, or None (disabled, or its port taken: one warning line). Imported here,
    so that --disable_viewer runs never load the web server."""
    if run_params.disable_viewer:
        return None
    from viewer import Viewer
    scene = trainer.scene
    return Viewer.start(trainer.gaussians, {"train": scene.getTrainCameras(),
                                            "test": scene.getTestCameras()},
                        scene.background, trainer.pipe, model_path,
                        settings=ViewerSettings(ip=run_params.ip, port=run_params.port),
                        training=True)


def make_hooks(run: Run, run_params: RunParams, stop: StopRequest, group: Group) -> Hooks:
    """The run's hooks, in the order they act at each point of the loop."""
    hooks: List[Hook] = []
    if run.main:
        hooks.append(Evaluation(run, run_params.test_iterations))
    hooks.append(Saving(run, run_params.save_iterations))
    if run_params.check_replicas:
        hooks.append(ReplicaCheck(run))
    hooks.append(Progress(run))
    if run.main:
        hooks.append(Checkpoints(run, run_params.checkpoint_iterations))
    if run.viewer is not None:
        hooks.append(ViewerLink(run, stop))
    return Hooks(run, hooks, stop)


def training(config: TrainingConfig, strategy: Strategy, group: Optional[Group] = None) -> int:
    """Train as the flags say with `strategy` (made from them); returns the exit code (130:
    stopped by Ctrl-C)."""
    group = group or Group()
    dataset, opt, pipe, run_params = config.model, config.optimization, config.pipeline, config.run
    if group.is_main:
        prepare_output(dataset)
    gaussians = GaussianModel(dataset.sh_degree, opt.optimizer_type, device=run_params.device)
    scene = Scene(dataset, gaussians, device=run_params.device, init=strategy.initialisation())
    if group.is_main:  # every group, resolved, and the dataset files the scene read
        write_text_atomic(ModelFolder(dataset.model_path).config_json, config.to_json(
            strategy_settings=strategy.state_dict(),
            dataset_files=file_record(scene.dataset_files, dataset.source_path)))
    gaussians.training_setup(opt)
    gaussians.attach_strategy(strategy)
    trainer = Trainer(scene, gaussians, strategy, opt, pipe, group, run_params.debug_from)
    if trainer.resolution.active and group.is_main:
        print(f"Coarse-to-fine: {trainer.resolution.describe()}")
    log, first_iter = TrainingLog(), 0
    checkpoint = run_params.start_checkpoint
    if checkpoint:
        first_iter = load_checkpoint(checkpoint, gaussians, opt, trainer.loop, log, strategy)
        print(f"Resuming from {checkpoint} at iteration {first_iter}")
        if first_iter % opt.batch_size:
            raise UsageError(f"{checkpoint} is at iteration {first_iter}, which is not a multiple "
                             f"of --batch_size {opt.batch_size}")
    if not scene.getTrainCameras():
        raise DatasetError(dataset.source_path, "no training images")

    trainer.loop.camera_rng.setstate(random.getstate())  # after the resume, before the viewer
    run = Run(trainer, dataset.model_path, log, first_iter, run_params.quiet, group.is_main)
    run.viewer = start_viewer(run_params, trainer, dataset.model_path) if group.is_main else None
    try:
        with StopRequest() as stop:
            return trainer.train(first_iter, make_hooks(run, run_params, stop, group))
    finally:
        if run.viewer is not None:
            run.viewer.stop()


def main(argv=None) -> int:
    config = TrainingConfig.from_args(build_parser().parse_args(argv))
    dataset, opt, run_params = config.model, config.optimization, config.run
    run_params.save_iterations.append(opt.iterations)
    # Made here, so that its flags are refused before any work.
    strategy = make_strategy(opt, config.strategy, config.mcmc, dataset.white_background)
    if not dataset.source_path:
        raise UsageError("--source_path/-s is required")
    check_device(run_params.device)
    keep_freed_memory_for_reuse()
    print("Optimizing " + (dataset.model_path or "(new output folder)"))
    seed_everything(run_params.seed)
    torch.autograd.set_detect_anomaly(run_params.detect_anomaly)
    group = join(run_params.device, run_params.dist_timeout, run_params.threads)
    if group.distributed and group.is_main:
        print(f"Data-parallel training: {group.world_size} processes, batch of "
              f"{opt.batch_size} views, {torch.get_num_threads()} threads each")
    if opt.batch_size % group.world_size:
        raise UsageError(f"--batch_size {opt.batch_size} must be a multiple of the number of "
                         f"processes ({group.world_size})")
    try:
        return training(config, strategy, group)
    finally:
        group.close()


if __name__ == "__main__":
    exit_code = report_errors(main)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun process ends here, without the interpreter's and libraries' exit handlers:
        # torch's distributed teardown at exit aborted now and then ("terminate called without
        # an active exception", SIGABRT, about 1 run in 20 of benchmarks/distributed.py) after
        # everything was written. Every file is closed by now; the process group is destroyed.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    sys.exit(exit_code)
