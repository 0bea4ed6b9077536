"""Command-line configuration as typed data.

Each parameter group is a dataclass; its fields generate the argparse flags with the original's
names, short flags and defaults (GS-2024), so `python train.py -s data -m out --eval -r 2` means
what it means in the original. A bool field is a `store_true` switch, as in the original.

`cfg_args` is written in the original's `Namespace(...)` text form so tools built on the original
can read it, and is read back here with `ast` (literal values only), never `eval`.
"""
import ast
import os
from argparse import ArgumentParser, Namespace
from dataclasses import dataclass, field, fields
from typing import Optional

import torch

from utils.errors import DatasetError, UsageError

OPTIMIZER_TYPES = ("default", "sparse_adam")  # --optimizer_type: Adam, or Adam on visible rows
STRATEGIES = ("default", "mcmc")  # --strategy (scene/strategies.py)
# Defaults of the flags the strategies share, per strategy (used where the flag is not given).
# default: the original's. mcmc: the paper's code refines until 25,000 every 100 iterations; we
# refine every 25 and grow fast enough to reach --cap_max by --cap_by_iter (2,000), so that the
# short runs a CPU affords are at their Gaussian budget for most of the run and dead Gaussians
# are recycled quickly (README, "Densification strategies", has the measurements).
STRATEGY_DEFAULTS = {
    "default": {"densification_interval": 100, "densify_until_iter": 15_000, "init_fill": 0.0},
    "mcmc": {"densification_interval": 25, "densify_until_iter": 25_000, "init_fill": 0.0},
}
INIT_TYPES = ("sfm", "random")  # --init_type: the dataset's SfM points or random points


@dataclass
class ModelParams:
    """Loading parameters: where the data is, how it is read, where the model goes."""
    sh_degree: int = 3
    source_path: str = field(default="", metadata={"short": "s"})
    model_path: str = field(default="", metadata={"short": "m"})
    images: str = field(default="images", metadata={"short": "i"})
    # GS-2024: folder (under the source) of monocular inverse-depth maps; turns on depth loss.
    depths: str = field(default="", metadata={"short": "d"})
    resolution: int = field(default=-1, metadata={"short": "r"})
    white_background: bool = field(default=False, metadata={"short": "w"})
    # GS-2024: per-image exposure compensation; test images train on their left half and are
    # scored on their right half.
    train_test_exp: bool = False
    # "" = the training device (--device); the original defaults to "cuda".
    data_device: str = ""
    eval: bool = False


@dataclass
class PipelineParams:
    convert_SHs_python: bool = False
    compute_cov3D_python: bool = False
    debug: bool = False
    antialiasing: bool = False


@dataclass
class OptimizationParams:
    iterations: int = 30_000
    position_lr_init: float = 0.00016
    position_lr_final: float = 0.0000016
    position_lr_delay_mult: float = 0.01
    position_lr_max_steps: int = 30_000
    feature_lr: float = 0.0025
    opacity_lr: float = 0.025
    scaling_lr: float = 0.005
    rotation_lr: float = 0.001
    exposure_lr_init: float = 0.01
    exposure_lr_final: float = 0.001
    exposure_lr_delay_steps: int = 0
    exposure_lr_delay_mult: float = 0.0
    percent_dense: float = 0.01
    lambda_dssim: float = 0.2
    depth_l1_weight_init: float = 1.0
    depth_l1_weight_final: float = 0.01
    # None: the strategy's default (STRATEGY_DEFAULTS below).
    densification_interval: Optional[int] = field(default=None, metadata={"type": int})
    opacity_reset_interval: int = 3000
    densify_from_iter: int = 500
    densify_until_iter: Optional[int] = field(default=None, metadata={"type": int})
    densify_grad_threshold: float = 0.0002
    random_background: bool = False
    optimizer_type: str = "default"
    # Ours: the original's screen-size prune never fires (it zeroes max_radii2D just before the
    # test). Off by default to keep the original's results; on, it prunes Gaussians whose screen
    # radius exceeded 20 px since the previous densification (see README).
    screen_size_prune: bool = False
    # Ours: the plain PyTorch SSIM + L1 and torch's per-tensor Adam (the original's loss and
    # optimizer code paths) instead of the fused SSIM and fused Adam; for comparisons.
    reference_kernels: bool = False
    # Ours: the densification strategy. "default" is the original's; "mcmc" is 3DGS-MCMC
    # (Kheradmand et al. 2024) with a Gaussian budget, --cap_max (required with mcmc). MCMC
    # refines at the default's densification iterations (--densify_from_iter/_until_iter,
    # --densification_interval) and has no opacity reset.
    strategy: str = "default"
    cap_max: int = 0
    noise_lr: float = 5e5  # MCMC position noise: × the current xyz learning rate
    opacity_reg: float = 0.01  # MCMC: L1 of the activated opacities, added to the loss
    scale_reg: float = 0.01  # MCMC: L1 of the activated scales, added to the loss
    # Ours: MCMC grows faster than the paper's 5 % per refinement where that is needed to reach
    # --cap_max by this iteration (0: 5 % only, the paper's); see README, "Densification
    # strategies". The default strategy ignores it.
    cap_by_iter: int = 2000
    # Ours: at each MCMC refinement, Gaussians within path_clearance × cameras_extent of the
    # path between consecutive training cameras (scene/camera_path.py) are relocated like dead
    # ones, so no floater forms right in front of a held-out view (0: the paper's). The default
    # strategy ignores it. See README, "Densification strategies".
    path_clearance: float = 0.1
    init_type: str = "sfm"
    init_num: int = 100_000  # --init_type random: how many points
    # Ours: with --init_type sfm, jittered copies of the SfM points are added until the start
    # has init_fill × cap_max points, so that a small SfM cloud reaches an MCMC budget early
    # (default 0: the paper's start; 0.25 helped on one scene and hurt on the other, see README,
    # "Densification strategies"). None: the strategy's default.
    init_fill: Optional[float] = field(default=None, metadata={"type": float})
    # Ours: views per optimizer step (their gradients averaged). --iterations and every schedule
    # count views, so B = 1 is the original and B > 1 sees the same views in fewer steps.
    batch_size: int = 1

    def __post_init__(self):
        for flag, value, allowed in (("optimizer_type", self.optimizer_type, OPTIMIZER_TYPES),
                                     ("strategy", self.strategy, STRATEGIES),
                                     ("init_type", self.init_type, INIT_TYPES)):
            if value not in allowed:
                raise UsageError(f"--{flag} must be one of {', '.join(allowed)}, not {value!r}")
        if self.batch_size < 1 or self.iterations % self.batch_size:
            raise UsageError(f"--batch_size must be >= 1 and divide --iterations "
                             f"({self.iterations}), not {self.batch_size}")
        if self.path_clearance < 0:
            raise UsageError(f"--path_clearance must be >= 0, not {self.path_clearance}")
        if self.strategy == "mcmc" and self.cap_max <= 0:
            raise UsageError("--strategy mcmc needs --cap_max N, the most Gaussians (N > 0)")
        for name, value in STRATEGY_DEFAULTS[self.strategy].items():
            if getattr(self, name) is None:
                setattr(self, name, value)


