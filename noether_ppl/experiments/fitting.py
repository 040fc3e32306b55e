"""Fitting the variants of an experiment, each into its run folder under the experiment folder:
the model of each variant (:func:`~noether_ppl.runs.fitting.fit_in_folder`, with checkpoints;
a complete run is kept on resume), its refit at the learned conserved quantities
(``inference.refit``, ``<variant>-refit``), the selection of its conserved quantities
(``inference.select``, ``<variant>-selected``) and the analysis of every run.
"""

from __future__ import annotations

import dataclasses
import os

import jax

from .._io import atomic_write_json
from ..runs.files import is_run_folder, read_run_info
from ..runs.lock import folder_lock
from .settings import SELECT_FILE_OPTIONS

__all__ = ["VariantFits", "SELECTION_FILE"]

SELECTION_FILE = "selection.json"
"""In a ``<variant>-selected`` run folder: what :meth:`VariantFits.select` selected, and why."""


def selected_label(auto) -> str:
    """The row label of a selection: how many quantities the returned fit's Ĥ conserves, and
    how many it is symmetrised over by construction when the two differ (the ELBO kept the
    fit the quantities were read from, not the refit at them)."""
    built_in = auto.result.model.n_conserved
    if built_in == auto.dimension:
        return f"selected: {auto.dimension}"
    return f"selected: {auto.dimension} conserved by Ĥ, {built_in} built in"


