"""Your own data for an experiment: trajectories (``.npz`` or ``.npy``), reference generators
(``.npy`` or ``.npz``) and the generators to start the learned η at (also a ``discovery.json``
of ``noether-ppl discover``), each read and checked with a ``ValueError`` that names the file.
"""

from __future__ import annotations

import os

import numpy as np

from ..data import Trajectories
from ..runs.files import read_json

__all__ = ["load_user_data", "load_reference", "load_init_conserved"]


def load_user_data(path, dt: float | None = None) -> Trajectories:
    """Trajectories from a user file: ``.npz`` with ``states`` and ``dt`` (as written by
    ``Trajectories.save`` or ``noether-ppl simulate``), or ``.npy`` holding ``(N, T+1, M)``
    (or one ``(T+1, M)`` trajectory) with ``dt`` given."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No data file at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"The data file {path!r} is a folder, not a file.")
    if path.endswith(".npz"):
        if dt is not None:
            raise ValueError(f"{path!r} stores its own dt; --dt is for .npy files.")
        return Trajectories.load(path)
    if path.endswith(".npy"):
        if dt is None:
            raise ValueError(f"{path!r} is a bare array: give its time step with --dt.")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise ValueError(f"Could not read {path!r} (truncated or not a .npy file): "
                             f"{err}") from None
        try:
            return Trajectories.from_array(array, dt)
        except ValueError as err:
            raise ValueError(f"Invalid trajectories in {path!r}: {err}") from None
    raise ValueError(f"Expected a .npz or .npy data file, got {path!r}.")


def _checked_generators(G, path: str) -> np.ndarray:
    """``G`` as finite float64 generators ``(L, M+1, M+1)``, ``L >= 1``, read from ``path``."""
    try:
        G = np.asarray(G, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"{path!r}: expected generators of shape (L, M+1, M+1) (numbers), got "
                         f"something else.") from None
    if G.ndim == 2:
        G = G[None]
    if G.ndim != 3 or G.shape[1] != G.shape[2] or G.shape[0] < 1:
        raise ValueError(f"{path!r}: expected generators of shape (L, M+1, M+1), got "
                         f"{G.shape}.")
    if not np.all(np.isfinite(G)):
        raise ValueError(f"{path!r}: the generators are not finite.")
    return G


def load_reference(path):
    """Reference generators ``(L, M+1, M+1)`` from ``.npy``, or ``.npz`` with ``generators``
    (and optional ``names``). Returns ``(generators, names or None)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No reference file at {path!r}.")
    try:
        obj = np.load(path, allow_pickle=False)
        if isinstance(obj, np.lib.npyio.NpzFile):
            with obj:
                if "generators" not in obj.files:
                    raise ValueError(f"no 'generators' array (found {obj.files})")
                G = obj["generators"]
                names = [str(n) for n in obj["names"]] if "names" in obj.files else None
        else:
            G, names = obj, None
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"Could not read reference generators from {path!r}: {err}") from None
    G = _checked_generators(G, path)
    if names is not None and len(names) != G.shape[0]:
        raise ValueError(f"{path!r}: {len(names)} names for {G.shape[0]} generators.")
    return G, names


def load_init_conserved(path):
    """Generators ``(L, M+1, M+1)`` to start η at: the ``generators`` of a ``discovery.json``
    (``noether-ppl discover``), or a ``.npy``/``.npz`` file as :func:`load_reference` reads."""
    path = os.fspath(path)
    if not path.endswith(".json"):
        return load_reference(path)[0]
    if not os.path.exists(path):
        raise FileNotFoundError(f"No file at {path!r}.")
    found = read_json(path, "discovery file")
    if "generators" not in found:
        raise ValueError(f"{path!r} holds no 'generators' (expected a discovery.json of "
                         f"`noether-ppl discover`).")
    return _checked_generators(found["generators"], path)
