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
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from .._io import atomic_open, atomic_write_text
from ..data import Trajectories
from ..runs.folder import file_sha256, read_json, write_json
from .config import Experiment, source_text

__all__ = ["run_experiment", "ExperimentResult", "table_layout", "EXPERIMENT_FILE",
           "load_user_data", "load_reference", "load_init_conserved", "INIT_CONSERVED_FILE"]

EXPERIMENT_FILE = "experiment.json"
INIT_CONSERVED_FILE = "init_conserved.npz"
"""In ``DIR/data/``: the generators the learned variants started η at (``init_conserved``)."""
EXPERIMENT_KIND = "noether-ppl experiment"
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
    G = np.asarray(G, dtype=np.float64)
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
    slugs = [v.slug for v in resolved]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"Variants {names} name the same model twice.")
    return resolved


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


def run_experiment(experiment: Experiment, out, *, variants=None, data: Trajectories | None = None,
                   tests: dict | None = None, reference=None, reference_names=None,
                   data_source: str | None = None, resume: bool = False,
                   init_conserved=None, progress_bar: bool = True, analyze: bool = True,
                   echo=print) -> ExperimentResult:
    """Fit the variants of ``experiment`` into ``out`` (see the module docstring).

    Parameters
    ----------
    experiment : a validated :class:`~noether_ppl.experiments.Experiment`.
    out : the experiment folder.
    variants : variant names (default: the experiment's).
    data, tests : your own training trajectories (and named test sets) in place of the
        simulated system; the analysis then compares against ``reference`` or nothing.
    reference, reference_names : reference generators ``(L, M+1, M+1)`` for user data
        (parallelness; the variant ``"oracle"`` fixes them).
    resume : continue the run in ``out``: complete variants are kept, interrupted ones continue
        from their last checkpoint, missing ones start. The stored configuration must match.
    init_conserved : generators ``(L, M+1, M+1)`` at which the learned variants start η (the
        first ``L <= K`` conserved quantities; the others start at random as usual), e.g. the
        ``generators`` of a ``discovery.json`` from ``noether-ppl discover``
        (:func:`~noether_ppl.models.conserved_params_from_generators`). Saved as
        ``data/init_conserved.npz`` and used again on resume.
    analyze : evaluate each run and write metrics, the ArviZ file and figures.
    """
    from ..inference.fit import DivergenceError
    from ..inference.refit import held_conserved
    from ..inference.restarts import refit_record, refit_summary
    from ..models import (
        NoetherRazor,
        conserved_params_from_generators,
        quadratic_from_generators,
    )
    from ..runs.analysis import analyze_run, comparison_figures, table_row
    from ..runs.folder import _jsonable, fit_in_folder, open_run

    if not isinstance(experiment, Experiment):
        raise ValueError(f"Expected `experiment` to be an Experiment, got "
                         f"{type(experiment).__name__}.")
    if data is not None and not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    if tests and data is None:
        raise ValueError("`tests` are for your own data (`data=`); simulated test sets come "
                         "from the experiment's [data] tables.")
    out = os.fspath(out)
    user_data = data is not None
    exp_path = os.path.join(out, EXPERIMENT_FILE)
    stored = None
    if os.path.exists(exp_path):
        if not resume:
            raise ValueError(f"{out!r} already holds an experiment run; resume it or choose "
                             f"another output folder.")
        stored = read_json(exp_path, "experiment file")
        if stored.get("kind") != EXPERIMENT_KIND or "experiment" not in stored \
                or "data" not in stored:
            raise ValueError(f"{exp_path!r} is not a noether-ppl experiment file.")
        diff = _diff(stored["experiment"], _jsonable(experiment.to_dict()))  # as stored
        if diff:
            raise ValueError(f"{exp_path!r} was run with a different configuration ({diff}); "
                             f"refusing to resume it.")
        if (stored["data"]["source"] == "user") != user_data and data is not None:
            raise ValueError(f"{out!r} was run on {stored['data']['source']} data.")
        user_data = stored["data"]["source"] == "user"
        if variants is None:
            variants = stored["variants"]
    elif resume:
        raise FileNotFoundError(f"Nothing to resume: {exp_path!r} does not exist.")
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
    system = None if user_data else experiment.make_system()
    os.makedirs(out, exist_ok=True)
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
        echo(f"Fitting {label} ({v.slug}): {num_steps} steps, K = {model.n_conserved} ...")
        start = {}
        if init_conserved is not None and v.kind == "learned":
            start["init_params"] = conserved_params_from_generators(
                init_conserved, spec.n_conserved, key=jax.random.fold_in(k_fit, 1),
                scale=spec.conserved_init_scale, dtype=spec.dtype)
        result = fit_in_folder(model, train, folder, key=k_fit, meta=meta, **fit_settings,
                               **start)
        runs[v.slug] = analysed(open_run(folder, result=result))
        if inf.refit and v.kind == "learned":
            slug = f"{v.slug}-refit"
            meta = {**meta, "variant": slug, "label": f"{label} (refit)", "order": order,
                    "refit_of": v.slug}
            order += 1
            echo(f"Refitting the posterior of {v.label} at its learned conserved quantities "
                 f"({slug}): {num_steps} steps ...")
            settings = {**fit_settings, **held_conserved(result)}
            if inf.refit_lr_offdiag is not None:
                settings["lr_offdiag"] = inf.refit_lr_offdiag
            try:
                second = fit_in_folder(model, train, os.path.join(out, slug), key=k_fit,
                                       meta=meta, **settings)
            except DivergenceError as err:
                second = None
                echo(f"The refit of {v.label} diverged at step {err.step}; its last finite "
                     f"state is in {os.path.join(out, slug)!r}, left out of the table.")
            else:
                runs[slug] = analysed(open_run(os.path.join(out, slug), result=second))
            echo(refit_summary(v.label, refit_record(result, second),
                               n_conserved=model.n_conserved, kept=False))
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
