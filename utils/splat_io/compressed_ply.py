"""PlayCanvas's compressed PLY (SuperSplat, splat-transform, gsplat's `compressed_ply` export).

Layout (as PlayCanvas's engine and splat-transform read it): Gaussians in chunks of 256, in
Morton order so that each chunk is compact in space.
- element `chunk` (one row per 256 Gaussians), 18 floats: min_x min_y min_z max_x max_y max_z,
  min_scale_x/y/z max_scale_x/y/z (log scales, clamped to ±20), min_r min_g min_b max_r max_g
  max_b (DC colours 0.5 + C0·f_dc). Older files have only the first 12 (colours then span 0-1).
- element `vertex`, 4 uint32: packed_position and packed_scale (11, 10, 11 bits: x in the top
  bits, each the value's place between its chunk's min and max), packed_rotation (2 bits: which
  of w x y z is largest in magnitude, made positive; then the other three in w-x-y-z order, 10
  bits each, as v/√2 + 0.5), packed_color (r, g, b in the chunk's colour range and
  alpha = sigmoid(opacity), 8 bits each, r in the top byte).
- element `sh` (SH degree > 0), uchar f_rest_* in the PLY's channel-major order: ⌊(v/8 + 0.5)·256⌋
  clamped to 0-255 (read back as 0 → −4, 255 → +4, else (b + 0.5)/256 mapped back).
"""
import numpy as np
from plyfile import PlyData, PlyElement

from utils.errors import DatasetError
from utils.sh_utils import C0
from .data import SplatData, logit, sigmoid, unit_quaternions

CHUNK = 256
CHUNK_PROPERTIES = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                    "min_scale_x", "min_scale_y", "min_scale_z",
                    "max_scale_x", "max_scale_y", "max_scale_z",
                    "min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
VERTEX_PROPERTIES = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
SCALE_LIMIT = 20.0  # log-scale bounds are clamped to ±20 (trained scales can run off to -inf)
SH_RANGE = 8.0      # SH bytes cover [-4, 4)
ROTATION_RANGE = np.sqrt(0.5)  # the three smaller quaternion components lie in ±1/√2


def is_compressed_header(head: bytes) -> bool:
    header = head.split(b"end_header", 1)[0]
    return b"element chunk" in header and b"packed_position" in header


