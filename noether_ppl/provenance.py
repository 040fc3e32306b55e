"""Where a result came from: the commit, the package versions and the machine.

One definition for the benchmark records (``benchmarks/record.py``) and the provenance cell at
the end of each stored notebook, so that both describe a run the same way.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import os
import pathlib
import platform
import subprocess

__all__ = ["OUTPUTS", "PACKAGES", "VECTOR_EXTENSIONS", "code_changes", "commit", "cpu",
           "environment", "summary"]

PACKAGES = ("noether-ppl", "jax", "jaxlib", "numpyro", "optax", "numpy", "scipy",
            "arviz-base", "arviz-stats")
"""The distributions whose versions a record names."""


def _git(*args: str) -> str | None:
    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


OUTPUTS = ("*.ipynb", "*.md", "benchmarks/records/*")
"""Tracked files that hold results and prose, not code: the stored notebooks (executing one
rewrites it, and the next one runs while it differs from ``HEAD``), the documents and the
benchmark records. Changes to them do not make a run's code differ from its commit."""


def code_changes(paths) -> list[str]:
    """The paths (relative to the checkout) among ``paths`` that are not :data:`OUTPUTS`."""
    return [p for p in paths if not any(fnmatch.fnmatch(p, pat) for pat in OUTPUTS)]


def commit() -> str:
    """The checkout's ``HEAD`` commit, with ``+uncommitted`` when a tracked file other than
    :data:`OUTPUTS` differs from it; ``"unknown"`` outside a git checkout (e.g. an installed
    wheel)."""
    sha = _git("rev-parse", "HEAD")
    if not sha:
        return "unknown"
    changed = _git("diff", "--name-only", "HEAD") or ""
    return sha + ("+uncommitted" if code_changes(changed.splitlines()) else "")


VECTOR_EXTENSIONS = ("avx512f", "avx512_bf16", "avx2", "fma", "avx", "asimd", "sve")
"""The CPU's vector instruction sets a record names (``/proc/cpuinfo``'s flag names): XLA
compiles for those the host has, so the rounding of a step, and after thousands of steps the
fit, can differ between hosts of the same kind."""


def _parse_cpuinfo(text: str) -> dict:
    model, flags = None, set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if model is None and name in ("model name", "Model"):
            model = value.strip() or None
        elif not flags and name in ("flags", "Features"):
            flags = set(value.split())
    return {"model": model, "vector": [f for f in VECTOR_EXTENSIONS if f in flags]}


def cpu() -> dict:
    """``{"model": str | None, "vector": [...]}``: the CPU's model name and which of
    :data:`VECTOR_EXTENSIONS` it has, from ``/proc/cpuinfo`` (elsewhere the model from
    :func:`platform.processor` and no extensions)."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {"model": platform.processor() or None, "vector": []}
    return _parse_cpuinfo(text)


def environment() -> dict:
    """The machine (its CPU: :func:`cpu`), JAX's backend and devices, and the versions of
    :data:`PACKAGES`."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        import jax

        backend = jax.default_backend()
        devices = [str(d.device_kind) for d in jax.devices()]
    except Exception:  # noqa: BLE001 - a record is still useful without the device list
        backend, devices = None, []
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu(),
        "backend": backend,
        "devices": devices,
        "packages": versions,
    }


def summary() -> str:
    """Three lines for a notebook or a log: the versions, the commit, the machine."""
    env = environment()
    pkgs = env["packages"]
    versions = ", ".join(f"{n} {pkgs[n]}" for n in ("noether-ppl", "jax", "numpyro")
                         if pkgs.get(n))
    return (f"{versions}, Python {env['python']}\n"
            f"commit {commit()}\n"
            f"machine: {env['platform']}, {env['cpu_count']} CPUs "
            f"({env['cpu']['model'] or 'model unknown'}), {env['backend']} devices "
            f"{env['devices']}")
