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
a non-finite value. The file names and readers are in :mod:`~noether_ppl.runs.files`; fitting
into a folder with checkpoints is :func:`~noether_ppl.runs.fitting.fit_in_folder`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import jax.numpy as jnp
import numpy as np

from ..data import Trajectories
from .checkpoint import _read_npz
from .files import (
    CHECKPOINT_FILE,
    FIGURES_DIR,
    METRICS_FILE,
    PARAMS_FILE,
    REFERENCE_FILE,
    RUN_FILE,
    TRACE_FILE,
    _base_info,
    _data_files,
    _verified,
    _write_npz,
    file_sha256,
    is_run_folder,
    jsonable,
    nonfinite_params,
    read_metrics,
    read_run_info,
    write_json,
    write_reference,
)
from .schema import check_params, check_reference, check_trace

__all__ = ["Run", "save_run", "load_run", "open_run"]


def save_run(result, folder, *, train: Trajectories | None = None, tests: dict | None = None,
             reference=None, reference_names=None, meta: dict | None = None,
             settings: dict | None = None, status: str = "complete",
             fingerprint: str | None = None, timing: dict | None = None) -> str:
    """Write ``result`` (a :class:`~noether_ppl.inference.FitResult`) into ``folder``.

    ``train`` and ``tests`` (``{name: Trajectories}``) are stored under ``data/``;
    ``reference`` generators (and ``reference_names``) in ``reference.npz``; ``meta`` (e.g. the
    experiment name and the variant's label) and ``settings`` (fit arguments) in ``run.json``.
    Every file is written atomically; ``run.json`` last, with the SHA-256 of every other file
    and ``timing`` (where the run's time went, e.g. ``{"fit_s": 12.3}``;
    :mod:`~noether_ppl.runs.timing`) when given. Returns the folder.
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
        "info": jsonable(dict(result.info)),
        "data": data_files,
        "files": {rel: file_sha256(os.path.join(folder, rel)) for rel in files},
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    if timing is not None:
        info["timing"] = jsonable(dict(timing))
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
    ``folder`` (e.g. returned by :func:`~noether_ppl.runs.fitting.fit_in_folder`), used
    instead of rebuilding it."""
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
