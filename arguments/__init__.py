"""Command-line configuration as typed data.

Each parameter group is a dataclass; its fields generate the argparse flags with the original's
names, short flags and defaults (GS-2024), so `python train.py -s data -m out --eval -r 2` means
what it means in the original. A bool field is a `store_true` switch, as in the original.

`cfg_args` is written in the original's `Namespace(...)` text form so tools built on the original
can read it, and is read back here with `ast` (literal values only), never `eval`.
"""
import argparse
import ast
import json
import os
from argparse import ArgumentParser, Namespace
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Optional

import torch

from utils.errors import DatasetError, UsageError
from utils.model_folder import ModelFolder

OPTIMIZER_TYPES = ("default", "sparse_adam")  # --optimizer_type: Adam, or Adam on visible rows
STRATEGIES = ("default", "mcmc")  # --strategy (scene/strategies.py)
INIT_TYPES = ("sfm", "random")  # --init_type: the dataset's SfM points or random points


def flag(default=None, help: str = "", short: str = "", type=None, factory=None):
    """A dataclass field that is also a command-line flag: its default, its help line (shown by
    --help with the default), its short name, the argparse type where None is the default. A
    list default is given as `factory` (its element type as `type`): the flag takes 1+ values."""
    metadata = {"help": help}
    if short:
        metadata["short"] = short
    if type is not None:
        metadata["type"] = type
    if factory is not None:
        return field(default_factory=factory, metadata=dict(metadata, nargs="+"))
    return field(default=default, metadata=metadata)


@dataclass
class ModelParams:
    """Loading parameters: where the data is, how it is read, where the model goes."""
    sh_degree: int = flag(3, "spherical-harmonics degree of the colours (0-3)")
    source_path: str = flag("", "the dataset: a COLMAP folder (images/, sparse/0), a "
                                "NeRF-synthetic folder (transforms_*.json) or a nerfstudio "
                                "folder (transforms.json)", short="s")
    model_path: str = flag("", "where the trained model goes (default: output/<random id>)",
                           short="m")
    images: str = flag("images", "the folder of photos under the source path", short="i")
    depths: str = flag("", "GS-2024: folder (under the source) of monocular inverse-depth maps; "
                           "turns on the depth loss", short="d")
    resolution: int = flag(-1, "image resolution: 1, 2, 4 or 8 divide the size; another number "
                               "is the width; -1 shrinks images wider than 1600 px to 1600",
                           short="r")
    white_background: bool = flag(False, "white background instead of black (NeRF-synthetic)",
                                  short="w")
    train_test_exp: bool = flag(False, "GS-2024: per-image exposure compensation; test images "
                                       "train on their left half and are scored on their right "
                                       "half")
    data_device: str = flag("", "where the decoded images live (default: the training device; "
                                "the original defaults to cuda)")
    eval: bool = flag(False, "hold out every 8th image (or the dataset's test split) for "
                             "evaluation")
    undistorted: str = flag("", "where undistorted copies of photos from distorted cameras "
                                "(OPENCV, fisheye...) are made once (default: <model>/undistorted; "
                                "never the dataset)")
    masks: str = flag("", "folder of PNG masks, one per image (same stem): white pixels train "
                          "and are scored, black ones are ignored (passers-by, the sky)")
    alpha_as_mask: bool = flag(False, "GS-2024: an RGBA photo's alpha is its mask (the "
                                      "background unsupervised) instead of being composited "
                                      "over the background colour")


@dataclass
class PipelineParams:
    """How the rasterizer is fed (the original's debugging switches)."""
    convert_SHs_python: bool = flag(False, "evaluate the SH colours in PyTorch instead of the "
                                           "rasterizer")
    compute_cov3D_python: bool = flag(False, "compute the 3D covariances in PyTorch instead of "
                                             "the rasterizer")
    debug: bool = flag(False, "the rasterizer checks its inputs and outputs (slow)")
    antialiasing: bool = flag(False, "GS-2024: the EWA/Mip-Splatting 2D filter with opacity "
                                     "compensation")