def morton_order(xyz: np.ndarray) -> np.ndarray:
    """Indices sorting points along a Z-order curve over their bounding box (10 bits an axis)."""
    lo, hi = xyz.min(0), xyz.max(0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    cells = np.clip(((xyz - lo) / span * 1023).astype(np.int64), 0, 1023)

    def spread(v):  # 10 bits → every third bit of 30
        v = (v | (v << 16)) & 0x030000FF
        v = (v | (v << 8)) & 0x0300F00F
        v = (v | (v << 4)) & 0x030C30C3
        return (v | (v << 2)) & 0x09249249

    code = (spread(cells[:, 0]) << 2) | (spread(cells[:, 1]) << 1) | spread(cells[:, 2])
    return np.argsort(code, kind="stable")


def _chunk_bounds(values: np.ndarray, n_chunks: int):
    """Per-chunk min and max of [N, C] values (the last chunk may be short)."""
    n = len(values)
    padded = np.concatenate([values, np.repeat(values[-1:], n_chunks * CHUNK - n, axis=0)])
    blocks = padded.reshape(n_chunks, CHUNK, -1)
    return blocks.min(1), blocks.max(1)


def _unit_place(values, lo, hi, chunk_of):
    """Each value's place in its chunk's [lo, hi] (0 where the range is empty)."""
    lo, hi = lo[chunk_of], hi[chunk_of]
    span = hi - lo
    t = np.where(span < 1e-5, 0.0, (values - lo) / np.where(span < 1e-5, 1.0, span))
    return np.clip(t, 0.0, 1.0)


def _pack_unorm(t: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def _unpack_unorm(word: np.ndarray, shift: int, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return ((word >> np.uint32(shift)) & np.uint32(top)).astype(np.float64) / top


def _pack_11_10_11(t: np.ndarray) -> np.ndarray:
    return (_pack_unorm(t[:, 0], 11) << 21) | (_pack_unorm(t[:, 1], 10) << 11) | \
        _pack_unorm(t[:, 2], 11)


def _unpack_11_10_11(word: np.ndarray) -> np.ndarray:
    return np.stack([_unpack_unorm(word, 21, 11), _unpack_unorm(word, 11, 10),
                     _unpack_unorm(word, 0, 11)], 1)


def _other_components(largest: np.ndarray) -> np.ndarray:
    """[N, 3]: the quaternion indices other than `largest`, ascending (w-x-y-z order)."""
    return np.sort(np.stack([(largest + k) % 4 for k in (1, 2, 3)], 1), axis=1)


def pack_rotations(rotation: np.ndarray) -> np.ndarray:
    q = unit_quaternions(rotation)
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None]  # q and -q: the same rotation
    word = largest.astype(np.uint32)
    for index in _other_components(largest).T:
        word = (word << np.uint32(10)) | _pack_unorm(q[rows, index] / (2 * ROTATION_RANGE) + 0.5,
                                                     10)
    return word


def unpack_rotations(word: np.ndarray) -> np.ndarray:
    largest = (word >> np.uint32(30)).astype(np.int64)
    small = np.stack([(_unpack_unorm(word, shift, 10) - 0.5) * 2 * ROTATION_RANGE
                      for shift in (20, 10, 0)], 1)
    rows = np.arange(len(word))
    q = np.zeros((len(word), 4))
    for i, index in enumerate(_other_components(largest).T):
        q[rows, index] = small[:, i]
    q[rows, largest] = np.sqrt(np.clip(1.0 - (small ** 2).sum(1), 0.0, None))
    return q


def write(data: SplatData, path) -> None:
    if len(data) == 0:
        raise ValueError("a compressed PLY needs at least one Gaussian")
    data = data.take(morton_order(data.xyz))
    n = len(data)
    n_chunks = -(-n // CHUNK)
    chunk_of = np.arange(n) // CHUNK
    colour = data.f_dc.astype(np.float64) * C0 + 0.5
    log_scale = data.scale.astype(np.float64)

    pos_lo, pos_hi = _chunk_bounds(data.xyz.astype(np.float64), n_chunks)
    scale_lo, scale_hi = (np.clip(b, -SCALE_LIMIT, SCALE_LIMIT)
                          for b in _chunk_bounds(log_scale, n_chunks))
    colour_lo, colour_hi = _chunk_bounds(colour, n_chunks)

    vertex = np.empty(n, dtype=[(name, "<u4") for name in VERTEX_PROPERTIES])
    vertex["packed_position"] = _pack_11_10_11(_unit_place(data.xyz, pos_lo, pos_hi, chunk_of))
    vertex["packed_scale"] = _pack_11_10_11(_unit_place(log_scale, scale_lo, scale_hi, chunk_of))
    vertex["packed_rotation"] = pack_rotations(data.rotation)
    rgb = _unit_place(colour, colour_lo, colour_hi, chunk_of)
    vertex["packed_color"] = ((_pack_unorm(rgb[:, 0], 8) << 24) | (_pack_unorm(rgb[:, 1], 8) << 16)
                              | (_pack_unorm(rgb[:, 2], 8) << 8)
                              | _pack_unorm(sigmoid(data.opacity), 8))

    bounds = np.concatenate([pos_lo, pos_hi, scale_lo, scale_hi, colour_lo, colour_hi], axis=1)
    chunk = np.ascontiguousarray(bounds, dtype=np.float32).view(
        [(name, "<f4") for name in CHUNK_PROPERTIES])[:, 0]
    elements = [PlyElement.describe(chunk, "chunk"), PlyElement.describe(vertex, "vertex")]
    k = data.f_rest.shape[1]
    if k:
        rest = data.f_rest.transpose(0, 2, 1).reshape(n, 3 * k).astype(np.float64)
        sh = np.clip(np.trunc((rest / SH_RANGE + 0.5) * 256), 0, 255).astype(np.uint8)
        elements.append(PlyElement.describe(
            sh.view([(f"f_rest_{i}", "u1") for i in range(3 * k)])[:, 0], "sh"))
    PlyData(elements, comments=["Generated by 3dgs-cpu export.py"]).write(path)


def read(path) -> SplatData:
    try:
        ply = PlyData.read(path)
        chunk, vertex = ply["chunk"].data, ply["vertex"].data
        words = {name: np.asarray(vertex[name], dtype=np.uint32) for name in VERTEX_PROPERTIES}
        bound = lambda name: np.asarray(chunk[name], dtype=np.float64)  # noqa: E731
        pos_lo = np.stack([bound(f"min_{a}") for a in "xyz"], 1)
        pos_hi = np.stack([bound(f"max_{a}") for a in "xyz"], 1)
        scale_lo = np.stack([bound(f"min_scale_{a}") for a in "xyz"], 1)
        scale_hi = np.stack([bound(f"max_scale_{a}") for a in "xyz"], 1)
        names = chunk.dtype.names
        has_colour_range = "min_r" in names
        if has_colour_range:
            colour_lo = np.stack([bound(f"min_{c}") for c in "rgb"], 1)
            colour_hi = np.stack([bound(f"max_{c}") for c in "rgb"], 1)
        sh_names = []
        if "sh" in ply:
            sh_data = ply["sh"].data
            sh_names = sorted((n for n in sh_data.dtype.names if n.startswith("f_rest_")),
                              key=lambda n: int(n.split("_")[-1]))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DatasetError(path, f"not a compressed PLY ({exc})") from None
    n = len(vertex)
    if len(chunk) != -(-n // CHUNK):
        raise DatasetError(path, f"not a compressed PLY: {len(chunk)} chunks for {n} Gaussians "
                                 f"(expected {-(-n // CHUNK)})")
    if len(sh_names) not in (0, 9, 24, 45):
        raise DatasetError(path, f"has {len(sh_names)} SH bytes per Gaussian, which is no SH "
                                 f"degree 0-3")
    c = np.arange(n) // CHUNK
    lerp = lambda lo, hi, t: lo[c] * (1 - t) + hi[c] * t  # noqa: E731
    xyz = lerp(pos_lo, pos_hi, _unpack_11_10_11(words["packed_position"]))
    scale = lerp(scale_lo, scale_hi, _unpack_11_10_11(words["packed_scale"]))
    colour_word = words["packed_color"]
    rgb = np.stack([_unpack_unorm(colour_word, s, 8) for s in (24, 16, 8)], 1)
    if has_colour_range:
        rgb = lerp(colour_lo, colour_hi, rgb)
    alpha = _unpack_unorm(colour_word, 0, 8)
    rest = np.zeros((n, 0, 3))
    if sh_names:
        b = np.stack([np.asarray(sh_data[name], dtype=np.float64) for name in sh_names], 1)
        t = np.where(b == 0, 0.0, np.where(b == 255, 1.0, (b + 0.5) / 256))
        rest = ((t - 0.5) * SH_RANGE).reshape(n, 3, -1).transpose(0, 2, 1)
    return SplatData(xyz=xyz, f_dc=(rgb - 0.5) / C0, f_rest=rest, opacity=logit(alpha),
                     scale=scale, rotation=unpack_rotations(words["packed_rotation"]))
