"""Export a trained model to the compact formats web viewers load:

    python export.py -m output/garden --format spz              # latest iteration
    python export.py -m output/garden --iteration 7000 --format compressed_ply -o garden.ply
    python export.py path/to/point_cloud.ply --format splat --prune_opacity 0.005

Formats (utils/splat_io says exactly how each is encoded): `spz` (Niantic's SPZ v3, all SH
bands, right-up-back axes as its specification says), `compressed_ply` (PlayCanvas's chunked PLY,
all SH bands), `splat` (antimatter15's 32 bytes a Gaussian, no SH), `ply` (the full PLY, e.g.
after --prune_opacity). Without -o the file goes beside the source PLY:
point_cloud.spz, point_cloud.compressed.ply, point_cloud.splat. An existing output is replaced
only once the new file is complete.
"""
import os

from arguments import make_parser
from utils.cli import run_main
from utils.errors import DatasetError, UsageError
from utils.model_folder import ModelFolder
from utils.splat_io import (EXTENSIONS, FORMATS, format_from_name, name_admits, read_splats,
                            write_splats)
from utils.splat_io.data import sigmoid
from utils.splat_io.spz import AXES


def source_file(args) -> str:
    """The PLY to export: the positional path, or the model's saved iteration."""
    if args.input and args.model_path:
        raise UsageError("give either -m <model folder> or a file, not both")
    if args.input:
        return args.input
    if not args.model_path:
        raise UsageError("give -m <model folder> or a .ply path")
    folder = ModelFolder(args.model_path)
    path = folder.ply_path(folder.resolve_iteration(args.iteration))
    if not os.path.isfile(path):
        raise DatasetError(path, "no such file (see the iteration_N folders beside it)")
    return path


def output_file(source: str, fmt: str, output: str | None) -> str:
    if output:
        named = format_from_name(output)
        if named is not None and not name_admits(named, fmt):
            raise UsageError(f"-o {output}: the name says {named} but --format is {fmt}")
        return output
    base = os.path.basename(source)
    known = format_from_name(base)
    stem = base[:-len(EXTENSIONS[known])] if known else os.path.splitext(base)[0]
    path = os.path.join(os.path.dirname(source), stem + EXTENSIONS[fmt])
    if os.path.abspath(path) == os.path.abspath(source):
        raise UsageError(f"the output would replace the source {source}; give -o")
    return path


def main(argv=None) -> int:
    parser = make_parser("Export a trained model to .spz, .splat or compressed PLY (or a pruned "
                         "PLY)")
    parser.add_argument("input", nargs="?", default=None,
                        help="a model file (PLY or any format below) instead of -m")
    parser.add_argument("-m", "--model_path", default="",
                        help="a trained model folder (its latest or --iteration's PLY)")
    parser.add_argument("--iteration", type=int, default=-1, help="default: the latest")
    parser.add_argument("--format", required=True, choices=FORMATS, help="the output format")
    parser.add_argument("-o", "--output", default=None, help="default: beside the source")
    parser.add_argument("--prune_opacity", type=float, default=0.0,
                        help="drop Gaussians whose opacity (after the sigmoid) is below this")
    parser.add_argument("--spz_axes", default="rub", choices=AXES,
                        help="rub: the SPZ specification's axes (y and z flipped from "
                             "COLMAP's); raw: as the PLY, as PlayCanvas's tools write SPZ")
    args = parser.parse_args(argv)
    if not 0.0 <= args.prune_opacity < 1.0:
        raise UsageError(f"--prune_opacity {args.prune_opacity}: must be in [0, 1)")

    source = source_file(args)
    data = read_splats(source)
    total = len(data)
    if args.prune_opacity > 0:
        data = data.take(sigmoid(data.opacity) >= args.prune_opacity)
    if len(data) == 0:
        raise UsageError(f"--prune_opacity {args.prune_opacity} leaves no Gaussians "
                         f"(of {total:,})")
    output = output_file(source, args.format, args.output)
    options = {"axes": args.spz_axes} if args.format == "spz" else {}
    write_splats(data, output, args.format, **options)

    size = os.path.getsize(output)
    source_size = os.path.getsize(source)
    pruned = f" ({total - len(data):,} below opacity {args.prune_opacity} dropped)" \
        if args.prune_opacity > 0 else ""
    print(f"Wrote {output}: {args.format}, {len(data):,} Gaussians{pruned}, SH degree "
          f"{0 if args.format == 'splat' else data.sh_degree}, {size / 1e6:.2f} MB, "
          f"{size / len(data):.1f} bytes per Gaussian ({source_size / size:.1f}x smaller than "
          f"{os.path.basename(source)})")
    return 0


if __name__ == "__main__":
    run_main(main)
