"""Fitting into a run folder: :func:`fit_in_folder` writes ``run.json`` (status "running") and
the data first, checkpoints the full SVI state as it goes, and saves the finished (or diverged)
run with :func:`~noether_ppl.runs.folder.save_run`; a resumed fit continues from its last
checkpoint and equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import numpy as np

from ..data import Trajectories
from .checkpoint import fingerprint, load_checkpoint, save_checkpoint
from .files import (
    CHECKPOINT_FILE,
    REFERENCE_FILE,
    RUN_FILE,
    _base_info,
    _data_files,
    file_sha256,
    is_run_folder,
    nonfinite_params,
    read_run_info,
    write_json,
    write_reference,
)
from .folder import load_run, save_run
from .lock import folder_lock

__all__ = ["fit_in_folder", "MAX_STEPS"]

MAX_STEPS = 2**31 - 1
"""The most steps a run can take (steps are int32 in JAX)."""


def _chunk_for(num_steps: int, every: int, progress_bar: bool, chunk_size: int | None) -> int:
    if chunk_size is not None:
        return chunk_size
    target = max(1, num_steps // 50) if progress_bar else every
    target = min(target, every)
    for d in range(target, 0, -1):  # a divisor of `every`: checkpoints land on its multiples
        if every % d == 0:
            return d
    return 1


def _fit_kwargs_allowed() -> set:
    """The settings ``fit_in_folder`` takes as ``**fit_kwargs``: the fields of
    :class:`~noether_ppl.inference.FitSettings` it does not name as parameters of its own."""
    import inspect

    from ..inference.settings import fit_setting_names

    own = inspect.signature(fit_in_folder).parameters
    return {name for name in fit_setting_names() if name not in own}


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

    ``fit_kwargs``: the other settings of :class:`~noether_ppl.inference.FitSettings`
    (``batch_size``, ``lr``, ...), recorded in ``run.json`` and the configuration as given;
    ``chunk_size`` only groups the steps. ``init_params``: initial values of parameters by
    name (e.g. a learned η held by ``lr_conserved=0``,
    :func:`~noether_ppl.inference.held_conserved`); part of the configuration, by content.
    On divergence the last finite state is saved with status "diverged" and the
    :class:`~noether_ppl.inference.DivergenceError` is raised.
    A non-finite state is never saved: a checkpoint with non-finite values is refused on
    resume, and a fit that starts from non-finite parameters saves nothing. The folder is
    locked (:func:`~noether_ppl.runs.lock.folder_lock`) while the fit writes into it.
    ``run.json`` records the fit's seconds in this session, compilation and checkpoints
    included (``timing.fit_s``, :mod:`~noether_ppl.runs.timing`).
    """
    allowed = _fit_kwargs_allowed()
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
    from ..inference.settings import FitSettings

    # the settings' own checks (those of `fit`), before anything is written
    FitSettings(num_steps=num_steps, chunk_size=chunk_size, **fit_kwargs)
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

    started = time.perf_counter()  # the fit's seconds (this session's) go into run.json
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
        save_run(result, folder, meta=meta, settings=settings, status=status, fingerprint=fp,
                 timing={"fit_s": round(time.perf_counter() - started, 3)})
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
