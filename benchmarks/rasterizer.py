"""Rasterizer speed on the CPU: median forward and backward times on scenes shaped like trained ones.

    python benchmarks/rasterizer.py [--repeats 7] [--threads N] [--json PATH]

Scenes: Gaussians filling the view, SH degree 3, log-normal sizes with a median screen radius of
about 3 px and a tail past 30 px, and bimodal opacities (sigmoid of N(0, 3): many nearly
transparent, many nearly opaque), as in trained 3DGS models. "pairs" counts (tile pixel,
Gaussian) pairs after binning: 256 per tile entry; ns/pair/core = time * threads / pairs. The
original would bin every tile of each 3-sigma rectangle ("rect entries"); we bin only tiles where
alpha can reach 1/255, so our pairs are fewer than the original's for the same scene.
"""
import argparse
import math
import statistics
import sys
import time

import torch

from diff_gaussian_rasterization import GaussianRasterizer
from diff_gaussian_rasterization.constants import PROJECTION_W_EPS
from diff_gaussian_rasterization.reference import tile_rects
from diff_gaussian_rasterization.testing import look_at_settings, random_cloud

from stamp import write_result  # noqa: E402

SCENES = [  # (name, width, height, gaussians)
    ("256x256_20k", 256, 256, 20_000),
    ("512x512_100k", 512, 512, 100_000),
]
CAMERA_DISTANCE = 5.0
FOVX_DEG = 60.0
MEDIAN_RADIUS_PX = 3.0


def make_scene(width, height, count, seed=0):
    settings = look_at_settings(width, height, fovx_deg=FOVX_DEG, sh_degree=3,
                                eye=(0.0, 0.0, -CAMERA_DISTANCE), bg=(0.0, 0.0, 0.0))
    focal = width / (2 * settings.tanfovx)
    # 3 sigma * focal / depth = median radius  ->  sigma
    sigma = MEDIAN_RADIUS_PX * CAMERA_DISTANCE / (3 * focal)
    half_extent = settings.tanfovx * CAMERA_DISTANCE
    cloud = random_cloud(count, seed=seed, extent=half_extent, depth_range=(-1.0, 3.0),
                         log_scale_mean=math.log(sigma), log_scale_std=0.8,
                         opacity_logit_mean=0.0, opacity_logit_std=3.0, sh_std=0.2)
    return settings, cloud


def rect_tile_entries(settings, means3D, radii):
    """Tile entries the original would blend: every tile of each visible Gaussian's 3-sigma
    rectangle (we bin only the tiles where its alpha can reach 1/255)."""
    s = settings
    hom = torch.cat([means3D, torch.ones(len(means3D), 1)], 1) @ s.projmatrix
    ndc = hom[:, :2] / (hom[:, 3:4] + PROJECTION_W_EPS)
    size = torch.tensor([s.image_width, s.image_height], dtype=torch.float32)
    xy = ((ndc + 1) * size - 1) * 0.5
    x0, y0, x1, y1 = tile_rects(xy, radii.float(), s.image_width, s.image_height)
    area = ((x1 - x0) * (y1 - y0) * (radii > 0)).sum()
    return int(area)


def time_scene(width, height, count, repeats):
    settings, cloud = make_scene(width, height, count)
    rasterizer = GaussianRasterizer(settings)
    leaves = [cloud.means3D, cloud.opacities, cloud.shs, cloud.scales, cloud.rotations]
    leaves = [t.clone().requires_grad_() for t in leaves]
    means2D = torch.zeros_like(cloud.means3D, requires_grad=True)
    grad_color = torch.randn(3, height, width, generator=torch.Generator().manual_seed(1))
    forward_ms, backward_ms = [], []
    for it in range(repeats + 1):  # the first run warms caches and the allocator
        t0 = time.perf_counter()
        color, radii, invdepth = rasterizer(leaves[0], means2D, leaves[1], shs=leaves[2],
                                            scales=leaves[3], rotations=leaves[4])
        t1 = time.perf_counter()
        color.backward(grad_color)
        t2 = time.perf_counter()
        if it > 0:
            forward_ms.append((t1 - t0) * 1e3)
            backward_ms.append((t2 - t1) * 1e3)
    num_rendered = rasterizer.count_tile_entries(leaves[0], leaves[1], shs=leaves[2],
                                                 scales=leaves[3], rotations=leaves[4])
    visible = int((radii > 0).sum())
    return dict(width=width, height=height, gaussians=count, visible=visible,
                median_radius_px=float(radii[radii > 0].float().median()),
                tile_entries=num_rendered, pairs=num_rendered * 256,
                rect_tile_entries=rect_tile_entries(settings, cloud.means3D, radii),
                forward_ms=statistics.median(forward_ms), backward_ms=statistics.median(backward_ms),
                forward_all_ms=forward_ms, backward_all_ms=backward_ms)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--scenes", default=",".join(name for name, *_ in SCENES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    wanted = args.scenes.split(",")
    rows = []
    header = (f"{'scene':>14} {'visible':>8} {'rect entries':>12} {'entries':>9} {'pairs (M)':>10} {'fwd ms':>8} "
              f"{'bwd ms':>8} {'total ms':>9} {'fwd ns/pair/core':>17} {'bwd ns/pair/core':>17}")
    print(f"threads: {args.threads}, repeats: {args.repeats} (medians)")
    print(header)
    for name, width, height, count in SCENES:
        if name not in wanted:
            continue
        r = time_scene(width, height, count, args.repeats)
        r["scene"] = name
        r["threads"] = args.threads
        r["forward_ns_per_pair_core"] = r["forward_ms"] * 1e6 * args.threads / r["pairs"]
        r["backward_ns_per_pair_core"] = r["backward_ms"] * 1e6 * args.threads / r["pairs"]
        rows.append(r)
        print(f"{name:>14} {r['visible']:>8} {r['rect_tile_entries']:>12} {r['tile_entries']:>9} {r['pairs'] / 1e6:>10.1f} "
              f"{r['forward_ms']:>8.1f} {r['backward_ms']:>8.1f} "
              f"{r['forward_ms'] + r['backward_ms']:>9.1f} "
              f"{r['forward_ns_per_pair_core']:>17.2f} {r['backward_ns_per_pair_core']:>17.2f}")
    if args.json:
        write_result(args.json, "rasterizer", {"results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
