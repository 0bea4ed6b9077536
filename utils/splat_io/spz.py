"""Niantic's SPZ, version 3 written, versions 2, 3 and 4 read (github.com/nianticlabs/spz).

A gzip stream of a 16-byte header — magic "NGSP" (0x5053474e), version, count (uint32 each),
SH degree, fractional bits, flags (bit 0: trained with antialiasing), a reserved byte — then the
attributes one block each, N rows per block:
- positions: 3 × signed 24-bit fixed point with `fractional bits` bits after the point (12
  unless the scene is too large for ±2048 units; we then use fewer);
- alphas: sigmoid(opacity)·255; colours: f_dc·(0.15·255) + 127.5 (8 bits a channel);
- scales: (log scale + 10)·16 (8 bits);
- rotations: version 3 "smallest three": uint32 with the index (in x-y-z-w order) of the largest
  component in the top 2 bits, made positive, and the other three as sign + 9-bit magnitude of
  v·√2 (version 2: x, y, z as v·127.5 + 127.5 with w ≥ 0);
- SH: per Gaussian, coefficient-major with the channel innermost, 8 bits of v·128 + 128, rounded
  to 5 significant bits for degree 1 and 4 for degrees 2-3 (the reference encoder's buckets).
Values are rounded to nearest and clamped to 0-255.

Axes: SPZ stores right-up-back (OpenGL) coordinates; COLMAP's (and the PLY's) are
right-down-forward, so we flip y and z on writing and back on reading, as Niantic's library does
with `from`/`to` = RDF. `axes="raw"` writes and reads without the flip (what PlayCanvas's
splat-transform does).
"""
import gzip
import struct
import zlib

import numpy as np
import zstandard

from utils.errors import DatasetError
from .data import SplatData, logit, sigmoid, to_uint8, unit_quaternions

MAGIC = 0x5053474E
MAGIC_BYTES = struct.pack("<I", MAGIC)
GZIP_MAGIC = b"\x1f\x8b"
VERSION = 3
HEADER = struct.Struct("<IIIBBBB")
COLOR_SCALE = 0.15
MAX_FRACTIONAL_BITS = 12
SH_BITS = (5, 4)  # significant bits kept: degree-1 coefficients, then degrees 2 and 3
AXES = ("rub", "raw")


def _fractional_bits(xyz: np.ndarray) -> int:
    """12, or fewer when the largest coordinate would not fit in 24 signed bits."""
    extent = float(np.abs(xyz).max()) if len(xyz) else 0.0
    bits = MAX_FRACTIONAL_BITS
    while bits > 0 and extent * (1 << bits) > (1 << 23) - 1:
        bits -= 1
    return bits


def _sh_to_bytes(rest: np.ndarray) -> np.ndarray:
    """[N, K, 3] → [N, K·3] uint8, coefficient-major with the channel innermost."""
    q = np.rint(rest.astype(np.float64) * 128.0) + 128.0
    bits = np.where(np.arange(rest.shape[1]) < 3, SH_BITS[0], SH_BITS[1])[None, :, None]
    bucket = 2.0 ** (8 - bits)
    q = np.floor((q + bucket / 2) / bucket) * bucket
    return np.clip(q, 0, 255).astype(np.uint8).reshape(len(rest), -1)


def _pack_smallest_three(rotation: np.ndarray) -> np.ndarray:
    q = unit_quaternions(rotation)[:, [1, 2, 3, 0]]  # SPZ's order: x, y, z, w
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    negate = q[rows, largest] < 0
    word = largest.astype(np.uint32)
    mask = (1 << 9) - 1
    for i in range(4):
        keep = largest != i
        sign = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        magnitude = np.floor(mask * (np.abs(q[:, i]) / np.sqrt(0.5)) + 0.5)
        magnitude = np.clip(magnitude, 0, mask).astype(np.uint32)
        word = np.where(keep, (word << np.uint32(10)) | (sign << np.uint32(9)) | magnitude, word)
    return word.astype("<u4")


def _unpack_smallest_three(word: np.ndarray) -> np.ndarray:
    word = word.astype(np.uint64)
    largest = (word >> 30).astype(np.int64)
    q = np.zeros((len(word), 4))
    mask = (1 << 9) - 1
    rest = word.copy()
    for i in (3, 2, 1, 0):  # the last component packed sits in the lowest bits
        keep = largest != i
        magnitude = (rest & mask).astype(np.float64)
        negative = ((rest >> 9) & 1).astype(bool)
        value = np.sqrt(0.5) * magnitude / mask
        q[:, i] = np.where(keep, np.where(negative, -value, value), 0.0)
        rest = np.where(keep, rest >> 10, rest)
    rows = np.arange(len(word))
    q[rows, largest] = np.sqrt(np.clip(1.0 - (q ** 2).sum(1), 0.0, None))
    return q[:, [3, 0, 1, 2]]  # back to w, x, y, z


def encode(data: SplatData, axes: str = "rub") -> bytes:
    """The uncompressed SPZ payload (header + blocks)."""
    if axes not in AXES:
        raise ValueError(f"axes must be one of {AXES}")
    if axes == "rub":
        data = data.flip_yz()
    n = len(data)
    bits = _fractional_bits(data.xyz)
    fixed = np.rint(data.xyz.astype(np.float64) * (1 << bits)).astype(np.int64)
    positions = (fixed & 0xFFFFFF).astype("<u4").view(np.uint8).reshape(n, 3, 4)[:, :, :3]
    alphas = to_uint8(sigmoid(data.opacity) * 255.0)
    colors = to_uint8(data.f_dc.astype(np.float64) * (COLOR_SCALE * 255.0) + 127.5)
    scales = to_uint8((data.scale.astype(np.float64) + 10.0) * 16.0)
    rotations = _pack_smallest_three(data.rotation).view(np.uint8)
    header = HEADER.pack(MAGIC, VERSION, n, data.sh_degree, bits, 0, 0)
    blocks = [positions, alphas, colors, scales, rotations, _sh_to_bytes(data.f_rest)]
    return header + b"".join(np.ascontiguousarray(b).tobytes() for b in blocks)