@dataclass
class OptimizationParams:
    """The optimisation: iterations, learning rates, losses and the densification schedule (the
    original's group, its names and defaults), with our batches and reference kernels."""
    iterations: int = flag(30_000, "training iterations (views)")
    position_lr_init: float = flag(0.00016, "position learning rate at the start (× the scene "
                                            "extent)")
    position_lr_final: float = flag(0.0000016, "position learning rate at "
                                               "--position_lr_max_steps")
    position_lr_delay_mult: float = flag(0.01, "the original's position-rate warm-up factor "
                                               "(no effect: it has no delay steps)")
    position_lr_max_steps: int = flag(30_000, "iteration where the position rate reaches its "
                                              "final value")
    feature_lr: float = flag(0.0025, "colour (SH DC) learning rate; the higher bands learn at "
                                     "1/20 of it")
    opacity_lr: float = flag(0.025, "opacity learning rate")
    scaling_lr: float = flag(0.005, "scale learning rate")
    rotation_lr: float = flag(0.001, "rotation learning rate")
    exposure_lr_init: float = flag(0.01, "--train_test_exp: exposure learning rate at the start")
    exposure_lr_final: float = flag(0.001, "--train_test_exp: exposure learning rate at the end")
    exposure_lr_delay_steps: int = flag(0, "--train_test_exp: warm-up steps of the exposure rate")
    exposure_lr_delay_mult: float = flag(0.0, "--train_test_exp: warm-up factor of the exposure "
                                              "rate")
    percent_dense: float = flag(0.01, "Gaussians larger than this × the scene extent are split, "
                                      "smaller ones cloned")
    lambda_dssim: float = flag(0.2, "weight of D-SSIM in the loss (1 − λ for L1)")
    depth_l1_weight_init: float = flag(1.0, "-d: weight of the depth loss at the start")
    depth_l1_weight_final: float = flag(0.01, "-d: weight of the depth loss at the end")
    # None: the strategy's own default (scene/strategies.py): the original's for the default
    # strategy, faster and longer for MCMC.
    densification_interval: Optional[int] = flag(
        None, "iterations between densifications (default: 100; 25 with --strategy mcmc)",
        type=int)
    opacity_reset_interval: int = flag(3000, "iterations between opacity resets (default "
                                             "strategy)")
    densify_from_iter: int = flag(500, "first iteration that densifies (or, with MCMC, "
                                       "relocates and grows)")
    densify_until_iter: Optional[int] = flag(
        None, "densification stops at this iteration (default: 15000; 25000 with --strategy "
              "mcmc)", type=int)
    densify_grad_threshold: float = flag(0.0002, "mean view-space gradient above which a "
                                                 "Gaussian is cloned or split")
    random_background: bool = flag(False, "a random background colour in every training render")
    optimizer_type: str = flag("default", "default (Adam on every Gaussian) or sparse_adam "
                                          "(Adam on the Gaussians the step drew)")
    # Ours: the original's loss and optimizer code paths, for comparisons.
    reference_kernels: bool = flag(False, "ours: the plain PyTorch SSIM + L1, per-tensor Adam and "
                                          "MCMC noise instead of the fused kernels (for "
                                          "comparisons)")
    # --iterations and every schedule count views, so B = 1 is the original and B > 1 sees the
    # same views in fewer steps.
    batch_size: int = flag(1, "ours: views per optimizer step (their gradients averaged; "
                              "learning rates × √B)")
    # Coarse-to-fine (scene/resolution.py); evaluation and rendering stay at full resolution.
    resolution_schedule: str = flag("off", "ours: coarse-to-fine training: off; auto (levels "
                                           "from the photos' spectra, DashGaussian-style); or "
                                           "N, iterations per level from 1/2^--num_downscales "
                                           "(splatfacto's)")
    num_downscales: int = flag(2, "ours, with --resolution_schedule N: the first level renders "
                                  "1/2^N of each side")
    # 0.7, not DashGaussian's 0.5: the full-resolution tail sets the time. Measured on a
    # 1024×768 scene at 7,000 iterations, with the 1/√2 level and the budget whole at full
    # resolution: 0.7 scored -0.20 / -0.08 dB against fixed resolution in 48 / 50 % of its time
    # (seeds 0, 1), where the schedule before (0.65, no 1/√2 level) scored -0.41 dB in 54 %
    # (seed 0); 0.8 lost 0.84 dB (docs/lab/2026-12-05-last-step-up.md).
    resolution_ramp: float = flag(0.7, "ours, with --resolution_schedule auto: full "
                                         "resolution from this fraction of --iterations on")

    def __post_init__(self):
        choose("optimizer_type", self.optimizer_type, OPTIMIZER_TYPES)
        if self.resolution_schedule not in ("off", "auto") and not (
                self.resolution_schedule.isdigit() and int(self.resolution_schedule) > 0):
            raise UsageError(f"--resolution_schedule must be off, auto or a number of "
                             f"iterations > 0, not {self.resolution_schedule!r}")
        if not 0.0 < self.resolution_ramp <= 1.0:
            raise UsageError(f"--resolution_ramp must be in (0, 1], not {self.resolution_ramp}")
        if self.num_downscales < 0:
            raise UsageError(f"--num_downscales must be >= 0, not {self.num_downscales}")
        if self.batch_size < 1 or self.iterations % self.batch_size:
            raise UsageError(f"--batch_size must be >= 1 and divide --iterations "
                             f"({self.iterations}), not {self.batch_size}")


