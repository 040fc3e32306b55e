"""Run an experiment: simulate (or read) the data, fit every variant into its run folder with
checkpoints, analyse each run and print the paper-layout table.

Layout of an experiment folder::

    OUT/
      experiment.json   the resolved experiment (every setting after --set), the variants, the
                        data source, the SHA-256 of every data file and, once the run is
                        done, where its time went ("timing": data, fits, analysis, I/O)
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

:func:`run_experiment` runs the steps: the folder and what it already holds
(:mod:`~noether_ppl.experiments.store`), the checks of every input before anything is written,
the data and the record, the fits (:mod:`~noether_ppl.experiments.fitting`) and the table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time

import numpy as np

from .._io import atomic_open, atomic_write_text, check_writable_folder
from ..data import Trajectories
from ..runs.files import file_sha256, is_run_folder, jsonable, write_json
from ..runs.lock import folder_lock
from ..runs.schema import EXPERIMENT_KIND
from ..runs.timing import PhaseTimer, record_run_timing, split_line
from ..runs.timing import summary as timing_summary
from .config import Experiment, source_text
from .fitting import VariantFits
from .inputs import load_reference
from .store import (
    EXPERIMENT_FILE,
    INIT_CONSERVED_FILE,
    first_difference,
    is_complete,
    move_aside,
    prepare_data,
    read_experiment_record,
    run_io,
    what_occupies,
)
from .variants import resolve_variants

__all__ = ["run_experiment", "ExperimentResult"]


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
    timing: dict | None = None
    """Where the time went (also in ``experiment.json``): ``simulate_s``, ``fit_s``,
    ``analysis_s`` (its parts under ``analysis``), ``io_s``, ``wall_s``
    (:mod:`~noether_ppl.runs.timing`)."""



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
    """The steps of :func:`run_experiment`, with the folder's lock held on ``stack``."""
    timer = PhaseTimer()
    stored, occupied, user_data, variants = _open_folder(
        stack, experiment, out, variants=variants, data=data, resume=resume,
        overwrite=overwrite)
    init_conserved, reference, reference_names = _stored_inputs(
        out, stored, user_data=user_data, init_conserved=init_conserved, reference=reference,
        reference_names=reference_names)
    resolved = resolve_variants(experiment, variants, user_data=user_data,
                                has_reference=reference is not None, echo=echo)
    # Everything is checked before anything is written.
    specs = {v.slug: experiment.spec_for(v) for v in resolved}
    init_conserved = _check_inputs(experiment, resolved, specs, init_conserved=init_conserved,
                                   data=data, tests=tests, reference=reference)
    slugs = _slugs(resolved, experiment.inference)
    if stored is not None and is_complete(out, slugs, analyze=analyze):
        return _already_complete(experiment, out, slugs, data=data, tests=tests, stored=stored,
                                 analyze=analyze, echo=echo)
    system = None if user_data else experiment.make_system()
    if not resume:  # the folder: a bad path here is the user's (plain OSError, ValueError)
        _start_folder(stack, out, occupied, echo)
    stack.enter_context(run_io(out))  # from here on an OSError is a failure of the run
    with timer("simulate_s"):  # simulated (or the user's) and written, or read back on resume
        train, test_sets, record = prepare_data(experiment, out, data=data, tests=tests,
                                                system=system, resume=resume, stored=stored,
                                                echo=echo)
    if stored is None:
        with timer("io_s"):
            _write_record(experiment, out, record, resolved, data_source=data_source,
                          reference=reference, reference_names=reference_names,
                          init_conserved=init_conserved)
    if reference is None and system is not None:
        reference, reference_names = system.generators(), system.generator_names()
    fits = _TimedFits(experiment, out, train, test_sets, system, reference, reference_names,
                      specs, init_conserved, record["source"], resume, analyze, progress_bar,
                      echo)
    start = time.perf_counter()
    runs = fits.fit_all(resolved)
    # everything fit_all did outside the analyses (and their I/O) is fitting
    timer.add("fit_s", time.perf_counter() - start - sum(fits.timer.seconds.values()))
    timer.merge(fits.timer.seconds)
    metrics = {slug: run.metrics for slug, run in runs.items()}
    table = ""
    if analyze:
        table = _write_table(experiment, out, runs, metrics, system=system, test_sets=test_sets,
                             timer=timer)
    timing = _record_timing(out, timer)
    echo(split_line(timing))
    return ExperimentResult(out, experiment, runs, metrics, table, timing=timing)


@dataclasses.dataclass
class _TimedFits(VariantFits):
    """:class:`~noether_ppl.experiments.fitting.VariantFits` that adds up the seconds of every
    analysis (by phase, in ``timer``) and records each run's split in its ``run.json``."""

    timer: PhaseTimer = dataclasses.field(default_factory=PhaseTimer)

    def analysed(self, run):
        if not self.analyze or run.metrics is not None:
            return super().analysed(run)
        run = super().analysed(run)
        split = run.metrics.get("timing") or {}
        self.timer.merge(split)
        with self.timer("io_s"):
            record_run_timing(run.folder, analysis=split)
        return run


