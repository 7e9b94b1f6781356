"""Writing files so that nothing is ever left half-written.

:func:`atomic_write` is the one place the project writes a file that a reader may already
rely on (checkpoints, logs, shipped weights and their manifest, ``pconv inpaint`` outputs):
the data goes to a temporary file beside the target, is flushed to disk, and only then
replaces the target with ``os.replace``. A reader sees the old file or the new one, never a
partial one; on any error (a full disk, Ctrl-C) the temporary file is removed and the old
file is untouched. Temporary files are named ``.<name>.<random>.tmp``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def _umask() -> int:
    """The process's umask (read from /proc on Linux, where setting it to read it would race
    with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", newline: str | None = None):
    """Context manager yielding an open temporary file that replaces ``path`` on success.

    Args:
        path: the target file (its folder is created if missing).
        mode: ``"wb"`` (binary) or ``"w"`` (text).
        newline: passed to ``open`` in text mode (``""`` for the csv module).
    The file keeps the permissions of the one it replaces; a new file gets those of a plain
    ``open`` (0666 less the umask: 0644 under the usual umask 022), not the 0600 of a
    temporary file. A symbolic link ``path`` stays a link: the file it points to is the one
    replaced. The folder entry is fsync'ed on POSIX.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        perm = path.stat().st_mode & 0o777
    except OSError:
        perm = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, newline=newline if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, perm)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if os.name == "posix":
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