@dataclasses.dataclass
class VariantFits:
    """The runs of one experiment run: :meth:`fit_all` fits (or keeps) every variant in order
    into ``out/<slug>`` and returns ``{slug: Run}``, analysed when ``analyze``."""

    experiment: object
    out: str
    train: object
    tests: dict
    system: object
    reference: object
    reference_names: object
    specs: dict
    init_conserved: object
    data_source: str
    resume: bool
    analyze: bool
    progress_bar: bool
    echo: object
    runs: dict = dataclasses.field(default_factory=dict)
    order: int = 0

    def __post_init__(self):
        inf = self.experiment.inference
        self.num_steps = num_steps = inf.steps_for(self.train.n_trajectories)
        _, self.k_fit, self.k_eval = self.experiment.keys()
        # the settings of fit a run records (optional ones only when set, so run.json and the
        # fingerprint of runs from before them are unchanged)
        self.fit_kwargs = inf.fit_kwargs(self.train.n_trajectories)
        self.fit_settings = dict(
            checkpoint_every=inf.checkpoint_interval(num_steps),
            resume=self.resume, tests=self.tests, reference=self.reference,
            reference_names=self.reference_names, progress_bar=self.progress_bar,
            chunk_size=inf.chunk_size, **self.fit_kwargs)

    # -- steps ----------------------------------------------------------------------------
    def fit_all(self, resolved) -> dict:
        """Every variant of ``resolved`` (and its refit), then the selections."""
        inf = self.experiment.inference
        for v in resolved:
            model, result, meta, label = self.fit_variant(v)
            if inf.refit and v.kind == "learned":
                self.refit(v, model, result, meta, label)
        if inf.select:
            self.select(resolved, key=jax.random.fold_in(self.k_fit, 2))
        return self.runs

    def analysed(self, run):
        """``run`` with its metrics (evaluated and written now unless it has them)."""
        from ..runs.analysis import analyze_run

        if not self.analyze or run.metrics is not None:
            return run
        an = self.experiment.analysis
        metrics_v = analyze_run(
            run, key=self.k_eval, system=self.system, threshold=an.threshold,
            min_parallelness=an.min_parallelness, arviz_samples=an.arviz_samples,
            figures=an.figures, num_samples=an.num_samples, num_repeats=an.num_repeats,
            rollouts=an.rollouts, rollout_steps=an.rollout_steps,
            rollout_trajectories=an.rollout_trajectories)
        return dataclasses.replace(run, metrics=metrics_v)

    def announce(self, folder, name, text):
        """Say what is done with the run ``name`` in ``folder``: kept when it is complete."""
        if self.resume and is_run_folder(folder):
            info = read_run_info(folder)
            if info["status"] == "complete":
                self.echo(f"{name}: complete ({info['steps']} steps), kept.")
                return
        self.echo(text)

    def fit_variant(self, v):
        """Fit the model of variant ``v`` into ``out/<slug>``; ``(model, result, meta, label)``."""
        from ..models import NoetherRazor, conserved_params_from_generators
        from ..runs.fitting import fit_in_folder
        from ..runs.folder import open_run

        experiment, system, init_conserved = self.experiment, self.system, self.init_conserved
        folder = os.path.join(self.out, v.slug)
        spec = self.specs[v.slug]
        gens = None
        if v.kind == "fixed":
            gens = system.generators(v.generators) if system is not None else self.reference
        model = NoetherRazor(spec, phase_dim=self.train.phase_dim, generators=gens)
        label = v.label
        if init_conserved is not None and v.kind == "learned":
            label += f" (η started at {len(init_conserved)} given)"
        meta = {"experiment": experiment.name, "variant": v.name, "label": label,
                "order": self.order,
                "system": None if system is None else dict(experiment.system),
                "analysis": dataclasses.asdict(experiment.analysis),
                "data_source": self.data_source}
        self.order += 1
        self.announce(folder, f"{label} ({v.slug})", f"Fitting {label} ({v.slug}): "
                                                     f"{self.num_steps} steps, K = "
                                                     f"{model.n_conserved} ...")
        start = {}
        if init_conserved is not None and v.kind == "learned":
            start["init_params"] = conserved_params_from_generators(
                init_conserved, spec.n_conserved, key=jax.random.fold_in(self.k_fit, 1),
                scale=spec.conserved_init_scale, dtype=spec.dtype)
        os.makedirs(folder, exist_ok=True)
        with folder_lock(folder):  # the fit and its analysis
            result = fit_in_folder(model, self.train, folder, key=self.k_fit, meta=meta,
                                   **self.fit_settings, **start)
            self.runs[v.slug] = self.analysed(open_run(folder, result=result))
        return model, result, meta, label

    def refit(self, v, model, result, meta, label):
        """``inference.refit``: the posterior of ``v`` again at its learned η, into
        ``out/<slug>-refit`` (left out of the table when it diverges)."""
        from ..inference.fit import DivergenceError
        from ..inference.refit import held_conserved
        from ..inference.restarts import refit_record, refit_summary
        from ..runs.fitting import fit_in_folder
        from ..runs.folder import open_run

        inf = self.experiment.inference
        slug = f"{v.slug}-refit"
        refit_folder = os.path.join(self.out, slug)
        meta = {**meta, "variant": slug, "label": f"{label} (refit)", "order": self.order,
                "refit_of": v.slug}
        self.order += 1
        self.announce(refit_folder, f"{label} (refit) ({slug})",
                      f"Refitting the posterior of {v.label} at its learned conserved "
                      f"quantities ({slug}): {self.num_steps} steps ...")
        settings = {**self.fit_settings, **held_conserved(result)}
        if inf.refit_lr_offdiag is not None:
            settings["lr_offdiag"] = inf.refit_lr_offdiag
        os.makedirs(refit_folder, exist_ok=True)
        with folder_lock(refit_folder):
            try:
                second = fit_in_folder(model, self.train, refit_folder, key=self.k_fit,
                                       meta=meta, **settings)
            except DivergenceError as err:
                second = None
                self.echo(f"The refit of {v.label} diverged at step {err.step}; its last "
                          f"finite state is in {refit_folder!r}, left out of the table.")
            else:
                self.runs[slug] = self.analysed(open_run(refit_folder, result=second))
        self.echo(refit_summary(v.label, refit_record(result, second),
                                n_conserved=model.n_conserved, kept=False))

    def select(self, resolved, *, key):
        """``inference.select``: for each learned variant, the discovered start and the
        selection of :func:`~noether_ppl.analysis.select_from_fits` (from the plain HNN's run)
        into ``<variant>-selected`` with ``selection.json``."""
        from ..analysis.auto import DEFAULT_SYMMETRISED_HNN, select_from_fits
        from ..inference.select import DEFAULT_STOP
        from ..runs.folder import open_run, save_run

        runs, echo, fit_settings = self.runs, self.echo, self.fit_settings
        inf, num_steps = self.experiment.inference, self.num_steps
        hnn = next((runs[v.slug] for v in resolved if v.kind == "vanilla" and v.slug in runs),
                   None)
        for v in resolved:
            if v.kind != "learned" or v.slug not in runs or hnn is None:
                continue
            slug = f"{v.slug}-selected"
            folder = os.path.join(self.out, slug)
            if self.resume and is_run_folder(folder) and \
                    read_run_info(folder)["status"] == "complete":
                echo(f"{v.label} (selected) ({slug}): complete, kept.")
                runs[slug] = self.analysed(open_run(folder))
                self.order += 1
                continue
            steps = inf.select_steps or max(1, num_steps // 4)
            echo(f"Selecting the conserved quantities of {v.label} ({slug}): the plain HNN's "
                 f"discovery as a start, then continuation fits of {steps} steps ...")
            kwargs = {k: v for k, v in self.fit_kwargs.items() if k != "num_steps"}
            stop = DEFAULT_STOP if inf.select_stop is None else inf.select_stop
            symmetrised = (DEFAULT_SYMMETRISED_HNN if inf.select_symmetrised_hnn is None
                           else inf.select_symmetrised_hnn)
            # the selection's options an experiment sets (``select_<option>``; unset: off)
            options = {name: value for name in SELECT_FILE_OPTIONS
                       if (value := getattr(inf, f"select_{name}")) is not None}
            select_kwargs = {**kwargs, "stop": stop, **options,
                             **({} if inf.select_lr is None else {"lr": inf.select_lr})}
            auto = select_from_fits(hnn.result, runs[v.slug].result, self.train, key=key,
                                    num_steps=num_steps, select_steps=steps,
                                    select_kwargs=select_kwargs, symmetrised_hnn=symmetrised,
                                    **kwargs)
            echo(str(auto))
            meta = {**runs[v.slug].meta, "variant": slug, "order": self.order,
                    "selected_from": v.slug, "label": f"{v.label} ({selected_label(auto)})"}
            self.order += 1
            os.makedirs(folder, exist_ok=True)
            with folder_lock(folder):
                save_run(auto.result, folder, train=self.train, tests=fit_settings.get("tests"),
                         reference=fit_settings.get("reference"),
                         reference_names=fit_settings.get("reference_names"), meta=meta,
                         settings={**kwargs, "select_steps": steps,
                                   **({} if inf.select_lr is None
                                      else {"select_lr": inf.select_lr}),
                                   "select_stop": stop,
                                   "select_symmetrised_hnn": symmetrised,
                                   **{f"select_{k}": v for k, v in options.items()}})
                atomic_write_json(os.path.join(folder, SELECTION_FILE), auto.to_dict())
                runs[slug] = self.analysed(open_run(folder, result=auto.result))
