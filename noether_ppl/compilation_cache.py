"""JAX's persistent compilation cache for noether-ppl: compiled programs kept on disk.

Compiling is a fixed cost of every fit (the compile column of
``benchmarks/records/step-time/``). JAX can store compiled XLA programs on disk
and load them the next time the same program (same model, shapes, settings, JAX version and
device) is compiled, in this process or a later one. The ``noether-ppl`` command turns this on
for every command, in a folder of the user's cache directory; from Python,
:func:`enable_compilation_cache` does the same and must be called before the first compilation.

``NOETHER_PPL_CACHE_DIR`` sets the folder, or turns the cache off with ``off``. The cache is
trusted: whoever can write to its folder can run code in your process. So the folder is created
private (mode 0700), and a folder that others can write (group- or world-writable, or owned by
another user) is refused with a one-line ``ValueError``: the cache is never read from it.
"""

from __future__ import annotations

import os
import stat

__all__ = ["enable_compilation_cache", "default_cache_dir", "check_private_folder",
           "prepare_cache_folder", "CACHE_ENV"]

CACHE_ENV = "NOETHER_PPL_CACHE_DIR"
_OFF = ("off", "0", "false", "no", "none")


def default_cache_dir() -> str | None:
    """The cache folder: ``$NOETHER_PPL_CACHE_DIR``, or ``noether-ppl/xla`` under
    ``$XDG_CACHE_HOME`` (default ``~/.cache``); None when the variable says ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in _OFF:
        return None
    if value:
        return os.path.abspath(os.path.expanduser(value))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "noether-ppl", "xla")


def check_private_folder(folder: str) -> None:
    """Refuse (``ValueError``) a cache folder that someone else could write: group- or
    world-writable, or owned by another user. A folder that does not exist passes."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise ValueError(f"The compilation cache folder {folder!r} is a file, not a folder; "
                         f"set {CACHE_ENV} to another folder (or off).")
    problem = None
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        problem = f"it is owned by another user (uid {st.st_uid})"
    elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"it is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem:
        raise ValueError(f"Refusing the compilation cache folder {folder!r}: {problem}, and the "
                         f"cache holds native code that is run. Make it private (chmod 700 "
                         f"{folder}) or set {CACHE_ENV} to another folder (or off).")


def prepare_cache_folder(folder: str) -> bool:
    """Create ``folder`` with mode 0700 (whatever the umask) when it does not exist, then
    :func:`check_private_folder`. False when it cannot be created (the cache stays off)."""
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            os.chmod(folder, 0o700)
        except OSError:
            return False
    check_private_folder(folder)
    return True


def enable_compilation_cache(path: str | os.PathLike | None = None, *,
                             min_compile_time_s: float = 0.5) -> str | None:
    """Keep compiled programs that took at least ``min_compile_time_s`` to compile in
    ``path`` (default :func:`default_cache_dir`) and load them instead of compiling again.

    Returns the folder, or None when ``NOETHER_PPL_CACHE_DIR=off`` (and no ``path`` is given)
    or the folder cannot be created (the cache is then left off: a fit does not need it).
    Without ``path``, a cache already set up for JAX (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax.config``) is left as it is and its folder returned.
    Call it before anything is compiled; JAX reads the setting at its first compilation.
    The folder is created with mode 0700; a folder others can write is refused with a
    ``ValueError`` (:func:`check_private_folder`), that of a cache set up for JAX too.
    """
    import jax

    if isinstance(min_compile_time_s, bool) or not isinstance(min_compile_time_s, (int, float)) \
            or not min_compile_time_s >= 0:
        raise ValueError(f"Expected `min_compile_time_s` >= 0 (seconds), got "
                         f"{min_compile_time_s!r}.")
    if path is None and jax.config.jax_compilation_cache_dir:
        configured = jax.config.jax_compilation_cache_dir  # set up for JAX already
        if "://" not in str(configured):  # a local folder (not e.g. a bucket)
            check_private_folder(os.path.abspath(os.path.expanduser(str(configured))))
        return configured
    folder = default_cache_dir() if path is None else os.path.abspath(os.fspath(path))
    if folder is None:
        return None
    if not prepare_cache_folder(folder):
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    return folder
