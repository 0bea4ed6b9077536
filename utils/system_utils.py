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
