"""The original's point_cloud.ply: binary little-endian, one float32 property per parameter
(x y z, nx ny nz (zeros), f_dc_0-2, f_rest_* channel-major, opacity, scale_0-2, rot_0-3)."""
import numpy as np
from plyfile import PlyData

from utils.errors import DatasetError
from .data import SplatData


def attribute_names(rest_per_channel: int) -> list[str]:
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * rest_per_channel)]
    names.append("opacity")
    names += [f"scale_{i}" for i in range(3)]
    names += [f"rot_{i}" for i in range(4)]
    return names


ROWS_PER_CHUNK = 1 << 16  # rows converted and written at a time: a bounded extra copy


def header(count: int, names) -> bytes:
    """The header plyfile writes for one `vertex` element of float properties."""
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {count}",
             *(f"property float {name}" for name in names), "end_header"]
    return ("\n".join(lines) + "\n").encode("ascii")


def write(data: SplatData, path) -> None:
    """The same bytes plyfile writes for the [N, C] float32 block, streamed ROWS_PER_CHUNK rows
    at a time, so a save never holds a second copy of every Gaussian (400 MB at 1M)."""
    n, k = len(data), data.f_rest.shape[1]
    with open(path, "wb") as f:
        f.write(header(n, attribute_names(k)))
        for lo in range(0, n, ROWS_PER_CHUNK):
            rows = slice(lo, min(n, lo + ROWS_PER_CHUNK))
            m = rows.stop - lo
            block = np.concatenate([
                data.xyz[rows], np.zeros((m, 3), np.float32), data.f_dc[rows],
                data.f_rest[rows].transpose(0, 2, 1).reshape(m, 3 * k),  # channel-major
                data.opacity[rows, None], data.scale[rows], data.rotation[rows]], axis=1)
            f.write(np.ascontiguousarray(block, dtype="<f4").tobytes())


def read(path) -> SplatData:
    try:
        vertex = PlyData.read(path)["vertex"]
        names = vertex.data.dtype.names
        column = lambda name: np.asarray(vertex[name], dtype=np.float32)  # noqa: E731
        numbered = lambda prefix: sorted(  # noqa: E731
            (n for n in names if n.startswith(prefix)), key=lambda n: int(n.split("_")[-1]))
        xyz = np.stack([column("x"), column("y"), column("z")], 1)
        opacity = column("opacity")
        dc = np.stack([column(f"f_dc_{i}") for i in range(3)], 1)
        rest_names = numbered("f_rest_")
        scales = np.stack([column(n) for n in numbered("scale_")], 1)
        rots = np.stack([column(n) for n in numbered("rot")], 1)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DatasetError(path, f"not a 3DGS point_cloud.ply ({exc})") from None
    if len(rest_names) not in (0, 9, 24, 45):
        raise DatasetError(path, f"has {len(rest_names)} f_rest properties, which is no SH "
                                 f"degree 0-3")
    if scales.shape[1] != 3 or rots.shape[1] != 4:
        raise DatasetError(path, f"not a 3DGS point_cloud.ply ({scales.shape[1]} scale_ and "
                                 f"{rots.shape[1]} rot_ properties; 3 and 4 expected)")
    rest = (np.stack([column(n) for n in rest_names], 1).reshape(len(xyz), 3, -1)
            if rest_names else np.zeros((len(xyz), 3, 0), np.float32))
    return SplatData(xyz=xyz, f_dc=dc, f_rest=rest.transpose(0, 2, 1), opacity=opacity,
                     scale=scales, rotation=rots)
