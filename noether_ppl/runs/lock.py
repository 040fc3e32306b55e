"""One writer per folder: a lock file that names the process holding it.

:func:`folder_lock` holds an exclusive ``flock`` on ``FOLDER/.noether-ppl.lock`` (the file
holds the holder's PID) while a fit, a resume, an analysis or ``discover`` writes into a run or
experiment folder. A second process asking for the same folder is refused at once with a
:class:`FolderLockedError` that names the holder's PID. The operating system releases the lock
when the holder exits, however it exits (a killed run leaves no stale lock); the file is
removed when the holder is done. Within one process the lock is re-entrant (an experiment holds
its variant's folder while :func:`~noether_ppl.runs.fit_in_folder` takes it again).
"""

from __future__ import annotations

import contextlib
import os
import threading

try:
    import fcntl
except ImportError:  # Windows: an exclusively created file stands in for the lock
    fcntl = None

__all__ = ["folder_lock", "FolderLockedError", "LOCK_FILE"]

LOCK_FILE = ".noether-ppl.lock"

_held: dict[str, list] = {}  # real path of the folder -> [file descriptor, depth]
_guard = threading.Lock()


class FolderLockedError(ValueError):
    """Another process is writing the folder; ``pid`` is its process id (None if unknown)."""

    def __init__(self, folder: str, pid: int | None):
        self.folder = folder
        self.pid = pid
        holder = f"PID {pid}" if pid is not None else "a process whose PID it does not name"
        super().__init__(
            f"{folder!r} is being written by another process ({holder}, lock file "
            f"{os.path.join(folder, LOCK_FILE)!r}); wait for it to finish or stop it, then try "
            f"again.")


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def _acquire(folder: str, path: str) -> int:
    if fcntl is None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_RDONLY)
            try:
                raise FolderLockedError(folder, _read_pid(fd)) from None
            finally:
                os.close(fd)
        return fd
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise FolderLockedError(folder, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have removed the file after we opened it
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextlib.contextmanager
def folder_lock(folder):
    """Hold the write lock of ``folder`` (which must exist) for the ``with`` block; raises
    :class:`FolderLockedError` (a ``ValueError``) when another process holds it."""
    folder = os.fspath(folder)
    key = os.path.realpath(folder)
    path = os.path.join(folder, LOCK_FILE)
    with _guard:
        entry = _held.get(key)
        if entry is not None:
            entry[1] += 1
        else:
            fd = _acquire(folder, path)
            try:
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except BaseException:
                os.close(fd)
                raise
            entry = _held[key] = [fd, 1]
    try:
        yield
    finally:
        with _guard:
            entry[1] -= 1
            if entry[1] == 0:
                del _held[key]
                with contextlib.suppress(OSError):
                    os.remove(path)
                os.close(entry[0])  # releases the flock
