"""Open a trained model in the web viewer (no training):

    python view.py -m output/garden [--iteration N] [--ip 127.0.0.1] [--port 6009]
    python view.py path/to/point_cloud.ply          # any 3DGS PLY, or .compressed.ply/.spz/.splat

With -m, the dataset's cameras (from the model's cfg_args) are drawn as frustums and their photos
shown when one is selected; a bare PLY is shown without cameras. Ctrl-C stops the server.
"""
import os
import signal
import time

from arguments import (ModelParams, PipelineParams, add_device_flag, add_group, check_device,
                       extract, get_combined_args, make_parser)
from scene import GaussianModel, Scene, background_color
from utils.cli import run_main
from utils.errors import DatasetError, UsageError
from utils.model_folder import ModelFolder
from utils.splat_io import read_splats
from viewer.settings import DEFAULT_IP, DEFAULT_MAX_RESOLUTION, DEFAULT_PORT, ViewerSettings


def load_model(args, device):
    """(gaussians, cameras {"train": [...], "test": [...]}, background, pipe, folder for saved
    views) for a PLY path or a model folder."""
    pipe = extract(PipelineParams, args)
    ply = getattr(args, "ply", None)  # get_combined_args drops unset (None) values
    if ply:
        if not os.path.isfile(ply):
            raise DatasetError(ply, "no such file")
        data = read_splats(ply)  # any format utils/splat_io reads, read once
        gaussians = GaussianModel(data.sh_degree, device=device)
        gaussians.load_splats(data, ply)
        background = background_color(bool(getattr(args, "white_background", False)), device)
        return gaussians, {}, background, pipe, os.path.dirname(os.path.abspath(ply))
    if not args.model_path:
        raise UsageError("give -m <model folder> or a .ply path")
    folder = ModelFolder(args.model_path)
    iteration = folder.resolve_iteration(args.iteration)
    dataset = extract(ModelParams, args)
    gaussians = GaussianModel(dataset.sh_degree, device=device)
    if not dataset.source_path or not os.path.isdir(dataset.source_path):
        # The photos moved or are on another machine: show the model alone.
        print(f"note: dataset {dataset.source_path!r} not found; showing the model without "
              f"its cameras")
        gaussians.load_ply(folder.point_cloud_file(iteration))
        background = background_color(dataset.white_background, device)
        return gaussians, {}, background, pipe, args.model_path
    scene = Scene(dataset, gaussians, load_iteration=iteration, shuffle=False, device=device)
    cameras = {"train": scene.getTrainCameras(), "test": scene.getTestCameras()}
    return gaussians, cameras, scene.background, pipe, args.model_path


def main(argv=None) -> int:
    parser = make_parser("Web viewer for a trained model")
    parser.add_argument("ply", nargs="?", default=None, help="a 3DGS PLY, .compressed.ply, .spz or .splat file (instead of -m)")
    add_group(parser, ModelParams, sentinel=True)
    add_group(parser, PipelineParams)
    parser.add_argument("--iteration", default=-1, type=int,
                        help="the saved iteration to show (-1: the latest)")
    parser.add_argument("--ip", default=DEFAULT_IP,
                        help="the viewer listens here (default: this machine only)")
    parser.add_argument("--port", default=DEFAULT_PORT, type=int, help="the viewer's port")
    parser.add_argument("--max_resolution", default=DEFAULT_MAX_RESOLUTION, type=int,
                        help="frames are drawn at most this many pixels on their long side")
    add_device_flag(parser)
    args = get_combined_args(parser, argv)
    # Python leaves SIGINT ignored when it starts with it ignored (a background job of a shell
    # without job control, such as a script's `&`); the viewer promises Ctrl-C, and train.py
    # installs its own handler the same way. Installed before the server starts, so that a
    # Ctrl-C while it starts is not lost either.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    check_device(args.device)
    gaussians, cameras, background, pipe, out_folder = load_model(args, args.device)

    from viewer import Viewer
    viewer = Viewer.start(gaussians, cameras, background, pipe, out_folder,
                          settings=ViewerSettings(ip=args.ip, port=args.port,
                                                  max_resolution=args.max_resolution),
                          training=False)
    if viewer is None:
        return 1
    try:
        print(f"{gaussians.num_points:,} Gaussians; open {viewer.url} in a browser "
              f"(Ctrl-C to stop)")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("\nStopping the viewer")
    finally:
        viewer.stop()
    return 0


if __name__ == "__main__":
    run_main(main)
