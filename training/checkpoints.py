"""Checkpoints: the original's (capture(), iteration) plus a third element with what an exact
resume needs (RNG states, the remaining camera order, the loss average, the training curve, the
strategy's settings, the exposures)."""
import os

import torch

from scene.strategies import Strategy
from utils.errors import DatasetError
from utils.general_utils import rng_state, set_rng_state
from utils.model_folder import ModelFolder
from utils.system_utils import atomic_path
from utils.training_log import TrainingLog
from .trainer import LoopState, check_finite

CHECKPOINT_FORMAT = 1  # our extra checkpoint element (RNG states, camera order, curve)


def save_checkpoint(gaussians, iteration, loop: LoopState, log: TrainingLog, model_path,
                    strategy: Strategy):
    """The original's (capture, iteration) plus a third element with what exact resume needs.
    Refuses to write a non-finite model, so the last good checkpoint stays."""
    check_finite(gaussians, iteration)
    rng = dict(rng_state(), python=loop.camera_rng.getstate())
    extras = {"format": CHECKPOINT_FORMAT, "rng": rng,
              "viewpoint_stack": list(loop.viewpoint_stack), "ema_loss": loop.ema_loss,
              "history": log.history, "strategy": strategy.state_dict()}
    if gaussians.exposures is not None:  # the original drops them; resume needs them
        extras["exposure"] = gaussians.exposures.state_dict()
    path = ModelFolder(model_path).checkpoint(iteration)
    with atomic_path(path) as tmp:
        torch.save((gaussians.capture(), iteration, extras), tmp)
    return path


def load_checkpoint(path, gaussians, opt, loop: LoopState, log: TrainingLog,
                    strategy: Strategy) -> int:
    if not os.path.isfile(path):
        raise DatasetError(path, "checkpoint not found")
    try:
        contents = torch.load(path, map_location=gaussians.device, weights_only=True)
        model_params, first_iter = contents[0], contents[1]
    except Exception as exc:  # any unreadable file: report it as one line
        raise DatasetError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") \
            from None
    if len(contents) > 2:  # ours: continue bit-exactly
        extras = contents[2]
        strategy.check_state(extras.get("strategy", {"name": "default"}), path)
        set_rng_state(extras["rng"])
        loop.viewpoint_stack = list(extras["viewpoint_stack"])
        loop.ema_loss = extras["ema_loss"]
        log.history = extras["history"]
    gaussians.restore(model_params, opt)
    if len(contents) > 2 and gaussians.exposures is not None and "exposure" in contents[2]:
        gaussians.exposures.load_state_dict(contents[2]["exposure"], path)
    return first_iter
