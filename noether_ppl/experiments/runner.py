"""Run an experiment: simulate (or read) the data, fit every variant into its run folder with
checkpoints, analyse each run and print the paper-layout table.

Layout of an experiment folder::

    OUT/
      experiment.json   the resolved experiment (every setting after --set), the variants, the
                        data source and the SHA-256 of every data file
      experiment.toml   the experiment file as given (before --set), when it came from a file
      data/*.npz        the data sets (simulated once, or the user's)
      table.txt         the table as printed
      figures/          figures comparing the variants
      <variant>/        one run folder per variant (see noether_ppl.runs.folder)

An experiment folder is a small transactional store. It records what made it (the resolved
experiment, the variants, the data and their digests) and refuses to be reused for anything
else: a new run into a folder that is not empty is refused, naming what is there (another
experiment's settings: the first differing key), unless ``overwrite=True`` moves the old folder
aside. One process writes it at a time (:func:`~noether_ppl.runs.lock.folder_lock`).
``resume=True`` continues it exactly (complete variants are kept, interrupted ones continue
from their checkpoints) and does nothing when every run is complete. An ``OSError`` while the
run is under way (a full disk, a lost permission) is raised as a
:class:`~noether_ppl._io.RunIOError`; every file is written atomically, so the run can then be
resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import jax
import numpy as np

from .._io import (
    RunIOError,
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    check_folder_path,
    check_writable_folder,
    describe_os_error,
)
from ..data import Trajectories
from ..runs.folder import RUN_FILE, file_sha256, is_run_folder, read_json, write_json
from ..runs.lock import LOCK_FILE, folder_lock
from ..runs.schema import EXPERIMENT_KIND, check_experiment_record
from .config import Experiment, source_text

__all__ = ["run_experiment", "ExperimentResult", "table_layout", "EXPERIMENT_FILE",
           "load_user_data", "load_reference", "load_init_conserved", "INIT_CONSERVED_FILE",
           "read_experiment_record"]

EXPERIMENT_FILE = "experiment.json"
SELECTION_FILE = "selection.json"
"""In a ``<variant>-selected`` run folder: what :func:`_select_variants` selected, and why."""

INIT_CONSERVED_FILE = "init_conserved.npz"
"""In ``DIR/data/``: the generators the learned variants started η at (``init_conserved``)."""
TABLE_NUMBER = {"harmonic_oscillator": 1, "coupled_oscillators": 2, "nbody": 3}


@dataclasses.dataclass(frozen=True)
class ExperimentResult:
    """What :func:`run_experiment` produced: the folder, the runs (``{slug: Run}``), their
    metrics and the printed table."""

    folder: str
    experiment: Experiment
    runs: dict
    metrics: dict
    table: str
    already_complete: bool = False
    """True when a resumed experiment was complete: nothing was fitted or written."""


def table_layout(test_names) -> str:
    """The :func:`~noether_ppl.analysis.tables.format_table` layout for these test sets."""
    names = list(test_names)
    if {"test", "moved", "wider"} <= set(names):
        return "table3"
    if names == ["test"]:
        return "table1"
    return "auto"


def table_title(name: str, system_name: str | None) -> str:
    number = TABLE_NUMBER.get(system_name)
    layout = f" (paper Table {number} layout)" if number else ""
    return f"{name}{layout}"


# ----------------------------------------------------------------------------- user data
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


# ----------------------------------------------------------------------------- the run
def _diff(a, b, prefix=""):
    """First differing dotted key between two JSON-like dicts (None if equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
            if d:
                return d
        return None
    return None if a == b else f"{prefix}: {a!r} vs {b!r}"


def _resolve_variants(experiment: Experiment, variants, *, user_data: bool, has_reference: bool,
                      echo) -> list:
    explicit = variants is not None
    names = list(variants) if explicit else list(experiment.variants)
    if not names:
        raise ValueError("Expected at least one variant.")
    if len(set(names)) != len(names):
        raise ValueError(f"Repeated variants in {names}.")
    resolved = []
    for name in names:
        try:
            resolved.append(experiment.variant(name, system=not user_data,
                                               has_reference=has_reference))
        except ValueError:
            if explicit or not user_data:
                raise
            echo(f"note: variant {name!r} of {experiment.name} needs the simulated system's "
                 f"ground truth and is not fitted on your data (give a reference file and "
                 f"variant 'oracle' to fit a fixed symmetry).")
    if not resolved:
        raise ValueError("No variant left to fit.")
    if experiment.inference.select and any(v.kind == "learned" for v in resolved) and not any(
            v.kind == "vanilla" for v in resolved):
        echo("note: selecting the conserved quantities (inference.select, --auto) starts from "
             "what the plain HNN's Hamiltonian conserves: fitting variant 'vanilla' too.")
        resolved.insert(0, experiment.variant("vanilla", system=not user_data,
                                              has_reference=has_reference))
    slugs = [v.slug for v in resolved]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"Variants {names} name the same model twice.")
    return resolved