def _record_timing(out, timer: PhaseTimer) -> dict:
    """The split of the whole run (:func:`~noether_ppl.runs.timing.summary`), added to
    ``experiment.json`` as ``"timing"``; returns it."""
    path = os.path.join(out, EXPERIMENT_FILE)
    with timer("io_s"):
        record = read_experiment_record(path)
        timing = timing_summary(timer)
        record["timing"] = timing
        write_json(path, record)
    return timing


def _open_folder(stack, experiment, out, *, variants, data, resume, overwrite):
    """``(stored, occupied, user_data, variants)``: on resume the stored record (checked against
    ``experiment``, the folder locked); else what ``out`` holds, refused without
    ``overwrite``."""
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
        diff = first_difference(stored["experiment"], jsonable(experiment.to_dict()))  # stored
        if diff:
            raise ValueError(f"{exp_path!r} was run with a different configuration ({diff}); "
                             f"refusing to resume it.")
        if (stored["data"]["source"] == "user") != user_data and data is not None:
            raise ValueError(f"{out!r} was run on {stored['data']['source']} data.")
        user_data = stored["data"]["source"] == "user"
        if variants is None:
            variants = stored["variants"]
    else:
        occupied = what_occupies(out, experiment, variants=variants, user_data=user_data)
        if occupied is not None and not overwrite:
            raise ValueError(f"{out!r} already holds {occupied}. Choose another output folder, "
                             f"or give --overwrite (overwrite=True) to move it aside and start "
                             f"again.")
    return stored, occupied, user_data, variants


def _stored_inputs(out, stored, *, user_data, init_conserved, reference, reference_names):
    """``(init_conserved, reference, reference_names)``, those of a resumed run read back from
    ``out/data`` (and given ones checked against them)."""
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
    return init_conserved, reference, reference_names


def _check_inputs(experiment, resolved, specs, *, init_conserved, data, tests, reference):
    """Check the initial conserved quantities, the user's data sets and the reference against
    the variants and each other; returns ``init_conserved`` as float64 (or None)."""
    from ..models import quadratic_from_generators

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
    return init_conserved


def _slugs(resolved, inf) -> list:
    """The run folders of the variants, in order: each learned one followed by its refit and
    its selection (when ``inference`` asks for them)."""
    slugs = []
    for v in resolved:
        slugs.append(v.slug)
        if inf.refit and v.kind == "learned":
            slugs.append(f"{v.slug}-refit")
        if inf.select and v.kind == "learned":
            slugs.append(f"{v.slug}-selected")
    return slugs


def _already_complete(experiment, out, slugs, *, data, tests, stored, analyze, echo):
    """A resumed run whose runs are all complete: its data checked, nothing written."""
    from ..runs.folder import open_run

    prepare_data(experiment, out, data=data, tests=tests, system=None, resume=True,
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


def _start_folder(stack, out, occupied, echo):
    """A new run: move what ``out`` holds aside (``overwrite``), make it and lock it."""
    if occupied is not None:
        move_aside(out, echo)
    check_writable_folder(out, "output folder")  # (or the parent it will be made in)
    os.makedirs(out, exist_ok=True)
    stack.enter_context(folder_lock(out))
    if os.path.exists(os.path.join(out, EXPERIMENT_FILE)):  # another process started meanwhile
        raise ValueError(f"{out!r} already holds an experiment run (started meanwhile by "
                         f"another process); choose another output folder.")


def _write_record(experiment, out, record, resolved, *, data_source, reference,
                  reference_names, init_conserved):
    """``experiment.json`` (and the reference, the initial η and the experiment file as given)
    of a new run."""
    if data_source is not None:
        record["user_file"] = data_source
    if reference is not None:
        from ..runs.files import write_reference

        ref_path = write_reference(os.path.join(out, "data"), reference, reference_names)
        record["files"]["reference"] = {"path": "data/reference.npz",
                                        "sha256": file_sha256(ref_path)}
    if init_conserved is not None:
        init_path = os.path.join(out, "data", INIT_CONSERVED_FILE)
        with atomic_open(init_path) as f:
            np.savez(f, generators=init_conserved)
        record["init_conserved"] = {"path": f"data/{INIT_CONSERVED_FILE}",
                                    "sha256": file_sha256(init_path)}
    write_json(os.path.join(out, EXPERIMENT_FILE), {
        "kind": EXPERIMENT_KIND, "version": 1, "experiment": experiment.to_dict(),
        "source": experiment.source, "overrides": list(experiment.overrides),
        "variants": [v.name for v in resolved], "data": record,
    })
    text = source_text(experiment)
    if text is not None:
        atomic_write_text(os.path.join(out, "experiment.toml"), text)


def _write_table(experiment, out, runs, metrics, *, system, test_sets, timer) -> str:
    """The paper-layout table (``table.txt``) and the comparison figures; returns the table."""
    from ..analysis.tables import format_table, table_layout, table_title
    from ..runs.analysis import comparison_figures, table_row

    with timer("io_s"):
        rows = {run.label: table_row(metrics[slug]) for slug, run in runs.items()}
        table = format_table(rows, table_title(experiment.name, experiment.system["name"]
                                               if system is not None else None),
                             layout=table_layout(test_sets))
        atomic_write_text(os.path.join(out, "table.txt"), table + "\n")
    if experiment.analysis.figures:
        with timer("figures_s"):
            comparison_figures(list(runs.values()), os.path.join(out, "figures"), system=system)
    return table
