"""The files of a run folder (see :mod:`~noether_ppl.runs.folder` for the layout): their names,
JSON and ``.npz`` reading and writing (atomic), SHA-256 digests, ``run.json`` and
``metrics.json`` read back checked against their schema (:mod:`noether_ppl.runs.schema`), and the
parts of ``run.json`` that :func:`~noether_ppl.runs.folder.save_run` and
:func:`~noether_ppl.runs.fitting.fit_in_folder` share.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from .._io import atomic_open, atomic_write_json
from .schema import RUN_KIND, RUN_VERSION, check_metrics, check_run_info

__all__ = [
    "RUN_FILE",
    "PARAMS_FILE",
    "TRACE_FILE",
    "CHECKPOINT_FILE",
    "REFERENCE_FILE",
    "METRICS_FILE",
    "DATA_DIR",
    "FIGURES_DIR",
    "file_sha256",
    "read_json",
    "jsonable",
    "write_json",
    "is_run_folder",
    "read_run_info",
    "read_metrics",
    "nonfinite_params",
    "write_reference",
]

RUN_FILE = "run.json"
PARAMS_FILE = "params.npz"
TRACE_FILE = "trace.npz"
CHECKPOINT_FILE = "checkpoint.npz"
REFERENCE_FILE = "reference.npz"
METRICS_FILE = "metrics.json"
DATA_DIR = "data"
FIGURES_DIR = "figures"


# ----------------------------------------------------------------------------- small helpers
def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_npz(path, arrays: dict) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def read_json(path, what: str = "file") -> dict:
    """A JSON object from ``path``, or ``ValueError`` naming the file. (An ``OSError`` while
    reading, e.g. a permission error, is raised as it is.)"""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"The {what} {path!r} is a folder, not a file.")
    with open(path, "rb") as f:
        data = f.read()
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"Could not read the {what} {path!r}: truncated or corrupt "
                         f"({' '.join(str(err).split())[:200]}).") from None
    if not isinstance(obj, dict):
        raise ValueError(f"The {what} {path!r} does not hold a JSON object (it holds a "
                         f"{type(obj).__name__}).")
    return obj


def jsonable(obj):
    """Replace non-finite floats (not valid JSON) by strings and NumPy scalars by Python's."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    return obj


def write_json(path, obj) -> None:
    atomic_write_json(path, jsonable(obj))


def is_run_folder(folder) -> bool:
    return os.path.isfile(os.path.join(os.fspath(folder), RUN_FILE))


def read_run_info(folder) -> dict:
    """The ``run.json`` of a run folder, checked against its schema
    (:func:`~noether_ppl.runs.schema.check_run_info`)."""
    path = os.path.join(os.fspath(folder), RUN_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(folder)!r} is not a run folder (no {RUN_FILE}).")
    return check_run_info(read_json(path, "run file"), path)


def read_metrics(folder) -> dict | None:
    """The ``metrics.json`` of a run folder, checked (None when there is none)."""
    path = os.path.join(os.fspath(folder), METRICS_FILE)
    if not os.path.exists(path):
        return None
    return check_metrics(read_json(path, "metrics file"), path)


def nonfinite_params(params) -> list[str]:
    """The names of the parameters in ``params`` that hold a non-finite value."""
    return sorted(k for k, v in params.items()
                  if np.issubdtype(np.asarray(v).dtype, np.inexact)
                  and not np.all(np.isfinite(np.asarray(v))))


def _verified(folder: str, info: dict, rel: str) -> str:
    """Path of ``rel`` after checking it against the digest in ``run.json``."""
    path = os.path.join(folder, rel)
    expected = info["files"].get(rel)
    if expected is None:
        raise ValueError(f"{os.path.join(folder, RUN_FILE)!r} does not list {rel!r}.")
    if not os.path.exists(path):
        raise FileNotFoundError(f"Run file {path!r} is missing.")
    if file_sha256(path) != expected:
        raise ValueError(f"Run file {path!r} is corrupt or was changed: its SHA-256 does not "
                         f"match the one recorded in {RUN_FILE}.")
    return path


# ----------------------------------------------------------------------------- saving
def write_reference(folder, generators, names=None) -> str:
    """Write reference generators ``(L, M+1, M+1)`` (and names) to ``reference.npz``."""
    G = np.asarray(generators, dtype=np.float64)
    names = [f"G_{i}" for i in range(G.shape[0])] if names is None else list(names)
    path = os.path.join(os.fspath(folder), REFERENCE_FILE)
    _write_npz(path, {"generators": G, "names": np.array(names, dtype=str)})
    return path


def _data_files(folder: str, train, tests) -> dict:
    files = {}
    os.makedirs(os.path.join(folder, DATA_DIR), exist_ok=True)
    if train is not None:
        rel = f"{DATA_DIR}/train.npz"
        train.save(os.path.join(folder, rel))
        files["train"] = rel
    for name, t in (tests or {}).items():
        if name == "train":
            raise ValueError("Test sets cannot be named 'train'.")
        rel = f"{DATA_DIR}/{name}.npz"
        t.save(os.path.join(folder, rel))
        files[name] = rel
    return files


def _base_info(result_or_model, *, meta, settings, fp) -> dict:
    model = getattr(result_or_model, "model", result_or_model)
    from .. import __version__

    return {
        "kind": RUN_KIND,
        "version": RUN_VERSION,
        "package_version": __version__,
        "variant": model.variant,
        "label": (meta or {}).get("label", model.variant),
        "spec": model.spec.to_dict(),
        "phase_dim": model.phase_dim,
        "n_conserved": model.n_conserved,
        "fixed_generators": model.fixed_generators is not None,
        "fit": settings or {},
        "fingerprint": fp,
        "meta": meta or {},
    }