@dataclass
class StrategyParams:
    """Ours: which densification strategy runs (scene/strategies.py) and how the Gaussians
    start."""
    strategy: str = flag("default", "ours: densification strategy: default (the original's) or "
                                    "mcmc (3DGS-MCMC with a Gaussian budget, --cap_max)")
    init_type: str = flag("sfm", "ours: start from the dataset's SfM points (sfm) or random "
                                 "points in the cameras' extent (random)")
    init_num: int = flag(100_000, "ours: how many points --init_type random starts with")
    # The original's screen-size prune never fires (it zeroes max_radii2D just before the
    # test). Off by default to keep the original's results.
    screen_size_prune: bool = flag(False, "ours, default strategy: a working screen-size prune "
                                          "(Gaussians wider than 20 px since the last "
                                          "densification); off, as the original, whose prune "
                                          "never fires")

    def __post_init__(self):
        choose("strategy", self.strategy, STRATEGIES)
        choose("init_type", self.init_type, INIT_TYPES)


@dataclass
class MCMCParams:
    """Ours: the settings of --strategy mcmc (3DGS-MCMC, Kheradmand et al. 2024)."""
    cap_max: int = flag(0, "ours, mcmc: the most Gaussians (required with --strategy mcmc)")
    noise_lr: float = flag(5e5, "ours, mcmc: position noise × the current position learning "
                                "rate")
    opacity_reg: float = flag(0.01, "ours, mcmc: L1 of the opacities added to the loss")
    scale_reg: float = flag(0.01, "ours, mcmc: L1 of the scales added to the loss")
    # MCMC grows faster than the paper's 5 % per refinement where that is needed to reach
    # --cap_max by this iteration (docs/strategies.md).
    cap_by_iter: int = flag(2000, "ours, mcmc: grow fast enough to reach --cap_max by this "
                                  "iteration (0: the paper's 5 %% per refinement only)")
    # At each MCMC refinement, Gaussians near the path between consecutive training cameras
    # (scene/camera_path.py) are relocated like dead ones, so no floater forms right in front
    # of a held-out view.
    path_clearance: float = flag(0.1, "ours, mcmc: relocate Gaussians within this × the scene "
                                      "extent of the training cameras' path (0: the paper's)")
    # Jittered copies of the SfM points until the start has init_fill × cap_max points, so a
    # small SfM cloud reaches an MCMC budget early (0.25 helped on one scene, hurt the other).
    init_fill: float = flag(0.0, "ours, mcmc: add jittered copies of the SfM points up to this × "
                                 "--cap_max")

    def __post_init__(self):
        if self.path_clearance < 0:
            raise UsageError(f"--path_clearance must be >= 0, not {self.path_clearance}")


def choose(name: str, value: str, allowed) -> None:
    """A UsageError unless `value` is one of `allowed` (flag --name)."""
    if value not in allowed:
        raise UsageError(f"--{name} must be one of {', '.join(allowed)}, not {value!r}")


