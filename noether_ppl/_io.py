"""Files and folders: atomic writes (a temporary file in the target folder, then
``os.replace``), checks of output paths before anything is written, and one-line descriptions of
operating-system errors (what failed, where, and what to do)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile

__all__ = ["atomic_open", "atomic_write_text", "atomic_write_json", "RunIOError",
           "describe_os_error", "check_folder_path", "check_writable_folder"]


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", suffix: str = ".tmp"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one step, so a
    reader never sees a half-written file. On error the temporary file is removed."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=suffix)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


# ----------------------------------------------------------------------------- errors
class RunIOError(OSError):
    """An operating-system error (full disk, lost permission, ...) while a run was under way.

    The run folder keeps its last checkpoint (every file is written atomically), so the run can
    be continued once the cause is fixed. ``errno`` is the original error's; the message says
    where it happened and how to continue. The command line exits with code 1 for it (a bad
    path given before the run started is code 2)."""

    def __init__(self, message: str, *, errno: int | None = None, path: str | None = None):
        super().__init__(message)
        self.errno = errno
        self.path = path


_HINTS = {
    errno.EACCES: "check its permissions or choose another folder",
    errno.EPERM: "check its permissions or choose another folder",
    errno.EROFS: "the file system is read-only; choose another folder",
    errno.ENOSPC: "the disk is full; free some space",
    errno.EDQUOT: "the disk quota is used up; free some space",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.EEXIST: "it exists already",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "choose a shorter path",
}

RUN_FAILURE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})
"""OS errors that are failures of the machine rather than of a path the user gave (exit 1)."""


def describe_os_error(err: OSError) -> str:
    """One line for an ``OSError``: what failed, the path, and what to do about it."""
    if err.errno is None or not err.strerror:  # our own errors carry their message
        return " ".join(str(err).split())
    text = err.strerror
    if err.filename is not None:
        text += f": {os.fspath(err.filename)!r}"
    if getattr(err, "filename2", None) is not None:
        text += f" -> {os.fspath(err.filename2)!r}"
    hint = _HINTS.get(err.errno)
    return text + (f" ({hint})" if hint else "")


# ----------------------------------------------------------------------------- output paths
def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_folder_path(path, what: str = "folder") -> str:
    """``path`` as an absolute folder path that is, or can become, a folder: refuses (with a
    ``ValueError`` naming it) a path that is a file or lies under a file. Writes nothing."""
    given = os.fspath(path)
    full = os.path.abspath(given)
    if os.path.lexists(full) and not os.path.isdir(full):
        raise ValueError(f"The {what} {given!r} is a file, not a folder; give a folder.")
    existing = _nearest_existing(full)
    if not os.path.isdir(existing):
        raise ValueError(f"The {what} {given!r} lies under {existing!r}, which is a file, not a "
                         f"folder; give another path.")
    return full


def check_writable_folder(path, what: str = "folder") -> str:
    """:func:`check_folder_path`, then a probe: a temporary file is created (and removed) in the
    folder, or in its nearest existing parent when it does not exist yet. Refuses a folder this
    process cannot write (permissions, read-only or full file system) with a ``ValueError``
    naming it. Returns the absolute path."""
    full = check_folder_path(path, what)
    where = _nearest_existing(full)
    try:
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".noether-ppl-probe-")
        os.close(fd)
        os.remove(tmp)
    except OSError as err:
        raise ValueError(f"Cannot write in the {what} {os.fspath(path)!r}: "
                         f"{describe_os_error(err)}.") from None
    return full
