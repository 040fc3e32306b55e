"""JAX's persistent compilation cache for noether-ppl: compiled programs kept on disk.

Compiling is a fixed cost of every fit: on two CPU cores the jitted SVI step of the demo's
learned model takes seconds to compile, the whole start of a short fit
(``benchmarks/results.md``, "Compilation cache"). JAX can store compiled XLA programs on disk
and load them the next time the same program (same model, shapes, settings, JAX version and
device) is compiled, in this process or a later one. The ``noether-ppl`` command turns this on
for every command, in a folder of the user's cache directory; from Python,
:func:`enable_compilation_cache` does the same and must be called before the first compilation.

``NOETHER_PPL_CACHE_DIR`` sets the folder, or turns the cache off with ``off``. The cache is
trusted: whoever can write to its folder can run code in your process, so keep it private.
"""

from __future__ import annotations

import os

__all__ = ["enable_compilation_cache", "default_cache_dir", "CACHE_ENV"]

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


def enable_compilation_cache(path: str | os.PathLike | None = None, *,
                             min_compile_time_s: float = 0.5) -> str | None:
    """Keep compiled programs that took at least ``min_compile_time_s`` to compile in
    ``path`` (default :func:`default_cache_dir`) and load them instead of compiling again.

    Returns the folder, or None when ``NOETHER_PPL_CACHE_DIR=off`` (and no ``path`` is given)
    or the folder cannot be created (the cache is then left off: a fit does not need it).
    Without ``path``, a cache already set up for JAX (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax.config``) is left as it is and its folder returned.
    Call it before anything is compiled; JAX reads the setting at its first compilation.
    """
    import jax

    if isinstance(min_compile_time_s, bool) or not isinstance(min_compile_time_s, (int, float)) \
            or not min_compile_time_s >= 0:
        raise ValueError(f"Expected `min_compile_time_s` >= 0 (seconds), got "
                         f"{min_compile_time_s!r}.")
    if path is None and jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir  # set up for JAX already
    folder = default_cache_dir() if path is None else os.path.abspath(os.fspath(path))
    if folder is None:
        return None
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    return folder
