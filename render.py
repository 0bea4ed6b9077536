"""Render the train and test views of a trained model, as the original's render.py:

    python render.py -m output/garden              # latest iteration
    python render.py -m output/garden --skip_train --video

writes <model>/{train,test}/ours_<N>/{renders,gt}/00000.png ..., plus comparison.png (ground
truth | render | error for the first views) and, with --video, <model>/video_ours_<N>.mp4 along a
smooth path through the training cameras.
"""
import os

import numpy as np
import torch
from tqdm import tqdm

from arguments import (ModelParams, PipelineParams, add_device_flag, add_group, check_device,
                       extract, get_combined_args, make_parser)
from gaussian_renderer import render
from scene import GaussianModel, Scene
from scene.cameras import Camera, scored_part
from scene.colmap_loader import qvec2rotmat, rotmat2qvec
from utils.cli import run_main
from utils.model_folder import ModelFolder
from utils.image_io import comparison_grid, save_png, to_uint8
from utils.system_utils import atomic_path

COMPARISON_VIEWS = 4  # rows in comparison.png
VIDEO_FPS = 30


def render_set(folder: str, name: str, scene: Scene, pipe, quiet=False):
    """The `name` ("train" or "test") views of the scene's loaded model into `folder` (renders/,
    gt/, comparison.png). With --train_test_exp (read from cfg_args), images carry their trained
    exposure and only their right halves are written (what the original scores). Views with a
    mask (--masks, --alpha_as_mask) also write it to masks/, for metrics.py."""
    views = scene.getTrainCameras() if name == "train" else scene.getTestCameras()
    gaussians, background, train_test_exp = scene.gaussians, scene.background, scene.train_test_exp
    rows = []
    for idx, view in enumerate(tqdm(views, desc=f"Rendering {name}", disable=quiet)):
        image = torch.clamp(render(view, gaussians, pipe, background,
                                   use_trained_exp=train_test_exp).render, 0.0, 1.0)
        image = scored_part(image, train_test_exp)
        gt = scored_part(view.original_image[0:3], train_test_exp)
        save_png(image, os.path.join(folder, "renders", f"{idx:05d}.png"))
        save_png(gt, os.path.join(folder, "gt", f"{idx:05d}.png"))
        if view.mask is not None:  # metrics.py scores only the pixels it keeps
            mask = scored_part(view.mask, train_test_exp)[0].cpu().numpy()
            save_png(mask, os.path.join(folder, "masks", f"{idx:05d}.png"))
        if idx < COMPARISON_VIEWS:
            rows.append((gt.cpu(), image.cpu()))
    if rows:
        comparison_grid(rows, os.path.join(folder, "comparison.png"))
    return folder


def slerp(q0, q1, t):
    q0, q1 = q0 / np.linalg.norm(q0), q1 / np.linalg.norm(q1)
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + t * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)


def video_path_cameras(cameras, frames_per_view, device):
    """Cameras along a closed path through `cameras` (in name order): camera centres linearly
    interpolated, orientations slerped, intrinsics of the first camera."""
    cameras = sorted(cameras, key=lambda c: c.image_name)
    first = cameras[0]
    size = (3, first.image_height, first.image_width)
    poses = [(rotmat2qvec(c.R.T), -c.R @ c.T) for c in cameras]  # (W2C quaternion, centre)
    path = []
    for i in range(len(poses)):
        (qa, ca), (qb, cb) = poses[i], poses[(i + 1) % len(poses)]
        for k in range(frames_per_view):
            t = k / frames_per_view
            w2c = qvec2rotmat(slerp(qa, qb, t))
            centre = (1 - t) * ca + t * cb
            path.append(Camera(colmap_id=-1, R=w2c.T, T=-w2c @ centre, FoVx=first.FoVx,
                               FoVy=first.FoVy, image=torch.zeros(size), image_name=f"path_{len(path)}",
                               uid=len(path), principal_ndc=first.principal_ndc, device=device,
                               data_device="cpu"))
    return path


def render_video(path, cameras, gaussians, pipe, background, quiet=False):
    import imageio_ffmpeg
    first = cameras[0]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(tmp, (first.image_width, first.image_height),
                                             fps=VIDEO_FPS, quality=8, macro_block_size=1,
                                             output_params=["-f", "mp4"])
        writer.send(None)
        try:
            for cam in tqdm(cameras, desc="Rendering video", disable=quiet):
                image = torch.clamp(render(cam, gaussians, pipe, background).render, 0.0, 1.0)
                writer.send(np.ascontiguousarray(to_uint8(image)))
        finally:
            writer.close()


@torch.no_grad()
def render_sets(dataset, pipe, args) -> list:
    """render.py's work for the flags in `args` (iteration, skip_train, skip_test, video,
    video_frames_per_view, device, quiet)."""
    gaussians = GaussianModel(dataset.sh_degree, device=args.device)
    scene = Scene(dataset, gaussians, load_iteration=args.iteration, shuffle=False,
                  device=args.device)
    outputs = []
    for name, skip in (("train", args.skip_train), ("test", args.skip_test)):
        if skip or (name == "test" and not scene.getTestCameras()):
            continue
        outputs.append(render_set(scene.folder.renders(name, scene.loaded_iter), name, scene,
                                  pipe, args.quiet))
    if args.video:
        path = scene.folder.file(f"video_ours_{scene.loaded_iter}.mp4")
        cameras = video_path_cameras(scene.getTrainCameras(), args.video_frames_per_view,
                                     args.device)
        render_video(path, cameras, gaussians, pipe, scene.background, args.quiet)
        outputs.append(path)
    for out in outputs:
        print(f"Wrote {out}")
    return outputs


def main(argv=None) -> int:
    parser = make_parser("Testing script parameters")
    add_group(parser, ModelParams, sentinel=True)
    add_group(parser, PipelineParams)
    parser.add_argument("--iteration", default=-1, type=int,
                        help="the saved iteration to render (-1: the latest)")
    parser.add_argument("--skip_train", action="store_true", help="do not render the train views")
    parser.add_argument("--skip_test", action="store_true", help="do not render the test views")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--video", action="store_true",
                        help="also render an MP4 along a path through the training cameras")
    parser.add_argument("--video_frames_per_view", type=int, default=8,
                        help="--video: frames between two consecutive training cameras")
    add_device_flag(parser)
    args = get_combined_args(parser, argv)
    if not getattr(args, "model_path", None):
        parser.error("--model_path/-m is required")
    ModelFolder(args.model_path).resolve_iteration(args.iteration)  # a model folder at all?
    check_device(args.device)
    print("Rendering " + args.model_path)
    dataset, pipe = extract(ModelParams, args), extract(PipelineParams, args)
    render_sets(dataset, pipe, args)
    return 0


if __name__ == "__main__":
    run_main(main)
