"""Trajectory data: validated ``(N, T+1, M)`` phase-space states sampled every ``Δt``.

The model's data are the consecutive pairs ``(x_t, x_{t+Δt})`` of each trajectory (Sec. 4.1);
mini-batches are drawn by trajectory (App. C: "batches of B = 20 trajectories"). States keep the
dtype they were given: nothing here casts or alters values silently (use :meth:`astype`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import zipfile
from collections.abc import Iterator
from zlib import error as zlib_error

import jax
import jax.numpy as jnp
import numpy as np

from ._io import atomic_open

__all__ = ["Trajectories", "batch_indices"]

_FORMAT_VERSION = 1


def check_key(key, name: str = "key") -> None:
    """Raise ``ValueError`` unless ``key`` is a JAX PRNG key (typed or legacy ``uint32[2]``)."""
    ok = isinstance(key, jax.Array) and (
        (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ())
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        raise ValueError(f"Expected `{name}` to be a JAX PRNG key, e.g. jax.random.key(0); "
                         f"got {type(key).__name__}.")


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int``, or ``ValueError`` unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Expected `{name}` to be an integer >= {minimum}, got {value!r}.")
    return int(value)



def _check_dt(dt) -> float:
    arr = np.asarray(dt)
    if arr.shape != () or arr.dtype.kind not in "iuf" or isinstance(dt, bool):
        raise ValueError(f"Expected `dt` to be a positive finite real number, got {dt!r}.")
    value = float(arr)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"Expected `dt` to be a positive finite real number, got {dt!r}.")
    return value


def _check_states(states) -> np.ndarray:
    arr = np.array(states, copy=True)  # a private copy: the object stays immutable
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"Expected `states` to be a real floating-point array, got dtype {arr.dtype}; cast it "
            f"explicitly (e.g. states.astype(np.float64))."
        )
    if arr.ndim != 3:
        raise ValueError(
            f"Expected `states` of shape (N, T+1, M) (trajectories, time points, phase "
            f"dimension), got shape {arr.shape}. For one trajectory of shape (T+1, M) use "
            f"Trajectories.from_array."
        )
    N, T1, M = arr.shape
    if N < 1:
        raise ValueError(
            f"Expected `states` to hold at least one trajectory, got shape {arr.shape}."
        )
    if T1 < 2:
        raise ValueError(
            f"Expected `states` to hold at least 2 time points per trajectory (one Δt step), got "
            f"{T1} (shape {arr.shape})."
        )
    if M < 2 or M % 2:
        raise ValueError(
            f"Expected the phase dimension `states.shape[-1]` to be a positive even number "
            f"(x = (q, p)), got {M}."
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"`states` contains non-finite values: first in trajectory {bad[0]} at time index "
            f"{bad[1]} (coordinate {bad[2]}, value {arr[tuple(bad)]})."
        )
    arr.flags.writeable = False
    return arr


def batch_indices(key: jax.Array, n_trajectories: int, batch_size: int) -> jax.Array:
    """Trajectory indices of one shuffled epoch, shape ``(n_batches, batch_size)``.

    A pure function of ``key`` (usable under ``jit`` with static ``n_trajectories`` and
    ``batch_size``). ``n_batches = ceil(N / batch_size)``. Every trajectory appears exactly once
    per epoch when ``N % batch_size == 0``; otherwise nothing is dropped: the last batch is
    filled up by wrapping around to the start of the same permutation, so ``pad = n_batches ·
    batch_size − N`` trajectories appear twice and every batch has the same size (the same
    rule as :func:`noether_ppl.inference.fit`).
    """
    n_trajectories = check_int("n_trajectories", n_trajectories)
    batch_size = check_int("batch_size", batch_size)
    if batch_size > n_trajectories:
        raise ValueError(
            f"Expected `batch_size` <= n_trajectories={n_trajectories}, got {batch_size}."
        )
    n_batches = -(-n_trajectories // batch_size)
    perm = jax.random.permutation(key, n_trajectories)
    pad = n_batches * batch_size - n_trajectories
    return jnp.concatenate([perm, perm[:pad]]).reshape(n_batches, batch_size)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Trajectories:
    """Phase-space trajectories ``states (N, T+1, M)`` sampled every ``dt``.

    Parameters
    ----------
    states : array ``(N, T+1, M)``: ``N`` trajectories of ``T+1`` time points ``x = (q, p)``
        with even ``M``. Kept in its own (floating) dtype; stored as a read-only copy.
    dt : the time between consecutive points, positive and finite.

    Raises ``ValueError`` (naming the argument, or the first trajectory with a non-finite value)
    for a wrong rank, odd ``M``, fewer than two time points, non-finite values or a bad ``dt``.
    """

    states: np.ndarray
    dt: float

    def __post_init__(self):
        object.__setattr__(self, "dt", _check_dt(self.dt))
        object.__setattr__(self, "states", _check_states(self.states))

    @classmethod
    def from_array(cls, array, dt: float) -> Trajectories:
        """From a user array: ``(N, T+1, M)``, or a single trajectory ``(T+1, M)`` (becomes
        ``N = 1``). Any other rank raises ``ValueError``."""
        arr = np.asarray(array)
        if arr.ndim == 2:
            arr = arr[None]
        return cls(states=arr, dt=dt)

    # -- shape -----------------------------------------------------------------------------
    @property
    def n_trajectories(self) -> int:
        """``N``."""
        return self.states.shape[0]

    @property
    def n_steps(self) -> int:
        """``T``: Δt steps (pairs) per trajectory; each trajectory has ``T+1`` points."""
        return self.states.shape[1] - 1

    @property
    def phase_dim(self) -> int:
        """``M = 2d``."""
        return self.states.shape[2]

    @property
    def n_pairs(self) -> int:
        """``N · T`` consecutive pairs."""
        return self.n_trajectories * self.n_steps

    @property
    def dtype(self) -> np.dtype:
        return self.states.dtype

    @property
    def times(self) -> np.ndarray:
        """``(T+1,)`` times ``0, Δt, …, TΔt`` (float64)."""
        return np.arange(self.n_steps + 1, dtype=np.float64) * self.dt

    def __repr__(self) -> str:
        return (f"Trajectories(n_trajectories={self.n_trajectories}, n_steps={self.n_steps}, "
                f"phase_dim={self.phase_dim}, dt={self.dt:g}, dtype={self.dtype})")

    # -- pairs and batches ------------------------------------------------------------------
    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive pairs ``(x_t, x_{t+Δt})``, each ``(N·T, M)``, trajectory-major: row
        ``n·T + t`` is step ``t`` of trajectory ``n`` (see :meth:`pair_index`)."""
        M = self.phase_dim
        return self.states[:, :-1].reshape(-1, M), self.states[:, 1:].reshape(-1, M)

    def pair_index(self) -> tuple[np.ndarray, np.ndarray]:
        """``(trajectory, step)`` indices ``(N·T,)`` of the rows of :meth:`pairs`."""
        traj, step = np.divmod(np.arange(self.n_pairs), self.n_steps)
        return traj, step

    def batch_indices(self, key: jax.Array, batch_size: int) -> jax.Array:
        """``(n_batches, batch_size)`` trajectory indices of one shuffled epoch; see
        :func:`batch_indices` (the remainder wraps around, nothing is dropped)."""
        check_key(key)
        return batch_indices(key, self.n_trajectories, batch_size)

    def batches(self, key: jax.Array, batch_size: int) -> Iterator[Trajectories]:
        """Iterate over one shuffled epoch of mini-batches of ``batch_size`` trajectories.

        Each batch is a :class:`Trajectories` (same ``dt``); order and the wrap-around of the
        remainder are those of :meth:`batch_indices`. Use a fresh key per epoch, e.g.
        ``jax.random.fold_in(key, epoch)``.
        """
        idx = np.asarray(self.batch_indices(key, batch_size))
        for row in idx:
            yield self.subset(row)

    # -- selection --------------------------------------------------------------------------
    def subset(self, indices) -> Trajectories:
        """The trajectories at ``indices`` (integers, a boolean mask of length ``N`` or a slice),
        in that order."""
        N = self.n_trajectories
        if isinstance(indices, slice):
            idx = np.arange(N)[indices]
        else:
            idx = np.asarray(indices)
            if idx.dtype == bool:
                if idx.shape != (N,):
                    raise ValueError(f"Expected a boolean `indices` mask of shape ({N},), got "
                                     f"shape {idx.shape}.")
                idx = np.flatnonzero(idx)
            elif idx.dtype.kind not in "iu" or idx.ndim != 1:
                raise ValueError(
                    f"Expected `indices` to be a 1-D integer array, a boolean mask or a slice, "
                    f"got {idx.dtype} array of shape {idx.shape}."
                )
            elif idx.size and (idx.min() < -N or idx.max() >= N):
                raise ValueError(f"`indices` out of range for {N} trajectories.")
        if idx.size == 0:
            raise ValueError("`indices` selects no trajectory.")
        return Trajectories(states=self.states[idx], dt=self.dt)

    def split(self, n_first: int, *, key: jax.Array | None = None
              ) -> tuple[Trajectories, Trajectories]:
        """Split into the first ``n_first`` trajectories and the rest (after a random
        permutation when ``key`` is given), e.g. a held-out validation set."""
        n_first = check_int("n_first", n_first)
        if n_first >= self.n_trajectories:
            raise ValueError(
                f"Expected 1 <= `n_first` < n_trajectories={self.n_trajectories}, got {n_first}."
            )
        order = np.arange(self.n_trajectories)
        if key is not None:
            check_key(key)
            order = np.asarray(jax.random.permutation(key, self.n_trajectories))
        return self.subset(order[:n_first]), self.subset(order[n_first:])

    def astype(self, dtype) -> Trajectories:
        """An explicit cast of the states to ``dtype``."""
        return Trajectories(states=self.states.astype(dtype), dt=self.dt)

    # -- I/O --------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write ``states`` (own dtype) and ``dt`` to an ``.npz`` file at exactly ``path``.

        Atomic: written to a temporary file in the same folder, then moved into place, so
        ``path`` never holds a half-written file.
        """
        with atomic_open(path, "wb") as f:
            np.savez(f, states=self.states, dt=np.float64(self.dt),
                     format_version=np.int64(_FORMAT_VERSION))

    @classmethod
    def load(cls, path) -> Trajectories:
        """Read a file written by :meth:`save` (bit-exact states, same dtype).

        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when
        it is truncated, not an ``.npz``, or lacks ``states`` / ``dt``.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No trajectories file at {path!r}.")
        with open(path, "rb") as f:  # our own handle: np.load leaks its own on a bad zip
            try:
                npz = np.load(f, allow_pickle=False)
            except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
                raise ValueError(
                    f"Could not read trajectories from {path!r} (truncated or not an .npz "
                    f"file): {err}"
                ) from err
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError(f"{path!r} is not an .npz trajectories file (it holds one "
                                 f"array).")
            with npz:
                missing = [k for k in ("states", "dt") if k not in npz.files]
                if missing:
                    raise ValueError(f"{path!r} is not a trajectories file: missing {missing} "
                                     f"(found {npz.files}).")
                try:
                    states, dt = npz["states"], npz["dt"]
                except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib_error) as err:
                    raise ValueError(
                        f"Could not read trajectories from {path!r} (truncated or corrupt): {err}"
                    ) from err
        try:
            return cls(states=states, dt=dt)
        except ValueError as err:
            raise ValueError(f"Invalid trajectories in {path!r}: {err}") from err
