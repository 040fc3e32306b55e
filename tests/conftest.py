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
