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
from dataclasses import dataclass
from typing import Callable, Tuple

from utils.errors import DatasetError
from utils.system_utils import atomic_path
from .data import SplatData
from . import compressed_ply, ply, splat, spz


def _splat_content(head: bytes, path: str, size: int) -> bool:
    """.splat has no header: its name says so, and its size must be whole records."""
    if not os.fspath(path).lower().endswith(".splat"):
        return False
    if size == 0 or size % splat.RECORD_BYTES:
        raise DatasetError(path, f"not a .splat file: {size} bytes is not a positive multiple "
                                 f"of {splat.RECORD_BYTES}")
    return True


@dataclass(frozen=True)
class Codec:
    """One file format: its name (export.py's --format), file-name ending, whether its content
    is this format (first 4 KiB, path, size), reader, writer, whether it loses precision, and
    the formats a file with its ending may hold (a reader of .ply files reads compressed PLYs
    too). Adding a format is adding one record to CODECS."""
    name: str
    extension: str
    is_content: Callable[[bytes, str, int], bool]
    read: Callable[[str], SplatData]
    write: Callable[..., None]
    lossy: bool
    name_admits: Tuple[str, ...] = ()


# Sniffing order: a compressed PLY is a PLY with a particular header, so it is tried first.
CODECS = (
    Codec("compressed_ply", ".compressed.ply",
          lambda head, path, size: head.startswith(b"ply") and
          compressed_ply.is_compressed_header(head),
          compressed_ply.read, compressed_ply.write, lossy=True),
    Codec("ply", ".ply", lambda head, path, size: head.startswith(b"ply"), ply.read, ply.write,
          lossy=False, name_admits=("compressed_ply",)),
    Codec("spz", ".spz",
          lambda head, path, size: head.startswith(spz.GZIP_MAGIC) or
          head.startswith(spz.MAGIC_BYTES), spz.read, spz.write, lossy=True),
    Codec("splat", ".splat", _splat_content, splat.read, splat.write, lossy=True),
)
CODEC = {codec.name: codec for codec in CODECS}
# The formats in the order a model folder prefers them, the exact PLY first.
FORMATS = ("ply", "compressed_ply", "spz", "splat")
EXTENSIONS = {name: CODEC[name].extension for name in FORMATS}

__all__ = ["SplatData", "CODECS", "FORMATS", "EXTENSIONS", "read_splats", "write_splats",
           "format_from_name", "detect_format", "is_lossy", "name_admits"]


def format_from_name(path) -> str | None:
    """The format a file name promises, or None for an unknown ending (longest ending first:
    ".compressed.ply" before ".ply")."""
    name = os.fspath(path).lower()
    for codec in sorted(CODECS, key=lambda c: -len(c.extension)):
        if name.endswith(codec.extension):
            return codec.name
    return None


def name_admits(promised: str, found: str) -> bool:
    """Whether a file named as `promised` may hold `found` content."""
    return promised == found or found in CODEC[promised].name_admits


def is_lossy(fmt: str) -> bool:
    return CODEC[fmt].lossy


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
    for codec in CODECS:
        if codec.is_content(head, path, size):
            return codec.name
    raise DatasetError(path, "not a Gaussian splat file (none of "
                             f"{', '.join(c.name for c in CODECS)})")


def read_splats(path) -> SplatData:
    """Read any supported file. Its content decides the format; a content that contradicts the
    name (an .spz that is a PLY, say) is an error naming both."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DatasetError(path, "no such file")
    found = detect_format(path)
    promised = format_from_name(path)
    if promised is not None and not name_admits(promised, found):
        raise DatasetError(path, f"the name says {promised} but the content is {found}")
    return CODEC[found].read(path)


def write_splats(data: SplatData, path, fmt: str, **options) -> None:
    """Write `data` as `fmt` to `path` through a temporary file (an existing file is replaced
    only once the new one is complete). options: the format's own (spz: axes)."""
    if fmt not in CODEC:
        raise ValueError(f"unknown splat format {fmt!r} (one of {', '.join(FORMATS)})")
    with atomic_path(path) as tmp:
        CODEC[fmt].write(data, tmp, **options)
