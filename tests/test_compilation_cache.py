"""The persistent compilation cache: where it lives, that a second process loads what the first
compiled instead of compiling it, that the command line uses it and that it can be turned off."""

import os
import subprocess
import sys

import jax
import pytest

from noether_ppl.compilation_cache import CACHE_ENV, default_cache_dir, enable_compilation_cache

PROGRAM = """
import sys
import jax, jax.numpy as jnp
from noether_ppl.compilation_cache import enable_compilation_cache
events = []
jax.monitoring.register_event_listener(lambda name, **kwargs: events.append(name))
folder = enable_compilation_cache(sys.argv[1] if len(sys.argv) > 1 else None,
                                  min_compile_time_s=0)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0))
f(jnp.ones((16, 16))).block_until_ready()
print(folder, events.count("/jax/compilation_cache/cache_hits"))
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_PERSISTENT_CACHE")
           and k not in ("JAX_COMPILATION_CACHE_DIR", CACHE_ENV)}
    return {**env, **extra}


def _run(args, env):
    proc = subprocess.run([sys.executable, "-c", PROGRAM, *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    folder, hits = proc.stdout.split()
    return folder, int(hits)


def test_a_second_process_loads_the_compiled_program(tmp_path):
    cache = str(tmp_path / "xla")
    assert _run([cache], _env()) == (cache, 0)
    assert os.listdir(cache)  # the program is on disk
    folder, hits = _run([cache], _env())
    assert folder == cache and hits >= 1  # read back, not compiled again
    # the folder from the environment variable, and off
    folder, hits = _run([], _env(**{CACHE_ENV: cache}))
    assert folder == cache and hits >= 1
    assert _run([], _env(**{CACHE_ENV: "off"})) == ("None", 0)


@pytest.mark.slow
def test_the_command_line_keeps_its_programs_in_the_cache(tmp_path):
    """Two CLI fits in fresh processes: the second loads the fit's programs from the cache
    (slow: two processes compile the whole run; the default suite checks the cache with one
    program above). (Simulating is not cached: the ODE solver's error checks are host
    callbacks, which JAX does not store; the fit is.)"""
    cache = tmp_path / "cli-cache"
    tiny = ["model.hidden=[8]", "model.sym_samples=2", "model.substeps=1",
            "inference.num_steps=4", "inference.refit=false", "data.train.n_trajectories=4",
            "data.train.n_steps=2", "data.test.n_trajectories=4", "data.test.n_steps=2"]

    def fit(out, **env):
        argv = [sys.executable, "-m", "noether_ppl.cli", "fit", "sho-cpu", "--variant",
                "learned", *[x for t in tiny for x in ("--set", t)], "--no-progress",
                "--no-analysis", "--out", str(tmp_path / out)]
        proc = subprocess.run(argv, env=_env(**env), capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr

    fit("a", **{CACHE_ENV: str(cache)})
    assert any(name.startswith("jit_run_chunk") for name in os.listdir(cache))
    off = tmp_path / "home-cache"
    fit("b", **{CACHE_ENV: "off", "XDG_CACHE_HOME": str(off)})
    assert not off.exists()
    fit("c", XDG_CACHE_HOME=str(off))  # the default folder
    assert any(name.startswith("jit_run_chunk")
               for name in os.listdir(off / "noether-ppl" / "xla"))


def test_default_folder_and_a_cache_set_up_for_jax(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == os.path.join(str(tmp_path), "noether-ppl", "xla")
    monkeypatch.setenv(CACHE_ENV, "~/somewhere")
    assert default_cache_dir() == os.path.join(os.path.expanduser("~"), "somewhere")
    for off in ("off", "OFF", "0", "none"):
        monkeypatch.setenv(CACHE_ENV, off)
        assert default_cache_dir() is None
    # this test session sets JAX_COMPILATION_CACHE_DIR (conftest): that cache is left alone
    configured = jax.config.jax_compilation_cache_dir
    assert configured
    assert enable_compilation_cache() == configured
    assert jax.config.jax_compilation_cache_dir == configured
    with pytest.raises(ValueError, match="min_compile_time_s"):
        enable_compilation_cache(min_compile_time_s=-1)
