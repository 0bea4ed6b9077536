"""Files: atomic writes (temporary name, then rename); a free port for test servers."""
import contextlib
import os
import socket
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on any error
    (or Ctrl-C) it is removed, so `path` is never half-written."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the mode a plain open() would (models and
    # exports are shared, served by web servers).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for test and benchmark servers)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def file_record(paths, root: str) -> dict:
    """{path relative to root: {"bytes": size, "modified_ns": mtime}} of each existing file."""
    record = {}
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            continue
        record[os.path.relpath(path, root)] = {"bytes": stat.st_size,
                                               "modified_ns": stat.st_mtime_ns}
    return dict(sorted(record.items()))


# glibc's malloc returns blocks above a threshold (adaptive, at most 32 MB) to the system when
# they are freed, and trims the top of its heap above another; a training step frees and
# allocates the same per-Gaussian tensors every time (gradients, the rasterizer's state), so with
# hundreds of thousands of Gaussians each step page-faulted its largest tensors in afresh.
# Keeping freed blocks for reuse made a 300k-Gaussian step about 9 % faster
# (benchmarks/step_cost.py, alternating runs) for the same peak memory within 0.04 KiB per
# Gaussian (benchmarks/memory.py). Arithmetic is untouched, so results are the same bit for bit.
MMAP_THRESHOLD_BYTES = 1 << 30
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory_for_reuse() -> bool:
    """Ask glibc's malloc (Linux) to keep freed blocks for the next step instead of giving them
    back; False where there is no such allocator (other C libraries, other systems)."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and \
        bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
