"""Score rendered test views against ground truth, as the original's metrics.py:

    python metrics.py -m output/garden [output/other ...]

For each model folder and each method folder <m>/test/<method>/ (ours_<N>) it computes per image
SSIM (11x11 Gaussian window), PSNR (per image) and LPIPS-VGG (inputs in [0, 1], as the
original; see utils/lpips.py), prints the means and writes <m>/results.json and
<m>/per_view.json keyed by method.

A view with a mask in <method>/masks/ (render.py writes them for models trained with --masks or
--alpha_as_mask) is scored on the pixels its mask keeps: PSNR over those pixels (weighted by the
mask's grey level), SSIM as the mask-weighted mean of the SSIM map, LPIPS on the render with the
masked-out pixels taken from the ground truth.
"""
import json
import os

import torch
from tqdm import tqdm

from arguments import make_parser
from utils.errors import DatasetError
from utils.model_folder import ModelFolder
from utils.cli import run_main
from utils.image_io import read_image
from utils.image_utils import masked_psnr, psnr
from utils.loss_utils import ssim, ssim_map
from utils.lpips import lpips
from utils.system_utils import write_text_atomic


def read_pairs(method_dir):
    renders_dir, gt_dir = os.path.join(method_dir, "renders"), os.path.join(method_dir, "gt")
    if not os.path.isdir(renders_dir):
        raise DatasetError(renders_dir, "missing (run render.py first)")
    names = sorted(os.listdir(renders_dir))
    if not names:
        raise DatasetError(renders_dir, "no rendered images")
    for name in names:
        gt_path = os.path.join(gt_dir, name)
        if not os.path.exists(gt_path):
            raise DatasetError(gt_path, "ground truth for this render is missing")
        render, gt = read_image(os.path.join(renders_dir, name)), read_image(gt_path)
        if render.shape != gt.shape:
            raise DatasetError(gt_path, f"size {tuple(gt.shape[1:])} differs from the render's "
                                        f"{tuple(render.shape[1:])}")
        mask_path = os.path.join(method_dir, "masks", name)
        weight = read_image(mask_path)[:1] if os.path.exists(mask_path) else None
        if weight is not None and weight.shape[1:] != gt.shape[1:]:
            raise DatasetError(mask_path, f"size {tuple(weight.shape[1:])} differs from the "
                                          f"render's {tuple(render.shape[1:])}")
        yield name, render, gt, weight


@torch.no_grad()
def score_method(method_dir, quiet=False):
    per_view = {"SSIM": {}, "PSNR": {}, "LPIPS": {}}
    masked = 0
    for name, render, gt, weight in tqdm(list(read_pairs(method_dir)),
                                         desc="Metric evaluation progress", disable=quiet):
        if weight is None:
            per_view["SSIM"][name] = ssim(render, gt).item()
            per_view["PSNR"][name] = psnr(render, gt).item()
        else:
            masked += 1
            render = render * weight + gt * (1.0 - weight)  # masked-out pixels: no error
            per_view["SSIM"][name] = ((ssim_map(render, gt).mean(dim=1)[0] * weight[0]).sum()
                                      / weight.sum()).item()
            per_view["PSNR"][name] = masked_psnr(render, gt, weight).item()
        per_view["LPIPS"][name] = lpips(render, gt, net_type="vgg").item()
    if masked:
        print(f"  {masked} of {len(per_view['PSNR'])} views scored on their masks' pixels only")
    means = {key: sum(values.values()) / len(values) for key, values in per_view.items()}
    return means, per_view


def evaluate(model_paths, quiet=False):
    all_results = {}
    for model_path in model_paths:
        print("Scene:", model_path)
        folder = ModelFolder(model_path)
        test_dir = folder.file("test")
        if not os.path.isdir(test_dir):
            raise DatasetError(test_dir, "missing: train with --eval and run render.py first")
        results, per_view = {}, {}
        for method in sorted(os.listdir(test_dir)):
            print("Method:", method)
            results[method], per_view[method] = score_method(os.path.join(test_dir, method),
                                                             quiet)
            for key in ("SSIM", "PSNR", "LPIPS"):
                print(f"  {key:>5} : {results[method][key]:>12.7f}")
            print("")
        write_text_atomic(folder.file("results.json"), json.dumps(results, indent=True))
        write_text_atomic(folder.file("per_view.json"), json.dumps(per_view, indent=True))
        all_results[model_path] = results
    return all_results


def main(argv=None) -> int:
    parser = make_parser("Score rendered test views (PSNR, SSIM, LPIPS)")
    parser.add_argument("--model_paths", "-m", required=True, nargs="+", type=str, default=[],
                        help="trained model folders whose test/ours_<N> renders are scored")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    evaluate(args.model_paths, args.quiet)
    return 0


if __name__ == "__main__":
    run_main(main)
