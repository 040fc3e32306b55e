"""Checkpoints of the full SVI state, written atomically and verified on load.

A checkpoint holds everything needed to continue a run exactly where it stopped: the
``SVIState`` of :func:`numpyro.infer.SVI` (optimiser state, which contains the unconstrained
variational parameters and η, Adam's moments and step count; the mutable state; the RNG key),
the number of steps taken, the −ELBO/N and ‖η‖ traces so far, and a *fingerprint* of the run
configuration (model, data, key, optimiser settings). Mini-batches are a pure function of the
fit key and the step, so continuing from a checkpoint with the same key reproduces an
uninterrupted run.

The file is an ``.npz`` with the flattened state leaves, the tree structure as text and a
SHA-256 digest of every array. Loading refuses, with a ``ValueError`` naming the file, anything
truncated, corrupt (digest mismatch), written for another configuration (fingerprint mismatch)
or of another structure (leaf count, shapes or dtypes), and a state that is not finite (a
checkpoint is a state to continue from; non-finite states are neither written nor read).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from zlib import error as zlib_error

import jax
import jax.numpy as jnp
import numpy as np

from .._io import atomic_open

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "fingerprint", "array_digest"]

CHECKPOINT_KIND = "noether-ppl checkpoint"
CHECKPOINT_VERSION = 1
_READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib_error, KeyError)


def array_digest(arrays: dict) -> str:
    """SHA-256 over ``arrays`` (name, dtype, shape and bytes of each, in sorted name order)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name]))
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fingerprint(**parts) -> str:
    """A SHA-256 of a run configuration: JSON-able values, arrays (by content) and PRNG keys."""

    def canon(v):
        if isinstance(v, dict):
            return {str(k): canon(x) for k, x in sorted(v.items())}
        if isinstance(v, (list, tuple)):
            return [canon(x) for x in v]
        if isinstance(v, jax.Array) and jnp.issubdtype(v.dtype, jax.dtypes.prng_key):
            return {"key": np.asarray(jax.random.key_data(v)).tolist(),
                    "impl": str(jax.random.key_impl(v))}
        if isinstance(v, (np.ndarray, jax.Array)):
            return {"array": array_digest({"a": np.asarray(v)})}
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        raise TypeError(f"Cannot fingerprint a {type(v).__name__}.")

    text = json.dumps(canon(parts), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the SVI ``state`` after ``step`` steps and the traces so far."""

    state: object
    step: int
    losses: np.ndarray
    eta_norms: np.ndarray | None
    fingerprint: str
    path: str


def _is_key(x) -> bool:
    return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _nonfinite(value: np.ndarray) -> bool:
    return np.issubdtype(value.dtype, np.inexact) and not np.all(np.isfinite(value))


def save_checkpoint(path, state, *, step: int, losses, eta_norms=None, fingerprint: str) -> str:
    """Write ``state`` (an ``SVIState`` or any pytree of arrays and PRNG keys) after ``step``
    steps, with the traces so far, to ``path`` atomically. Returns the path. A state with a
    non-finite value is refused (``ValueError``): there would be nothing to continue from."""
    leaves, treedef = jax.tree_util.tree_flatten(state)
    arrays = {}
    for i, leaf in enumerate(leaves):
        if _is_key(leaf):
            arrays[f"leaf_{i:04d}"] = np.asarray(jax.random.key_data(leaf))
            arrays[f"keyimpl_{i:04d}"] = np.array(str(jax.random.key_impl(leaf)))
        else:
            arrays[f"leaf_{i:04d}"] = np.asarray(leaf)
            if _nonfinite(arrays[f"leaf_{i:04d}"]):
                raise ValueError(f"Refusing to write checkpoint {os.fspath(path)!r}: entry {i} "
                                 f"of the state is not finite.")
    arrays["kind"] = np.array(CHECKPOINT_KIND)
    arrays["version"] = np.int64(CHECKPOINT_VERSION)
    arrays["treedef"] = np.array(str(treedef))
    arrays["n_leaves"] = np.int64(len(leaves))
    arrays["step"] = np.int64(step)
    arrays["fingerprint"] = np.array(str(fingerprint))
    arrays["losses"] = np.asarray(losses, dtype=np.float64)
    if eta_norms is not None:
        arrays["eta_norms"] = np.asarray(eta_norms, dtype=np.float64)
    arrays["digest"] = np.array(array_digest(arrays))
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return os.fspath(path)


def _read_npz(path: str, what: str) -> dict:
    """All arrays of an ``.npz`` file, or ``ValueError`` naming the file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"The {what} {path!r} is a folder, not a file.")
    with open(path, "rb") as f:  # our own handle: np.load leaks its own on a bad zip
        try:  # (an OSError of open itself, e.g. a permission error, is raised as it is)
            npz = np.load(f, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            with npz:
                return {name: npz[name] for name in npz.files}
        except _READ_ERRORS as err:
            raise ValueError(
                f"Could not read the {what} {path!r}: truncated or corrupt "
                f"({' '.join(str(err).split())[:200]})."
            ) from None


def load_checkpoint(path, template=None, *, fingerprint: str | None = None) -> Checkpoint:
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    ``template`` is a state of the expected structure (e.g. a freshly initialised
    ``SVIState``): the stored leaves are checked against its structure, shapes and dtypes and
    put into it. Without a template, ``state`` is the list of leaves. ``fingerprint``, when
    given, must equal the stored one (the same run configuration).
    """
    path = os.fspath(path)
    arrays = _read_npz(path, "checkpoint")
    if "kind" not in arrays or str(arrays["kind"]) != CHECKPOINT_KIND:
        raise ValueError(f"{path!r} is not a noether-ppl checkpoint.")
    version = int(arrays.get("version", -1))
    if version != CHECKPOINT_VERSION:
        raise ValueError(f"Checkpoint {path!r} has format version {version}; this version of "
                         f"noether-ppl reads version {CHECKPOINT_VERSION}.")
    stored_digest = str(arrays.pop("digest", ""))
    if array_digest(arrays) != stored_digest:
        raise ValueError(f"Checkpoint {path!r} is corrupt: its contents do not match the "
                         f"digest stored with them.")
    for name, kinds in (("fingerprint", "U"), ("treedef", "U"), ("n_leaves", "iu"),
                        ("step", "iu"), ("losses", "f")):
        if name not in arrays or arrays[name].dtype.kind not in kinds \
                or (name != "losses" and arrays[name].ndim != 0):
            raise ValueError(f"Checkpoint {path!r} is malformed: {name}: expected "
                             f"{'a 1-D float array' if name == 'losses' else 'a scalar'}.")
    stored_fp = str(arrays["fingerprint"])
    if fingerprint is not None and stored_fp != fingerprint:
        raise ValueError(
            f"Checkpoint {path!r} was written by a run with a different configuration (model, "
            f"data, key or optimiser settings); refusing to resume from it."
        )
    n = int(arrays["n_leaves"])
    leaves = []
    for i in range(n):
        value = arrays.get(f"leaf_{i:04d}")
        if value is None:
            raise ValueError(f"Checkpoint {path!r} is malformed: leaf_{i:04d}: expected it to be "
                             f"present (n_leaves = {n}).")
        if _nonfinite(value):
            raise ValueError(
                f"Checkpoint {path!r} holds non-finite values (entry {i} of the state, at step "
                f"{int(arrays['step'])}); there is no finite state to continue from. Start the "
                f"run again (noether-ppl fit ... --overwrite).")
        impl = arrays.get(f"keyimpl_{i:04d}")
        leaves.append(("key", value, str(impl)) if impl is not None else ("array", value, None))
    if template is not None:
        t_leaves, t_def = jax.tree_util.tree_flatten(template)
        if len(t_leaves) != n or str(t_def) != str(arrays["treedef"]):
            raise ValueError(
                f"Checkpoint {path!r} does not match this model's SVI state: it holds {n} "
                f"arrays in a different structure (expected {len(t_leaves)})."
            )
        restored = []
        for i, ((kind, value, impl), t) in enumerate(zip(leaves, t_leaves, strict=True)):
            if _is_key(t):
                if kind != "key":
                    raise ValueError(f"Checkpoint {path!r}: entry {i} should be a PRNG key.")
                restored.append(jax.random.wrap_key_data(jnp.asarray(value), impl=impl))
                continue
            t_arr = np.asarray(t)
            if kind != "array" or value.shape != t_arr.shape or value.dtype != t_arr.dtype:
                raise ValueError(
                    f"Checkpoint {path!r}: entry {i} has shape {value.shape} and dtype "
                    f"{value.dtype}, but this model's state has {t_arr.shape} {t_arr.dtype}."
                )
            restored.append(jnp.asarray(value))
        state = jax.tree_util.tree_unflatten(t_def, restored)
    else:
        state = [jax.random.wrap_key_data(jnp.asarray(v), impl=impl) if kind == "key"
                 else v for kind, v, impl in leaves]
    step = int(arrays["step"])
    losses = np.asarray(arrays["losses"])
    if step < 0 or losses.shape != (step,):
        raise ValueError(f"Checkpoint {path!r} is inconsistent: losses of shape {losses.shape} "
                         f"for {step} steps.")
    return Checkpoint(state=state, step=step, losses=losses,
                      eta_norms=arrays.get("eta_norms"), fingerprint=stored_fp, path=path)
