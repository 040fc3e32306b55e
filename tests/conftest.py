import atexit
import os
import shutil
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")

# One persistent XLA compilation cache per test session, fresh each time: many tests (and the
# notebook kernels and command-line runs, which inherit this environment) compile the same
# programs; the cache turns the repeats into reads. It changes no result, only compile time.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="noether-ppl-xla-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# Each pytest-xdist worker its own subfolder: the workers inherit one folder from the controller,
# and one worker reading an entry that the other is still writing got a truncated file (a
# "Error reading persistent compilation cache entry" warning, an error in this suite).
if os.environ.get("PYTEST_XDIST_WORKER"):
    _worker_cache = os.path.join(os.environ["JAX_COMPILATION_CACHE_DIR"],
                                 os.environ["PYTEST_XDIST_WORKER"])
    os.makedirs(_worker_cache, exist_ok=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _worker_cache

import jax  # noqa: E402

# in case a plugin imported JAX before this file set the folder
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])

# Identities are checked in float64; training code casts to its own dtype explicitly.
jax.config.update("jax_enable_x64", True)


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tiny_sho():
    """Three short oscillator trajectories: data for tests that fit many times."""
    from noether_ppl import systems

    return systems.HarmonicOscillator().simulate(jax.random.key(0), n_trajectories=3,
                                                 n_steps=3, dt=0.2)


@pytest.fixture(scope="module")
def tiny_razor():
    """A tiny Noether's razor (K = 1) that fits in a fraction of a second per step."""
    from noether_ppl.models import ModelSpec, NoetherRazor

    spec = ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, substeps=2)
    return NoetherRazor(spec, phase_dim=2)


@pytest.fixture(scope="session")
def built_once(tmp_path_factory):
    """``built_once(name, build)``: :func:`_built_once` in this session's temporary folder."""
    return lambda name, build: _built_once(tmp_path_factory, name, build)


def _built_once(tmp_path_factory, name, build):
    """``root/name``, a folder that ``build(path)`` writes and the tests then only read (or
    copy), built once per test session: the first pytest-xdist worker to ask builds it while
    the others wait on a lock (``fcntl.flock``), and every later caller reuses it. A module
    fixture of its own is built once per worker, the same fit twice. Where ``fcntl`` is missing,
    each caller builds its own. A build that fails leaves nothing behind."""
    import shutil

    base = tmp_path_factory.getbasetemp()
    try:
        import fcntl
    except ImportError:  # no advisory locks: a folder per caller
        path = tmp_path_factory.mktemp(name) / name
        build(str(path))
        return str(path)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    path = base / name
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not (base / f"{name}.built").exists():
                shutil.rmtree(path, ignore_errors=True)
                try:
                    build(str(path))
                except BaseException:
                    shutil.rmtree(path, ignore_errors=True)
                    raise
                (base / f"{name}.built").touch()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return str(path)
