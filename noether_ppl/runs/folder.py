"""Run folders: a fitted model on disk, usable for prediction and analysis without refitting.

Layout of a run folder (every file written atomically: a temporary file, then a rename)::

    RUN/
      run.json          what was fitted: variant, label, ModelSpec, phase dimension, fit
                        settings, status ("running", "complete", "diverged"), steps, wall time,
                        the configuration fingerprint and a SHA-256 of every file below
      params.npz        constrained parameters (variational parameters and η) by name, and the
                        fixed generators of an oracle model
      trace.npz         −ELBO/N per step ("losses") and ‖η‖ per step ("eta_norms")
      checkpoint.npz    the full SVI state (optimiser state, RNG key, step) for resuming
      data/train.npz    the training trajectories; data/<name>.npz for every test set
      reference.npz     reference generators (ground truth or user-given) and their names
      metrics.json      evaluation and symmetry report (written by the analysis)
      posterior.nc      the ArviZ DataTree (written by the analysis)
      figures/*.png     figures (written by the analysis and by ``noether-ppl report``)

:func:`load_run` rebuilds the :class:`~noether_ppl.inference.FitResult`; :func:`open_run`
also returns the data, the reference and the metrics. A missing, truncated, corrupt or
mismatched file is refused with a ``ValueError`` that names it; every file is checked against
its schema (:mod:`noether_ppl.runs.schema`) before it is used. A run folder is written by one
process at a time (:func:`~noether_ppl.runs.lock.folder_lock`), and ``params.npz`` never holds
a non-finite value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._io import atomic_open, atomic_write_json
from ..data import Trajectories
from .checkpoint import _read_npz, fingerprint, load_checkpoint, save_checkpoint
from .lock import folder_lock
from .schema import (
    RUN_KIND,
    RUN_VERSION,
    check_metrics,
    check_params,
    check_reference,
    check_run_info,
    check_trace,
)

__all__ = [
    "Run",
    "save_run",
    "load_run",
    "open_run",
    "fit_in_folder",
    "is_run_folder",
    "read_run_info",
    "read_json",
    "read_metrics",
    "write_reference",
    "RUN_FILE",
    "RUN_KIND",
    "RUN_VERSION",
]

RUN_FILE = "run.json"
PARAMS_FILE = "params.npz"
TRACE_FILE = "trace.npz"
CHECKPOINT_FILE = "checkpoint.npz"
REFERENCE_FILE = "reference.npz"
METRICS_FILE = "metrics.json"
DATA_DIR = "data"
FIGURES_DIR = "figures"
MAX_STEPS = 2**31 - 1
"""The most steps a run can take (steps are int32 in JAX)."""


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


def _jsonable(obj):
    """Replace non-finite floats (not valid JSON) by strings and NumPy scalars by Python's."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    return obj


def write_json(path, obj) -> None:
    atomic_write_json(path, _jsonable(obj))


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