_SELECT_FIT_ARGS = ("batch_size", "lr", "lr_conserved", "schedule", "num_particles",
                    "init_scale", "lr_offdiag", "runaway_factor")


def _select_variants(resolved, runs, train, out, *, inf, num_steps, fit_settings, key, order,
                     resume, analysed, echo) -> int:
    """``inference.select``: for each learned variant, the discovered start and the selection
    of :func:`~noether_ppl.analysis.select_from_fits` (from the plain HNN's run) into
    ``<variant>-selected`` with ``selection.json``; returns the next table order."""
    from ..analysis.auto import select_from_fits
    from ..runs.folder import open_run, read_run_info, save_run

    hnn = next((runs[v.slug] for v in resolved if v.kind == "vanilla" and v.slug in runs), None)
    for v in resolved:
        if v.kind != "learned" or v.slug not in runs or hnn is None:
            continue
        slug = f"{v.slug}-selected"
        folder = os.path.join(out, slug)
        if resume and is_run_folder(folder) and read_run_info(folder)["status"] == "complete":
            echo(f"{v.label} (selected) ({slug}): complete, kept.")
            runs[slug] = analysed(open_run(folder))
            order += 1
            continue
        steps = inf.select_steps or max(1, num_steps // 4)
        echo(f"Selecting the conserved quantities of {v.label} ({slug}): the plain HNN's "
             f"discovery as a start, then continuation fits of {steps} steps ...")
        kwargs = {k: fit_settings[k] for k in _SELECT_FIT_ARGS if k in fit_settings}
        auto = select_from_fits(hnn.result, runs[v.slug].result, train, key=key,
                                num_steps=num_steps, select_steps=steps, **kwargs)
        echo(str(auto))
        meta = {**runs[v.slug].meta, "variant": slug, "order": order, "selected_from": v.slug,
                "label": f"{v.label} (selected: {auto.dimension})"}
        order += 1
        os.makedirs(folder, exist_ok=True)
        with folder_lock(folder):
            save_run(auto.result, folder, train=train, tests=fit_settings.get("tests"),
                     reference=fit_settings.get("reference"),
                     reference_names=fit_settings.get("reference_names"), meta=meta,
                     settings={**kwargs, "select_steps": steps})
            atomic_write_json(os.path.join(folder, SELECTION_FILE), auto.to_dict())
            runs[slug] = analysed(open_run(folder, result=auto.result))
    return order


def read_experiment_record(path) -> dict:
    """The ``experiment.json`` of an experiment folder, checked against its schema
    (:func:`~noether_ppl.runs.schema.check_experiment_record`)."""
    return check_experiment_record(read_json(path, "experiment file"), path)


def _prepare_data(experiment, out, *, data, tests, system, resume, stored, echo):
    """``(train, tests, data_record)``: read back from ``out/data`` on resume, else simulated
    or the user's, written to ``out/data``."""
    if stored is not None:
        record = stored["data"]
        sets = {}
        for name, entry in record["files"].items():
            if name == "reference":
                continue
            path = os.path.join(out, entry["path"])
            if not os.path.exists(path):
                raise FileNotFoundError(f"Data file {path!r} of the experiment is missing.")
            if file_sha256(path) != entry["sha256"]:
                raise ValueError(f"Data file {path!r} is corrupt or was changed since the run "
                                 f"started (SHA-256 mismatch).")
            sets[name] = Trajectories.load(path)
        train = sets.pop("train")
        if data is not None and data.states.shape != train.states.shape:
            raise ValueError(f"The data given do not match the data of the run in {out!r}.")
        return train, sets, record
    if data is not None:
        train, test_sets = data, dict(tests or {})
        source = "user"
    else:
        data_key, _, _ = experiment.keys()
        sets = {}
        for name, split in experiment.data.items():
            echo(f"Simulating {name}: {split.n_trajectories} trajectories x {split.n_steps} "
                 f"steps of {system.name} (dt = {split.dt}) ...")
            sets[name] = system.simulate(data_key(name), **split.simulate_kwargs())
        train = sets.pop("train")
        test_sets = sets
        source = "simulated"
    files = {}
    for name, t in {"train": train, **test_sets}.items():
        rel = f"data/{name}.npz"
        t.save(os.path.join(out, rel))
        files[name] = {"path": rel, "sha256": file_sha256(os.path.join(out, rel))}
    return train, test_sets, {"source": source, "files": files}


# ----------------------------------------------------------------------------- the folder
def _occupied(out: str, experiment: Experiment, *, variants, user_data: bool) -> str | None:
    """What ``out`` already holds, when that stops a new run from being written into it (None:
    it does not exist or is empty). Refuses a path that is a file or lies under one."""
    check_folder_path(out, "output folder")
    if not os.path.lexists(out):
        return None
    entries = sorted(e for e in os.listdir(out) if e != LOCK_FILE)
    if not entries:
        return None
    from ..runs.folder import _jsonable, read_run_info

    exp_path = os.path.join(out, EXPERIMENT_FILE)
    if os.path.isfile(exp_path):
        try:
            stored = read_experiment_record(exp_path)
        except ValueError as err:
            return f"an experiment file that cannot be read: {err}"
        name = stored["experiment"].get("name")
        diff = _diff(stored["experiment"], _jsonable(experiment.to_dict()))
        if diff:
            return f"a run of experiment {name!r} with other settings: {diff}"
        if variants is not None and list(variants) != list(stored["variants"]):
            return (f"a run of this experiment with variants {stored['variants']}, not "
                    f"{list(variants)}")
        if (stored["data"]["source"] == "user") != user_data:
            return f"a run of this experiment on {stored['data']['source']} data"
        return (f"a run of this experiment with the same settings; continue it with "
                f"`noether-ppl fit --resume {out}` (resume=True)")
    if is_run_folder(out):
        try:
            info = read_run_info(out)
            what = (f"variant {info['variant']!r} of experiment "
                    f"{(info.get('meta') or {}).get('experiment')!r}")
        except ValueError:
            what = "a run"
        return f"the run folder of one model ({what}; {RUN_FILE}), not an experiment folder"
    shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
    return f"other files ({shown})"


def _move_aside(out: str, echo) -> str:
    """Rename the folder ``out`` to ``out.replaced-<time>`` (under its lock, so no other
    process is writing it). Returns the new name."""
    stem = os.path.normpath(out) + ".replaced-" + time.strftime("%Y%m%d-%H%M%S")
    dest, i = stem, 1
    while os.path.lexists(dest):
        dest, i = f"{stem}-{i}", i + 1
    with folder_lock(out):
        os.rename(out, dest)
    with contextlib.suppress(OSError):
        os.remove(os.path.join(dest, LOCK_FILE))
    echo(f"Moved the earlier contents of {out} to {dest} (--overwrite; delete it when it is no "
         f"longer needed).")
    return dest


@contextlib.contextmanager
def _run_io(out: str):
    """Turn an operating-system error while the run is under way into a
    :class:`~noether_ppl._io.RunIOError` that says how to continue."""
    try:
        yield
    except RunIOError:
        raise
    except OSError as err:
        if err.errno is None:  # our own FileNotFoundError & co.: a message about the input
            raise
        if os.path.exists(os.path.join(out, EXPERIMENT_FILE)):
            then = f"continue it with `noether-ppl fit --resume {out}` once this is fixed"
        else:  # it stopped while writing its data, before it was recorded
            then = "start it again with --overwrite once this is fixed"
        raise RunIOError(
            f"{describe_os_error(err)}. The run in {out} stopped; its files are whole (written "
            f"atomically): {then}.", errno=err.errno, path=err.filename) from err


def _complete(out: str, slugs, *, analyze: bool) -> bool:
    """Whether every run of ``slugs`` in ``out`` is complete (and analysed, with the table)."""
    from ..runs.folder import METRICS_FILE, read_run_info

    if analyze and not os.path.isfile(os.path.join(out, "table.txt")):
        return False
    for slug in slugs:
        folder = os.path.join(out, slug)
        if not is_run_folder(folder) or read_run_info(folder)["status"] != "complete":
            return False
        if analyze and not os.path.isfile(os.path.join(folder, METRICS_FILE)):
            return False
    return True


def run_experiment(experiment: Experiment, out, *, variants=None, data: Trajectories | None = None,
                   tests: dict | None = None, reference=None, reference_names=None,
                   data_source: str | None = None, resume: bool = False,
                   overwrite: bool = False, init_conserved=None, progress_bar: bool = True,
                   analyze: bool = True, echo=print) -> ExperimentResult:
    """Fit the variants of ``experiment`` into ``out`` (see the module docstring).

    Parameters
    ----------
    experiment : a validated :class:`~noether_ppl.experiments.Experiment`.
    out : the experiment folder: new or empty, unless ``resume`` or ``overwrite``.
    variants : variant names (default: the experiment's).
    data, tests : your own training trajectories (and named test sets) in place of the
        simulated system; the analysis then compares against ``reference`` or nothing.
    reference, reference_names : reference generators ``(L, M+1, M+1)`` for user data
        (parallelness; the variant ``"oracle"`` fixes them).
    resume : continue the run in ``out``: complete variants are kept, interrupted ones continue
        from their last checkpoint, missing ones start; when every run is complete nothing is
        done (``already_complete`` of the result). The stored configuration must match.
    overwrite : when ``out`` already holds something (another run, other files), move it aside
        to ``out.replaced-<time>`` and start afresh; without it such a folder is refused with
        a ``ValueError`` naming what it holds (for another experiment: the first differing
        setting).
    init_conserved : generators ``(L, M+1, M+1)`` at which the learned variants start η (the
        first ``L <= K`` conserved quantities; the others start at random as usual), e.g. the
        ``generators`` of a ``discovery.json`` from ``noether-ppl discover``
        (:func:`~noether_ppl.models.conserved_params_from_generators`). Saved as
        ``data/init_conserved.npz`` and used again on resume.
    analyze : evaluate each run and write metrics, the ArviZ file and figures.

    Raises ``ValueError`` (and ``FileNotFoundError``) for bad input before anything is written,
    :class:`~noether_ppl.runs.lock.FolderLockedError` when another process writes ``out``,
    :class:`~noether_ppl._io.RunIOError` for an operating-system error during the run and
    :class:`~noether_ppl.inference.DivergenceError` when a fit diverges.
    """
    if not isinstance(experiment, Experiment):
        raise ValueError(f"Expected `experiment` to be an Experiment, got "
                         f"{type(experiment).__name__}.")
    if data is not None and not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    if tests and data is None:
        raise ValueError("`tests` are for your own data (`data=`); simulated test sets come "
                         "from the experiment's [data] tables.")
    if resume and overwrite:
        raise ValueError("`overwrite` starts a run afresh and `resume` continues one; give one "
                         "of them.")
    out = os.fspath(out)
    with contextlib.ExitStack() as stack:
        return _run_experiment(stack, experiment, out, variants=variants, data=data,
                               tests=tests, reference=reference,
                               reference_names=reference_names, data_source=data_source,
                               resume=resume, overwrite=overwrite,
                               init_conserved=init_conserved, progress_bar=progress_bar,
                               analyze=analyze, echo=echo)


def _run_experiment(stack, experiment, out, *, variants, data, tests, reference,
                    reference_names, data_source, resume, overwrite, init_conserved,
                    progress_bar, analyze, echo):
    from ..inference.fit import DivergenceError
    from ..inference.refit import held_conserved
    from ..inference.restarts import refit_record, refit_summary
    from ..models import (
        NoetherRazor,
        conserved_params_from_generators,
        quadratic_from_generators,
    )
    from ..runs.analysis import analyze_run, comparison_figures, table_row
    from ..runs.folder import _jsonable, fit_in_folder, open_run, read_run_info

    user_data = data is not None
    exp_path = os.path.join(out, EXPERIMENT_FILE)
    stored = occupied = None
    if resume:
        if not os.path.exists(exp_path):
            if is_run_folder(out):
                raise ValueError(f"Nothing to resume in {out!r}: it is the run folder of one "
                                 f"model; resume its experiment folder (the folder above it).")
            raise FileNotFoundError(f"Nothing to resume: {exp_path!r} does not exist.")
        check_writable_folder(out, "run folder")
        stack.enter_context(folder_lock(out))
        stored = read_experiment_record(exp_path)
        diff = _diff(stored["experiment"], _jsonable(experiment.to_dict()))  # as stored
        if diff:
            raise ValueError(f"{exp_path!r} was run with a different configuration ({diff}); "
                             f"refusing to resume it.")
        if (stored["data"]["source"] == "user") != user_data and data is not None:
            raise ValueError(f"{out!r} was run on {stored['data']['source']} data.")
        user_data = stored["data"]["source"] == "user"
        if variants is None:
            variants = stored["variants"]
    else:
        occupied = _occupied(out, experiment, variants=variants, user_data=user_data)
        if occupied is not None and not overwrite:
            raise ValueError(f"{out!r} already holds {occupied}. Choose another output folder, "
                             f"or give --overwrite (overwrite=True) to move it aside and start "
                             f"again.")
    init_path = os.path.join(out, "data", INIT_CONSERVED_FILE)
    if stored is not None and "init_conserved" in stored["data"]:
        saved, _ = load_reference(init_path)
        if init_conserved is not None and not np.array_equal(
                np.asarray(init_conserved, np.float64), saved):
            raise ValueError(f"{out!r} was run with other initial conserved quantities "
                             f"({init_path!r}); refusing to resume it with these.")
        init_conserved = saved
    elif stored is not None and init_conserved is not None:
        raise ValueError(f"{out!r} was run without initial conserved quantities; refusing to "
                         f"resume it with them.")
    if user_data and reference is None and stored is not None:
        ref_path = os.path.join(out, "data", "reference.npz")
        if os.path.exists(ref_path):
            reference, reference_names = load_reference(ref_path)
    if reference is not None and not user_data:
        raise ValueError("A reference file is for your own data; a simulated system brings "
                         "its ground truth.")
    resolved = _resolve_variants(experiment, variants, user_data=user_data,
                                 has_reference=reference is not None, echo=echo)
    # Everything is checked before anything is written.
    specs = {v.slug: experiment.spec_for(v) for v in resolved}
    if init_conserved is not None:
        init_conserved = np.asarray(init_conserved, np.float64)
        learned = [v for v in resolved if v.kind == "learned"]
        if not learned:
            raise ValueError("Initial conserved quantities are for the learned variants; none "
                             f"of {[v.name for v in resolved]} is one.")
        phase_dim = data.phase_dim if data is not None else experiment.make_system().phase_dim
        if init_conserved.shape[-1] != phase_dim + 1:
            raise ValueError(f"The initial conserved quantities are generators of size "
                             f"{init_conserved.shape[-1]}, the phase space has dimension "
                             f"{phase_dim} (expected {phase_dim + 1}).")
        quadratic_from_generators(init_conserved)  # their form, before anything is written
        for v in learned:
            K = specs[v.slug].n_conserved
            if len(init_conserved) > K:
                raise ValueError(f"{len(init_conserved)} initial conserved quantities, but the "
                                 f"variant {v.name!r} learns K = {K} (model.n_conserved).")
    inf = experiment.inference
    if data is not None:
        for name, t in (tests or {}).items():
            if not isinstance(t, Trajectories) or t.phase_dim != data.phase_dim:
                raise ValueError(f"Test set {name!r} must be Trajectories with the phase "
                                 f"dimension of the data ({data.phase_dim}).")
        if inf.batch_size is not None and inf.batch_size > data.n_trajectories:
            raise ValueError(f"inference.batch_size = {inf.batch_size} is more than the "
                             f"{data.n_trajectories} training trajectories.")
    if reference is not None and data is not None and data.phase_dim + 1 != reference.shape[1]:
        raise ValueError(f"The reference generators are {reference.shape[1]}x"
                         f"{reference.shape[2]}, the data have phase dimension "
                         f"{data.phase_dim} (expected {data.phase_dim + 1}x"
                         f"{data.phase_dim + 1}).")
    slugs = []
    for v in resolved:
        slugs.append(v.slug)
        if inf.refit and v.kind == "learned":
            slugs.append(f"{v.slug}-refit")
        if inf.select and v.kind == "learned":
            slugs.append(f"{v.slug}-selected")
    if stored is not None and _complete(out, slugs, analyze=analyze):
        _prepare_data(experiment, out, data=data, tests=tests, system=None, resume=True,
                      stored=stored, echo=echo)  # its data, checked
        echo(f"{out} is complete ({', '.join(slugs)}: every run finished); nothing to do. "
             f"Rebuild the table and figures with: noether-ppl report {out}")
        runs = {slug: open_run(os.path.join(out, slug)) for slug in slugs}
        table = ""
        if analyze:
            with open(os.path.join(out, "table.txt"), encoding="utf-8") as f:
                table = f.read().strip()
        return ExperimentResult(out, experiment, runs,
                                {slug: run.metrics for slug, run in runs.items()}, table,
                                already_complete=True)
    system = None if user_data else experiment.make_system()
    if not resume:  # the folder: a bad path here is the user's (plain OSError, ValueError)
        if occupied is not None:
            _move_aside(out, echo)
        check_writable_folder(out, "output folder")  # (or the parent it will be made in)
        os.makedirs(out, exist_ok=True)
        stack.enter_context(folder_lock(out))
        if os.path.exists(exp_path):  # another process started here in the meantime
            raise ValueError(f"{out!r} already holds an experiment run (started meanwhile by "
                             f"another process); choose another output folder.")
    stack.enter_context(_run_io(out))  # from here on an OSError is a failure of the run
    train, test_sets, record = _prepare_data(experiment, out, data=data, tests=tests,
                                             system=system, resume=resume, stored=stored,
                                             echo=echo)
    if stored is None:
        if data_source is not None:
            record["user_file"] = data_source
        if reference is not None:
            from ..runs.folder import write_reference

            ref_path = write_reference(os.path.join(out, "data"), reference, reference_names)
            record["files"]["reference"] = {"path": "data/reference.npz",
                                            "sha256": file_sha256(ref_path)}
        if init_conserved is not None:
            with atomic_open(init_path) as f:
                np.savez(f, generators=init_conserved)
            record["init_conserved"] = {"path": f"data/{INIT_CONSERVED_FILE}",
                                        "sha256": file_sha256(init_path)}
        write_json(exp_path, {
            "kind": EXPERIMENT_KIND, "version": 1, "experiment": experiment.to_dict(),
            "source": experiment.source, "overrides": list(experiment.overrides),
            "variants": [v.name for v in resolved], "data": record,
        })
        text = source_text(experiment)
        if text is not None:
            atomic_write_text(os.path.join(out, "experiment.toml"), text)

    if reference is None and system is not None:
        reference, reference_names = system.generators(), system.generator_names()
    num_steps = inf.steps_for(train.n_trajectories)
    _, k_fit, k_eval = experiment.keys()
    an = experiment.analysis
    # optional settings only when set, so run.json and the fingerprint are unchanged
    fit_settings = dict(
        num_steps=num_steps, checkpoint_every=inf.checkpoint_interval(num_steps),
        resume=resume, tests=test_sets, reference=reference, reference_names=reference_names,
        progress_bar=progress_bar, chunk_size=inf.chunk_size, batch_size=inf.batch_size,
        lr=inf.lr, lr_conserved=inf.lr_conserved, schedule=inf.schedule,
        num_particles=inf.num_particles,
        **{k: v for k, v in (("init_scale", inf.init_scale), ("lr_offdiag", inf.lr_offdiag),
                             ("runaway_factor", inf.runaway_factor))
           if v is not None})

    def analysed(run):
        if not analyze or run.metrics is not None:
            return run
        metrics_v = analyze_run(
            run, key=k_eval, system=system, threshold=an.threshold,
            min_parallelness=an.min_parallelness, arviz_samples=an.arviz_samples,
            figures=an.figures, num_samples=an.num_samples, num_repeats=an.num_repeats,
            rollouts=an.rollouts, rollout_steps=an.rollout_steps,
            rollout_trajectories=an.rollout_trajectories)
        return dataclasses.replace(run, metrics=metrics_v)

    def fitting(folder, name, text):
        """Say what is done with the run ``name`` in ``folder``: kept when it is complete."""
        if resume and is_run_folder(folder):
            info = read_run_info(folder)
            if info["status"] == "complete":
                echo(f"{name}: complete ({info['steps']} steps), kept.")
                return
        echo(text)

    runs, order = {}, 0
    for v in resolved:
        folder = os.path.join(out, v.slug)
        spec = specs[v.slug]
        gens = None
        if v.kind == "fixed":
            gens = system.generators(v.generators) if system is not None else reference
        model = NoetherRazor(spec, phase_dim=train.phase_dim, generators=gens)
        label = v.label
        if init_conserved is not None and v.kind == "learned":
            label += f" (η started at {len(init_conserved)} given)"
        meta = {"experiment": experiment.name, "variant": v.name, "label": label,
                "order": order, "system": None if system is None else dict(experiment.system),
                "analysis": dataclasses.asdict(an), "data_source": record["source"]}
        order += 1
        fitting(folder, f"{label} ({v.slug})", f"Fitting {label} ({v.slug}): {num_steps} "
                                               f"steps, K = {model.n_conserved} ...")
        start = {}
        if init_conserved is not None and v.kind == "learned":
            start["init_params"] = conserved_params_from_generators(
                init_conserved, spec.n_conserved, key=jax.random.fold_in(k_fit, 1),
                scale=spec.conserved_init_scale, dtype=spec.dtype)
        os.makedirs(folder, exist_ok=True)
        with folder_lock(folder):  # the fit and its analysis
            result = fit_in_folder(model, train, folder, key=k_fit, meta=meta, **fit_settings,
                                   **start)
            runs[v.slug] = analysed(open_run(folder, result=result))
        if inf.refit and v.kind == "learned":
            slug = f"{v.slug}-refit"
            refit_folder = os.path.join(out, slug)
            meta = {**meta, "variant": slug, "label": f"{label} (refit)", "order": order,
                    "refit_of": v.slug}
            order += 1
            fitting(refit_folder, f"{label} (refit) ({slug})",
                    f"Refitting the posterior of {v.label} at its learned conserved quantities "
                    f"({slug}): {num_steps} steps ...")
            settings = {**fit_settings, **held_conserved(result)}
            if inf.refit_lr_offdiag is not None:
                settings["lr_offdiag"] = inf.refit_lr_offdiag
            os.makedirs(refit_folder, exist_ok=True)
            with folder_lock(refit_folder):
                try:
                    second = fit_in_folder(model, train, refit_folder, key=k_fit, meta=meta,
                                           **settings)
                except DivergenceError as err:
                    second = None
                    echo(f"The refit of {v.label} diverged at step {err.step}; its last finite "
                         f"state is in {refit_folder!r}, left out of the table.")
                else:
                    runs[slug] = analysed(open_run(refit_folder, result=second))
            echo(refit_summary(v.label, refit_record(result, second),
                               n_conserved=model.n_conserved, kept=False))
    if inf.select:
        order = _select_variants(resolved, runs, train, out, inf=inf, num_steps=num_steps,
                                 fit_settings=fit_settings, key=jax.random.fold_in(k_fit, 2),
                                 order=order, resume=resume, analysed=analysed, echo=echo)
    metrics = {slug: run.metrics for slug, run in runs.items()}

    table = ""
    if analyze:
        from ..analysis.tables import format_table

        rows = {run.label: table_row(metrics[slug]) for slug, run in runs.items()}
        table = format_table(rows, table_title(experiment.name, experiment.system["name"]
                                               if system is not None else None),
                             layout=table_layout(test_sets))
        atomic_write_text(os.path.join(out, "table.txt"), table + "\n")
        if an.figures:
            comparison_figures(list(runs.values()), os.path.join(out, "figures"), system=system)
    return ExperimentResult(out, experiment, runs, metrics, table)