def default_device() -> str:
    """--device default (ours): the GPU when torch can use one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


DEVICE_HELP = "where to train/render: cpu or cuda (default: cuda when available)"
DEFAULT_IP = "127.0.0.1"  # the original's --ip: only this machine can connect unless asked
DEFAULT_PORT = 6009  # the original's --port


@dataclass
class RunParams:
    """train.py's own flags: what the run reports, saves and checkpoints, where it runs, the
    viewer, the processes."""
    test_iterations: list = flag(help="iterations at which the test views are scored", type=int,
                                 factory=lambda: [7_000, 30_000])
    save_iterations: list = flag(help="iterations at which the PLY is saved (--iterations is "
                                      "always added)", type=int, factory=lambda: [7_000, 30_000])
    checkpoint_iterations: list = flag(help="iterations at which a checkpoint (chkpnt<N>.pth) is "
                                            "written", type=int, factory=list)
    start_checkpoint: Optional[str] = flag(None, "resume from this checkpoint (bit-exactly for "
                                                 "ours)", type=str)
    debug_from: int = flag(-1, "the rasterizer's debug mode from this iteration on")
    detect_anomaly: bool = flag(False, "torch.autograd's anomaly detection (slow)")
    quiet: bool = flag(False, "no progress bar")
    ip: str = flag(DEFAULT_IP, "the web viewer listens here (default: this machine only)")
    port: int = flag(DEFAULT_PORT, "the web viewer's port")
    disable_viewer: bool = flag(False, "do not start the web viewer")
    seed: int = flag(0, "ours: seeds Python's, NumPy's and torch's random generators")
    threads: int = flag(0, "ours: torch threads (0: all cores; under torchrun, the cores divided "
                           "among this machine's processes)")
    check_replicas: bool = flag(False, "ours, under torchrun: after every step that adds or "
                                       "removes Gaussians, check that all processes hold "
                                       "bit-identical parameters")
    dist_timeout: float = flag(120.0, "ours, under torchrun: seconds a process waits for the "
                                      "others before the job stops")
    device: str = flag(default_device(), DEVICE_HELP)


@dataclass
class TrainingConfig:
    """Every group of train.py's flags, one dataclass per concern."""
    model: ModelParams
    optimization: OptimizationParams
    pipeline: PipelineParams
    strategy: StrategyParams
    mcmc: MCMCParams
    run: RunParams

    @classmethod
    def add_flags(cls, parser: ArgumentParser) -> None:
        for f in fields(cls):
            add_group(parser, f.type)

    @classmethod
    def from_args(cls, args: Namespace) -> "TrainingConfig":
        return cls(**{f.name: extract(f.type, args) for f in fields(cls)})

    def to_json(self, **extra) -> str:
        """config.json: every group, resolved, and `extra` objects (the strategy's settings)."""
        return config_json(**{f.name: getattr(self, f.name) for f in fields(self)}, **extra)


class HelpFormatter(argparse.HelpFormatter):
    """Every flag's help line ends with its default (none for switches and empty values)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" not in text and "(default" not in text \
                and action.default not in (None, False, "", [], argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


def make_parser(description: str) -> ArgumentParser:
    """A script's parser: its flags' help lines show their defaults."""
    return ArgumentParser(description=description, formatter_class=HelpFormatter)


def field_default(f):
    return f.default_factory() if f.default_factory is not MISSING else f.default


def add_group(parser: ArgumentParser, cls, sentinel: bool = False):
    """Add one flag per field of `cls`, with the field's help line. With `sentinel`, every
    default is None so that values given on the command line can be told apart from those read
    from cfg_args (render.py); the help line then names the training default."""
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").split("\n\n")[0])
    for f in fields(cls):
        names = [f"--{f.name}"]
        if "short" in f.metadata:
            names.append(f"-{f.metadata['short']}")
        default = field_default(f)
        help_text = f.metadata.get("help", "")
        if sentinel:
            if default not in (None, False, ""):
                help_text += f" (default: the model's cfg_args, else {default})"
            default = None
        if f.type in (bool, "bool"):
            group.add_argument(*names, default=default, action="store_true", help=help_text)
        else:
            group.add_argument(*names, default=default, help=help_text,
                               nargs=f.metadata.get("nargs"),
                               type=f.metadata.get("type", type(f.default)))
    return group


def add_device_flag(parser: ArgumentParser) -> None:
    parser.add_argument("--device", default=default_device(), help=DEVICE_HELP)


def config_json(**groups) -> str:
    """The whole resolved configuration, one object per group (name → dataclass or dict), as
    JSON."""
    return json.dumps({name: asdict(params) if is_dataclass(params) else params
                       for name, params in groups.items()}, indent=2, sort_keys=True) + "\n"


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
        values[f.name] = field_default(f) if value is None else value
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
        path = ModelFolder(cmdline.model_path).cfg_args
        if os.path.exists(path):
            print(f"Looking for config file in {path}")
            with open(path) as f:
                saved = parse_namespace_text(f.read(), path)
    merged = dict(saved)
    for key, value in vars(cmdline).items():
        if value is not None:
            merged[key] = value
    return Namespace(**merged)