def _block_sizes(n: int, degree: int, version: int) -> list:
    """Bytes of each attribute block: positions, alphas, colours, scales, rotations, SH."""
    k = (degree + 1) ** 2 - 1
    return [9 * n, n, 3 * n, 3 * n, (3 if version == 2 else 4) * n, 3 * k * n]


def _check_header(path, magic, version, degree, versions) -> None:
    if magic != MAGIC:
        raise DatasetError(path, "not an SPZ file (no NGSP magic)")
    if version not in versions:
        raise DatasetError(path, f"SPZ version {version} is not supported (versions 2-4 are)")
    if degree > 3:
        raise DatasetError(path, f"SPZ SH degree {degree} is not supported (0-3)")


def decode(payload: bytes, path="<spz>", axes: str = "rub") -> SplatData:
    """Versions 2 and 3: the gunzipped payload (16-byte header, then the blocks in order)."""
    if len(payload) < HEADER.size:
        raise DatasetError(path, "not an SPZ file (shorter than its header)")
    magic, version, n, degree, bits, _flags, _ = HEADER.unpack_from(payload)
    _check_header(path, magic, version, degree, (2, 3))
    sizes = _block_sizes(n, degree, version)
    if len(payload) < HEADER.size + sum(sizes):
        raise DatasetError(path, f"SPZ data is truncated ({len(payload)} bytes; {n} Gaussians "
                                 f"need {HEADER.size + sum(sizes)})")
    blocks, offset = [], HEADER.size
    for size in sizes:
        blocks.append(np.frombuffer(payload, np.uint8, size, offset))
        offset += size
    return _from_blocks(blocks, n, degree, bits, version, axes)


# Version 4 (what splat-transform writes by default): a 32-byte header that is not compressed —
# magic, version, count (uint32), SH degree, fractional bits, flags, number of streams (uint8),
# the table of contents' offset (uint32), reserved — then at that offset one (compressed size,
# size) uint64 pair per stream, then the streams, each the block of versions 2-3 compressed
# with Zstandard on its own.
HEADER_V4 = struct.Struct("<IIIBBBBI")
HEADER_V4_BYTES = 32


def decode_v4(raw: bytes, path="<spz>", axes: str = "rub") -> SplatData:
    if len(raw) < HEADER_V4_BYTES:
        raise DatasetError(path, "not an SPZ file (shorter than its header)")
    magic, version, n, degree, bits, _flags, streams, toc = HEADER_V4.unpack_from(raw)
    _check_header(path, magic, version, degree, (4,))
    sizes = _block_sizes(n, degree, version)[:6 if degree else 5]
    if streams != len(sizes) or toc < HEADER_V4_BYTES or toc + 16 * streams > len(raw):
        raise DatasetError(path, f"SPZ version 4 table of contents is broken ({streams} "
                                 f"streams at byte {toc})")
    blocks, offset = [], toc + 16 * streams
    for i, expected in enumerate(sizes):
        packed, size = struct.unpack_from("<QQ", raw, toc + 16 * i)
        if size != expected or offset + packed > len(raw):
            raise DatasetError(path, f"SPZ version 4 stream {i} is truncated or the wrong size")
        try:
            block = zstandard.ZstdDecompressor().decompress(raw[offset:offset + packed],
                                                            max_output_size=size)
        except zstandard.ZstdError as exc:
            raise DatasetError(path, f"SPZ version 4 stream {i}: {exc}") from None
        if len(block) != size:
            raise DatasetError(path, f"SPZ version 4 stream {i} is truncated")
        blocks.append(np.frombuffer(block, np.uint8))
        offset += packed
    if not degree:
        blocks.append(np.zeros(0, np.uint8))
    return _from_blocks(blocks, n, degree, bits, version, axes)


def _from_blocks(blocks, n: int, degree: int, bits: int, version: int, axes: str) -> SplatData:
    k = (degree + 1) ** 2 - 1
    positions, alphas, colors, scales, rotations, sh = blocks
    raw = positions.reshape(n, 3, 3).astype(np.int64)
    fixed = raw[:, :, 0] | (raw[:, :, 1] << 8) | (raw[:, :, 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    if version == 2:
        xyz_part = rotations.reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.clip(1.0 - (xyz_part ** 2).sum(1), 0.0, None))
        rotation = np.concatenate([w[:, None], xyz_part], axis=1)
    else:
        rotation = _unpack_smallest_three(rotations.view("<u4"))
    data = SplatData(
        xyz=fixed / float(1 << bits),
        f_dc=(colors.reshape(n, 3) / 255.0 - 0.5) / COLOR_SCALE,
        f_rest=(sh.reshape(n, k, 3).astype(np.float64) - 128.0) / 128.0,
        opacity=logit(alphas / 255.0),
        scale=scales.reshape(n, 3) / 16.0 - 10.0,
        rotation=rotation)
    return data.flip_yz() if axes == "rub" else data


def write(data: SplatData, path, axes: str = "rub") -> None:
    # mtime=0: the same model gives the same bytes.
    with open(path, "wb") as f:
        f.write(gzip.compress(encode(data, axes), compresslevel=9, mtime=0))


def read(path, axes: str = "rub") -> SplatData:
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(MAGIC_BYTES):  # version 4: an uncompressed header
        return decode_v4(raw, path, axes)
    try:
        payload = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(path, f"not an SPZ file (gzip: {exc})") from None
    return decode(payload, path, axes)
