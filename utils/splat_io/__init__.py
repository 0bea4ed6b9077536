"""Gaussian splat files: the standard 3DGS PLY and the compact formats web viewers load.

    data = read_splats("point_cloud.spz")          # any supported file, format from its content
    write_splats(data, "model.splat", "splat")     # atomic: temporary name, then rename

`SplatData` holds the raw (trained) parameters as numpy arrays, the same quantities and layout
as `GaussianModel` and the PLY: log scales, opacity logits, unnormalised w-x-y-z quaternions, SH
DC and rest coefficients per channel. Every codec reads and writes this one structure; the model
converts to and from it (scene/gaussian_model.py).

Formats (each module says where its definition comes from):
- `ply`: the original's PLY, float32, exact.
- `compressed_ply`: PlayCanvas's chunked, quantised PLY (11/10/11-bit positions and scales per
  256-Gaussian chunk, 2+10+10+10-bit rotations, 8-bit colour and SH).
- `spz`: Niantic's SPZ version 3 (gzip; 24-bit fixed-point positions, 8-bit everything else,
  smallest-three rotations), stored in its RUB axes.
- `splat`: antimatter15's 32-byte records (float positions and scales, 8-bit RGBA and rotation,
  no SH), sorted by size × opacity.
"""
import os

from utils.errors import DatasetError
from utils.system_utils import atomic_path
from .data import SplatData
from . import compressed_ply, ply, splat, spz

FORMATS = ("ply", "compressed_ply", "spz", "splat")
# File name endings, longest first (".compressed.ply" before ".ply").
EXTENSIONS = {"compressed_ply": ".compressed.ply", "ply": ".ply", "spz": ".spz",
              "splat": ".splat"}
_WRITERS = {"ply": ply.write, "compressed_ply": compressed_ply.write, "spz": spz.write,
            "splat": splat.write}
_READERS = {"ply": ply.read, "compressed_ply": compressed_ply.read, "spz": spz.read,
            "splat": splat.read}

__all__ = ["SplatData", "FORMATS", "EXTENSIONS", "read_splats", "write_splats",
           "format_from_name", "detect_format", "saved_point_cloud"]


def saved_point_cloud(folder) -> str:
    """The model file in an iteration folder: point_cloud.ply, or else an exported
    point_cloud.compressed.ply / .spz / .splat (so render.py and view.py work on a folder whose
    PLY was replaced by a web format). The PLY's path when none exists (the error names it)."""
    candidates = [os.path.join(folder, "point_cloud" + EXTENSIONS[fmt])
                  for fmt in ("ply", "compressed_ply", "spz", "splat")]
    return next((path for path in candidates if os.path.isfile(path)), candidates[0])


def format_from_name(path) -> str | None:
    """The format a file name promises, or None for an unknown ending."""
    name = os.fspath(path).lower()
    for fmt, ending in EXTENSIONS.items():
        if name.endswith(ending):
            return fmt
    return None


def detect_format(path) -> str:
    """The format of an existing file, from its first bytes (the name only breaks the tie for
    .splat, which has no header)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        size = os.path.getsize(path)
    except OSError as exc:
        raise DatasetError(path, f"cannot be read ({exc.strerror or exc})") from None
    if head.startswith(b"ply"):
        return "compressed_ply" if compressed_ply.is_compressed_header(head) else "ply"
    if head.startswith(spz.GZIP_MAGIC) or head.startswith(spz.MAGIC_BYTES):
        return "spz"
    if format_from_name(path) == "splat":
        if size == 0 or size % splat.RECORD_BYTES:
            raise DatasetError(path, f"not a .splat file: {size} bytes is not a positive "
                                     f"multiple of {splat.RECORD_BYTES}")
        return "splat"
    raise DatasetError(path, "not a Gaussian splat file (none of PLY, compressed PLY, SPZ, "
                             ".splat)")


def read_splats(path) -> SplatData:
    """Read any supported file. Its content decides the format; a content that contradicts the
    name (an .spz that is a PLY, say) is an error naming both."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(path, "no such file")
    found = detect_format(path)
    promised = format_from_name(path)
    # A compressed PLY is a PLY: a reader of ".ply" files reads both.
    if promised is not None and promised != found and not (
            promised == "ply" and found == "compressed_ply"):
        raise DatasetError(path, f"the name says {promised} but the content is {found}")
    return _READERS[found](path)


def write_splats(data: SplatData, path, fmt: str, **options) -> None:
    """Write `data` as `fmt` to `path` through a temporary file (an existing file is replaced
    only once the new one is complete). options: the format's own (spz: axes)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown splat format {fmt!r} (one of {', '.join(FORMATS)})")
    with atomic_path(path) as tmp:
        _WRITERS[fmt](data, tmp, **options)