def save_run(result, folder, *, train: Trajectories | None = None, tests: dict | None = None,
             reference=None, reference_names=None, meta: dict | None = None,
             settings: dict | None = None, status: str = "complete",
             fingerprint: str | None = None) -> str:
    """Write ``result`` (a :class:`~noether_ppl.inference.FitResult`) into ``folder``.

    ``train`` and ``tests`` (``{name: Trajectories}``) are stored under ``data/``;
    ``reference`` generators (and ``reference_names``) in ``reference.npz``; ``meta`` (e.g. the
    experiment name and the variant's label) and ``settings`` (fit arguments) in ``run.json``.
    Every file is written atomically; ``run.json`` last, with the SHA-256 of every other file.
    Returns the folder.
    """
    if not hasattr(result, "params") or not hasattr(result, "model"):
        raise ValueError(f"Expected `result` to be a FitResult, got {type(result).__name__}.")
    if status not in ("running", "complete", "diverged"):
        raise ValueError(f"Unknown `status` {status!r}.")
    bad = nonfinite_params(result.params)
    if bad:
        raise ValueError(f"Refusing to save non-finite parameters {bad} into "
                         f"{os.fspath(folder)!r}: a run folder keeps finite values only.")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    model = result.model
    arrays = {f"params/{k}": np.asarray(v) for k, v in result.params.items()}
    if model.fixed_generators is not None:
        arrays["model/fixed_generators"] = np.asarray(model.fixed_generators)
    _write_npz(os.path.join(folder, PARAMS_FILE), arrays)
    trace = {"losses": np.asarray(result.losses, np.float64)}
    if result.eta_norms is not None:
        trace["eta_norms"] = np.asarray(result.eta_norms, np.float64)
    _write_npz(os.path.join(folder, TRACE_FILE), trace)
    data_files = _data_files(folder, train, tests)
    if reference is not None:
        write_reference(folder, reference, reference_names)
    files = [PARAMS_FILE, TRACE_FILE, *data_files.values()]
    if os.path.exists(os.path.join(folder, REFERENCE_FILE)):
        files.append(REFERENCE_FILE)
    old = {}
    if is_run_folder(folder):
        try:
            old = read_run_info(folder)
        except (ValueError, OSError):
            old = {}
    # fit_in_folder finishing its own run keeps the data it wrote at the start; anything else
    # replaces the folder's run, and what was derived from the old one goes.
    continuing = (fingerprint is not None and old.get("status") in ("running", "diverged")
                  and old.get("fingerprint") == fingerprint)
    if continuing:
        data_files = {**old.get("data", {}), **data_files}
        for rel in data_files.values():
            if rel not in files:
                files.append(rel)
    else:
        stale = [METRICS_FILE, "posterior.nc", CHECKPOINT_FILE]
        if reference is None:
            stale.append(REFERENCE_FILE)
            if REFERENCE_FILE in files:
                files.remove(REFERENCE_FILE)
        figures = os.path.join(folder, FIGURES_DIR)
        if os.path.isdir(figures):
            stale += [os.path.join(FIGURES_DIR, f) for f in os.listdir(figures)
                      if f.endswith(".png")]
        for rel in stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, rel))
    info = _base_info(result, meta=meta, settings=settings, fp=fingerprint)
    info.update({
        "status": status,
        "steps": int(result.steps),
        "dt": float(result.dt),
        "num_data": int(result.num_data),
        "info": _jsonable(dict(result.info)),
        "data": data_files,
        "files": {rel: file_sha256(os.path.join(folder, rel)) for rel in files},
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    write_json(os.path.join(folder, RUN_FILE), info)
    return folder


# ----------------------------------------------------------------------------- loading
def _build_model(info: dict, fixed_generators, path: str):
    from ..models import ModelSpec, NoetherRazor

    try:
        spec = ModelSpec.from_dict(info["spec"])
        return NoetherRazor(spec, phase_dim=int(info["phase_dim"]), generators=fixed_generators)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path!r}: cannot rebuild the model: {err}") from None


def _setup_guide(model, dt: float, num_data: int):
    """An ``AutoMatrixNormal`` set up on the model (one trace on a dummy pair)."""
    from numpyro import handlers

    from ..inference.guide import AutoMatrixNormal

    guide = AutoMatrixNormal(model)
    x = jnp.zeros((1, model.phase_dim), model.dtype)
    with handlers.seed(rng_seed=0), handlers.block():
        guide(x, x, dt=dt, num_data=max(1, int(num_data)))
    return guide


def load_run(folder):
    """The :class:`~noether_ppl.inference.FitResult` saved in a run folder: model, guide,
    ELBO, parameters (bit-exact), loss and η traces, ready for ``predict``, ``hamiltonian``,
    :func:`~noether_ppl.analysis.evaluate.evaluate` and the symmetry report. ``svi_state`` is
    None (the optimiser state lives in ``checkpoint.npz``)."""
    from ..inference.elbo import MatrixNormalELBO
    from ..inference.result import FitResult

    folder = os.fspath(folder)
    info = read_run_info(folder)
    params_path = _verified(folder, info, PARAMS_FILE)
    arrays = _read_npz(params_path, "parameter file")
    check_params(arrays, params_path)
    fixed = arrays.get("model/fixed_generators")
    if info["fixed_generators"] != (fixed is not None):
        raise ValueError(f"{params_path!r} does not match {RUN_FILE}: fixed generators "
                         f"{'missing' if fixed is None else 'unexpected'}.")
    model = _build_model(info, fixed, os.path.join(folder, RUN_FILE))
    params = {k[len("params/"):]: jnp.asarray(v) for k, v in arrays.items()
              if k.startswith("params/")}
    trace_path = _verified(folder, info, TRACE_FILE)
    trace = _read_npz(trace_path, "trace file")
    check_trace(trace, trace_path)
    dt, num_data = float(info["dt"]), int(info["num_data"])
    guide = _setup_guide(model, dt, num_data)
    expected = set(guide._init_locs)
    names = {n for n in params if not n.startswith("conserved_")}
    locs = {n[: -len("_auto_loc")] for n in names if n.endswith("_auto_loc")}
    if locs != expected or (model.learns_conserved
                            and not {"conserved_W", "conserved_b"} <= set(params)):
        raise ValueError(f"{params_path!r} does not match the model in {RUN_FILE}: parameters "
                         f"{sorted(params)}.")
    for name, site in guide._shapes.items():
        shape = tuple(params[f"{name}_auto_loc"].shape)
        if shape != site:
            raise ValueError(f"{params_path!r}: {name} has shape {shape}, the model expects "
                             f"{site}.")
    if fixed is not None and fixed.shape[1:] != (model.phase_dim + 1,) * 2:
        raise ValueError(f"{params_path!r}: model/fixed_generators has shape {fixed.shape}, the "
                         f"model expects (L, {model.phase_dim + 1}, {model.phase_dim + 1}).")
    elbo = MatrixNormalELBO(num_particles=int(info["fit"].get("num_particles", 1)),
                            optimal_prior_variance=model.spec.prior_variance == "optimal")
    return FitResult(model, guide, elbo, params, np.asarray(trace["losses"]), dt, num_data,
                     int(info["steps"]), None, dict(info.get("info", {})),
                     None if "eta_norms" not in trace else np.asarray(trace["eta_norms"]))


@dataclasses.dataclass(frozen=True)
class Run:
    """A run folder opened for analysis: the fit, its data, reference and metrics."""

    folder: str
    info: dict
    result: object
    train: Trajectories | None
    tests: dict
    reference: np.ndarray | None
    reference_names: list | None
    metrics: dict | None

    @property
    def label(self) -> str:
        return self.info.get("label") or self.info["variant"]

    @property
    def meta(self) -> dict:
        return self.info.get("meta", {})


def open_run(folder, result=None) -> Run:
    """:func:`load_run` plus the stored data sets, reference generators and metrics.

    ``result``: the :class:`~noether_ppl.inference.FitResult` that was just saved into
    ``folder`` (e.g. returned by :func:`fit_in_folder`), used instead of rebuilding it."""
    folder = os.fspath(folder)
    info = read_run_info(folder)
    for rel in info["files"]:  # every file checked before anything is built
        _verified(folder, info, rel)
    if result is None:
        result = load_run(folder)
    else:
        stored = _read_npz(os.path.join(folder, PARAMS_FILE), "parameter file")
        names = {k[len("params/"):] for k in stored if k.startswith("params/")}
        if int(result.steps) != int(info["steps"]) or set(result.params) != names or not all(
                np.array_equal(np.asarray(v), stored[f"params/{k}"])
                for k, v in result.params.items()):
            raise ValueError(f"`result` is not the fit saved in {folder!r}.")
    train, tests = None, {}
    for name, rel in info.get("data", {}).items():
        path = _verified(folder, info, rel)
        data = Trajectories.load(path)
        if data.phase_dim != int(info["phase_dim"]):
            raise ValueError(f"{path!r} holds states of dimension {data.phase_dim}, the run has "
                             f"phase dimension {info['phase_dim']}.")
        if name == "train":
            train = data
        else:
            tests[name] = data
    reference = names = None
    if REFERENCE_FILE in info["files"]:
        ref_path = _verified(folder, info, REFERENCE_FILE)
        ref = _read_npz(ref_path, "reference file")
        check_reference(ref, ref_path)
        reference = np.asarray(ref["generators"], np.float64)
        if reference.shape[1] != int(info["phase_dim"]) + 1:
            raise ValueError(f"{ref_path!r}: generators of size {reference.shape[1]}, the run "
                             f"has phase dimension {info['phase_dim']} (expected "
                             f"{int(info['phase_dim']) + 1}).")
        names = [str(n) for n in ref["names"]] if "names" in ref else None
    return Run(folder, info, result, train, tests, reference, names, read_metrics(folder))


# ----------------------------------------------------------------------------- fitting
def _chunk_for(num_steps: int, every: int, progress_bar: bool, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return chunk_size
    target = max(1, num_steps // 50) if progress_bar else every
    target = min(target, every)
    for d in range(target, 0, -1):  # a divisor of `every`: checkpoints land on its multiples
        if every % d == 0:
            return d
    return 1


def fit_in_folder(model, train: Trajectories, folder, *, key: jax.Array, num_steps: int,
                  checkpoint_every: int | None = None, resume: bool = False,
                  tests: dict | None = None, reference=None, reference_names=None,
                  meta: dict | None = None, progress_bar: bool = True,
                  chunk_size: int | None = None, init_params: dict | None = None,
                  **fit_kwargs):
    """:func:`~noether_ppl.inference.fit` into a run folder, with periodic checkpoints.

    Writes ``run.json`` (status "running") and the data first, a checkpoint of the full SVI
    state every ``checkpoint_every`` steps (default: a tenth of the run) and at the end, then
    the finished run (:func:`save_run`). With ``resume=True`` a folder holding a checkpoint of
    the same configuration continues from it (same key, same mini-batches: the result equals
    an uninterrupted run); a complete run is loaded as it is. A folder that already holds a run
    is refused unless ``resume=True``, and a checkpoint of another configuration is refused.

    ``fit_kwargs``: ``batch_size``, ``lr``, ``lr_conserved``, ``schedule``, ``num_particles``,
    ``init_scale``, ``lr_offdiag``. ``init_params``: initial values of parameters by name (e.g.
    a learned η held by ``lr_conserved=0``, :func:`~noether_ppl.inference.held_conserved`);
    part of the configuration, by content.
    On divergence the last finite state is saved with status "diverged" and the
    :class:`~noether_ppl.inference.DivergenceError` is raised.
    A non-finite state is never saved: a checkpoint with non-finite values is refused on
    resume, and a fit that starts from non-finite parameters saves nothing. The folder is
    locked (:func:`~noether_ppl.runs.lock.folder_lock`) while the fit writes into it.
    """
    allowed = {"batch_size", "lr", "lr_conserved", "schedule", "num_particles", "init_scale",
               "lr_offdiag", "runaway_factor"}
    unknown = set(fit_kwargs) - allowed
    if unknown:
        raise ValueError(f"Unknown fit argument(s) {sorted(unknown)}; expected {sorted(allowed)}.")
    if not isinstance(train, Trajectories):
        raise ValueError(f"Expected `train` to be a Trajectories, got {type(train).__name__}.")
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) \
            or not 1 <= num_steps <= MAX_STEPS:
        raise ValueError(f"Expected `num_steps` to be a positive int <= {MAX_STEPS}, got "
                         f"{num_steps!r}.")
    every = max(1, num_steps // 10) if checkpoint_every is None else checkpoint_every
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"Expected `checkpoint_every` to be a positive int, got "
                         f"{checkpoint_every!r}.")
    if init_params is not None and not (
            isinstance(init_params, dict) and all(isinstance(k, str) for k in init_params)):
        raise ValueError(f"Expected `init_params` to be a dict of arrays by parameter name, "
                         f"got {type(init_params).__name__}.")
    if init_params is not None and nonfinite_params(init_params):
        raise ValueError(f"`init_params` {nonfinite_params(init_params)} hold non-finite values; "
                         f"a run starts from finite parameters.")
    folder = os.fspath(folder)
    settings = {"num_steps": int(num_steps), "checkpoint_every": int(every),
                **{k: v for k, v in sorted(fit_kwargs.items())}}
    # only when given, so the fingerprints of runs without them are unchanged
    held = {} if init_params is None else {"init_params": dict(init_params)}
    if held:
        settings["init_params"] = sorted(init_params)
    fp = fingerprint(spec=model.spec.to_dict(), phase_dim=model.phase_dim,
                     generators=model.fixed_generators, train=np.asarray(train.states),
                     dt=train.dt, key=key, num_steps=int(num_steps),
                     fit={k: v for k, v in fit_kwargs.items()}, **held)
    os.makedirs(folder, exist_ok=True)
    with folder_lock(folder):
        return _fit_locked(model, train, folder, key=key, num_steps=int(num_steps), every=every,
                           resume=resume, tests=tests, reference=reference,
                           reference_names=reference_names, meta=meta,
                           progress_bar=progress_bar, chunk_size=chunk_size, held=held,
                           settings=settings, fp=fp, fit_kwargs=fit_kwargs)


def _fit_locked(model, train, folder, *, key, num_steps, every, resume, tests, reference,
                reference_names, meta, progress_bar, chunk_size, held, settings, fp,
                fit_kwargs):
    """:func:`fit_in_folder` after its checks, holding the folder's lock."""
    from ..inference.fit import DivergenceError, fit

    ckpt_path = os.path.join(folder, CHECKPOINT_FILE)
    start, prior_losses, prior_eta = 0, np.zeros(0), None
    if is_run_folder(folder):
        if not resume:
            raise ValueError(f"{folder!r} already holds a run; resume it or choose another "
                             f"folder.")
        info = read_run_info(folder)
        if info.get("fingerprint") != fp:
            raise ValueError(f"{os.path.join(folder, RUN_FILE)!r} was written by a run with a "
                             f"different configuration (model, data, key or optimiser "
                             f"settings); refusing to resume it.")
        if info["status"] == "complete":
            return load_run(folder)
        if os.path.exists(ckpt_path):
            ck = load_checkpoint(ckpt_path, fingerprint=fp)
            start, prior_losses, prior_eta = ck.step, ck.losses, ck.eta_norms
            if start > num_steps:
                raise ValueError(f"Checkpoint {ckpt_path!r} is at step {start}, past "
                                 f"num_steps={num_steps}.")
    if start == 0:
        info = _base_info(model, meta=meta, settings=settings, fp=fp)
        data_files = _data_files(folder, train, tests)
        files = list(data_files.values())
        if reference is not None:
            write_reference(folder, reference, reference_names)
            files.append(REFERENCE_FILE)
        info.update({"status": "running", "steps": 0, "dt": float(train.dt),
                     "num_data": int(train.n_pairs), "data": data_files,
                     "files": {rel: file_sha256(os.path.join(folder, rel)) for rel in files}})
        write_json(os.path.join(folder, RUN_FILE), info)

    def join(prior, new):
        if new is None:
            return None
        return np.concatenate([prior if prior is not None else np.zeros(0), new])

    last = {"step": start}

    def callback(progress):
        if progress.step - last["step"] >= every or progress.step == num_steps:
            save_checkpoint(ckpt_path, progress.state, step=progress.step,
                            losses=join(prior_losses, progress.losses),
                            eta_norms=join(prior_eta, progress.eta_norms), fingerprint=fp)
            last["step"] = progress.step

    def restore(template):
        return load_checkpoint(ckpt_path, template, fingerprint=fp).state

    def finish(result, status):
        result = dataclasses.replace(
            result, losses=join(prior_losses, result.losses),
            eta_norms=join(prior_eta, result.eta_norms),
            info={**result.info, "resumed_from_step": start} if start else result.info)
        save_run(result, folder, meta=meta, settings=settings, status=status, fingerprint=fp)
        return result

    try:
        result = fit(model, train, key=key, num_steps=int(num_steps),
                     init_state=restore if start else None, start_step=start,
                     chunk_size=_chunk_for(num_steps, every, progress_bar, chunk_size),
                     progress_bar=progress_bar, callback=callback, **held, **fit_kwargs)
    except DivergenceError as err:
        bad = nonfinite_params(err.result.params)
        if bad:  # no finite state to keep: the start itself was not finite
            raise ValueError(f"The fit in {folder!r} started from non-finite parameters {bad} "
                             f"(check `init_params`); nothing was saved.") from err
        err.result = finish(err.result, "diverged")
        raise
    return finish(result, "complete")