PARAM_GROUPS = (ModelParams, PipelineParams, OptimizationParams)


def add_group(parser: ArgumentParser, cls, sentinel: bool = False):
    """Add one flag per field of `cls`. With `sentinel`, every default is None so that values
    given on the command line can be told apart from those read from cfg_args (render.py)."""
    group = parser.add_argument_group(cls.__name__)
    for f in fields(cls):
        names = [f"--{f.name}"]
        if "short" in f.metadata:
            names.append(f"-{f.metadata['short']}")
        default = None if sentinel else f.default
        if f.type in (bool, "bool"):
            group.add_argument(*names, default=default, action="store_true")
        else:
            group.add_argument(*names, default=default,
                               type=f.metadata.get("type", type(f.default)))
    return group


def default_device() -> str:
    """--device default (ours): the GPU when torch can use one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_device_flag(parser: ArgumentParser) -> None:
    parser.add_argument("--device", default=default_device(),
                        help="where to train/render: cpu or cuda (default: cuda when available)")


def check_device(device: str) -> str:
    """The --device value, refused with a UsageError when it names a GPU that is not there."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA device is available (use --device cpu)")
    return device


def extract(cls, args: Namespace):
    """The dataclass of group `cls` filled from parsed arguments (missing → the default)."""
    values = {}
    for f in fields(cls):
        value = getattr(args, f.name, None)
        values[f.name] = f.default if value is None else value
    params = cls(**values)
    if isinstance(params, ModelParams) and params.source_path:
        params.source_path = os.path.abspath(params.source_path)
    return params


def namespace_text(params: ModelParams) -> str:
    """cfg_args content: the original's `str(Namespace(**vars(args)))` form."""
    return str(Namespace(**vars(params)))


def parse_namespace_text(text: str, path: str = "cfg_args") -> dict:
    """Read `Namespace(a=1, b='x', ...)` with literal values only; raise DatasetError otherwise."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        call = tree.body
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Namespace"
                and not call.args):
            raise ValueError("not a Namespace(...) expression")
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError) as exc:
        raise DatasetError(path, f"cannot read the saved training arguments ({exc})") from None


def get_combined_args(parser: ArgumentParser, argv: Optional[list] = None) -> Namespace:
    """Command-line values override those saved in <model_path>/cfg_args (render.py, metrics)."""
    cmdline = parser.parse_args(argv)
    saved = {}
    if cmdline.model_path:
        path = os.path.join(cmdline.model_path, "cfg_args")
        if os.path.exists(path):
            print(f"Looking for config file in {path}")
            with open(path) as f:
                saved = parse_namespace_text(f.read(), path)
    merged = dict(saved)
    for key, value in vars(cmdline).items():
        if value is not None:
            merged[key] = value
    return Namespace(**merged)
