"""Rasterizer builds timed against each other: forward + backward on the same views, the builds
interleaved view by view in one process (so the machine's drift, up to 20 % between runs minutes
apart on a virtual machine, hits every build alike), and their images and gradients compared.

    PY=.venv/bin/python bash tools/build_rasterizer_isa.sh native /tmp/dgr_new     # this tree
    git stash; PY=... bash tools/build_rasterizer_isa.sh native /tmp/dgr_old; git stash pop
    python benchmarks/compare_builds.py /tmp/dgr_old /tmp/dgr_new --model output/garden

A build is a folder holding a `diff_gaussian_rasterization` package with its compiled `_C` (what
tools/build_rasterizer_isa.sh writes), or `installed` for the one Python imports. Views: every
training camera of a trained model (`--model`, its latest or `--iteration`'s PLY, SH degree at its
maximum), or without --model one synthetic 100k-Gaussian view (benchmarks/rasterizer.py's cloud at
320x240). The loss is the image times fixed random weights. "same" compares each build's image and
gradients (means, SH, opacities, scales, rotations) with the first build's on the first pass,
which is not timed: "yes" for equal bits, else the largest difference relative to the largest
value of its tensor.
"""
import argparse
import importlib
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from stamp import write_result  # noqa: E402

import torch  # noqa: E402


def load_builds(builds, workdir):
    """Each build's package imported under a name of its own (dgr_build0, ...)."""
    modules = []
    sys.path.insert(0, workdir)
    for k, build in enumerate(builds):
        if build == "installed":
            source = os.path.dirname(importlib.util.find_spec("diff_gaussian_rasterization").origin)
        else:
            source = os.path.join(build, "diff_gaussian_rasterization")
        if not os.path.isdir(source):
            raise SystemExit(f"error: {build}: no diff_gaussian_rasterization package there")
        name = f"dgr_build{k}"
        shutil.copytree(source, os.path.join(workdir, name))
        modules.append(importlib.import_module(name))
    return modules


def sibling_benchmark(name):
    """Another script of benchmarks/ as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark",
                                                  os.path.join(REPO, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def model_views(model_path, iteration, source, resolution=None):
    """(settings fields, tensors) of every training camera of a trained model (at train.py's
    -r `resolution` when given)."""
    from gaussian_renderer import raster_settings
    from benchmarks.trained_model import SAMPLE, load_scene
    scene, g, config = load_scene(model_path, iteration, source=source or SAMPLE,
                                  extra_argv=() if resolution is None else ("-r", resolution))
    pipe = config.pipeline
    g.active_sh_degree = g.max_sh_degree
    with torch.no_grad():
        tensors = dict(means3D=g.get_xyz, dc=g.get_features_dc, shs=g.get_features_rest,
                       opacities=g.get_opacity, scales=g.get_scaling, rotations=g.get_rotation)
    views = [raster_settings(cam, g.active_sh_degree, scene.background, pipe)._asdict()
             for cam in scene.getTrainCameras()]
    return views, tensors


def synthetic_view():
    settings, cloud = sibling_benchmark("rasterizer").make_scene(320, 240, 100_000)
    tensors = dict(means3D=cloud.means3D, shs=cloud.shs, opacities=cloud.opacities,
                   scales=cloud.scales, rotations=cloud.rotations)
    return [settings._asdict()], tensors


def run_view(module, fields, tensors, weights):
    """Forward and backward of one view: (forward s, backward s, image, gradients)."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in tensors.items()}
    means2D = torch.zeros_like(leaves["means3D"], requires_grad=True)
    rasterizer = module.GaussianRasterizer(module.GaussianRasterizationSettings(**fields))
    t0 = time.perf_counter()
    image, _, _ = rasterizer(means2D=means2D, **leaves)
    t1 = time.perf_counter()
    (image * weights).sum().backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, image.detach(), {k: v.grad for k, v in leaves.items()}


def max_difference(a, b):
    """The largest difference between corresponding tensors, each relative to its largest value."""
    return max(((x - y).abs().max() / y.abs().max().clamp_min(1e-30)).item() for x, y in zip(a, b))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("builds", nargs="+", help="build folders, or `installed`")
    parser.add_argument("--model", default=None, help="a trained model folder (default: synthetic)")
    parser.add_argument("--iteration", type=int, default=-1, help="its saved iteration (-1: latest)")
    parser.add_argument("-s", "--source_path", default=None,
                        help="the model's dataset (default: the bundled sample)")
    parser.add_argument("-r", "--resolution", default=None,
                        help="train.py's -r for the model's views (default: the dataset's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the views")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as workdir:
        modules = load_builds(args.builds, workdir)
        if args.model:
            views, tensors = model_views(args.model, args.iteration, args.source_path,
                                         args.resolution)
        else:
            views, tensors = synthetic_view()
        height, width = views[0]["image_height"], views[0]["image_width"]
        weights = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0))
        forward = [[] for _ in modules]
        backward = [[] for _ in modules]
        difference = [0.0 for _ in modules]
        for rep in range(args.repeats + 1):  # pass 0 warms up and compares
            for fields in views:
                first = None
                for k, module in enumerate(modules):
                    f, b, image, grads = run_view(module, fields, tensors, weights)
                    if rep == 0:
                        outputs = [image] + [grads[name] for name in sorted(grads)]
                        if first is None:
                            first = outputs
                        difference[k] = max(difference[k], max_difference(outputs, first))
                    else:
                        forward[k].append(f * 1e3)
                        backward[k].append(b * 1e3)
    rows = []
    print(f"{len(views)} views x {args.repeats} passes, {args.threads} threads, "
          f"{tensors['means3D'].shape[0]} Gaussians, {width}x{height} (medians, ms)")
    print(f"{'build':>28} {'forward':>8} {'backward':>9} {'total':>8} {'vs first':>9} {'same':>5}")
    for k, build in enumerate(args.builds):
        fwd, bwd = statistics.median(forward[k]), statistics.median(backward[k])
        rows.append(dict(build=build, forward_ms=fwd, backward_ms=bwd, total_ms=fwd + bwd,
                         identical=difference[k] == 0.0, max_difference=difference[k]))
        ratio = rows[-1]["total_ms"] / rows[0]["total_ms"]
        same = "yes" if difference[k] == 0.0 else f"{difference[k]:.1e}"
        print(f"{build[-28:]:>28} {fwd:>8.1f} {bwd:>9.1f} {fwd + bwd:>8.1f} {ratio:>9.3f} {same:>5}")
    if args.json:
        write_result(args.json, "compare_builds", {"model": args.model, "views": len(views),
                                                   "repeats": args.repeats, "results": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
