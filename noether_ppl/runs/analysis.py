"""The analysis of a run folder: metrics, the ArviZ file and figures, all without refitting.

:func:`analyze_run` evaluates a saved fit (the columns of the paper's tables, predictive and
rollout metrics), its learned symmetry (Sec. 5.1) and the VI diagnostics, and writes
``metrics.json``, ``posterior.nc`` and ``figures/`` into the folder. :func:`run_figures`
(re)draws a run's figures; :func:`comparison_figures` draws several runs side by side.
"""

from __future__ import annotations

import os
import time
import warnings

import jax
import numpy as np

from ..analysis.symmetry import DEFAULT_THRESHOLD
from .files import FIGURES_DIR, METRICS_FILE, PARAMS_FILE, write_json
from .folder import Run, open_run
from .timing import ANALYSIS_PHASES, PhaseTimer

__all__ = ["analyze_run", "run_figures", "comparison_figures", "table_row", "ARVIZ_FILE"]

ARVIZ_FILE = "posterior.nc"
MIN_VI_SAMPLES = 25
"""Fewest posterior draws for the Pareto k̂ of the VI diagnostics (PSIS fits the tail of the
largest fifth of the importance weights, which needs at least 5 of them)."""


def _close(fig):
    import matplotlib.pyplot as plt

    plt.close(fig)


def _symmetry(run: Run, threshold: float):
    from ..analysis.symmetry import symmetry_report

    result = run.result
    if not result.model.learns_conserved:
        return None
    return symmetry_report(result, reference=run.reference, names=run.reference_names,
                           threshold=threshold)


def table_row(metrics: dict) -> dict:
    """The table columns of a metrics dict (as :func:`analyze_run` writes it)."""
    return {k: metrics.get(k) for k in ("train_mse", "nll_per_n", "kl_per_n", "neg_elbo_per_n",
                                         "test_mse")}


def analyze_run(folder, *, key: jax.Array, system=None, threshold: float = DEFAULT_THRESHOLD,
                min_parallelness: float = 0.99, arviz_samples: int = 100,
                figures: bool = True, num_samples: int = 32, num_repeats: int = 4,
                rollouts: bool = True, rollout_steps: int | None = None,
                rollout_trajectories: int | None = None, echo=None) -> dict:
    """Evaluate the fit saved in ``folder`` (a path or an opened :class:`Run`) and write
    ``metrics.json``, the ArviZ file ``posterior.nc`` (``arviz_samples`` posterior draws; 0
    skips it; the Pareto k̂ of the VI diagnostics needs at least :data:`MIN_VI_SAMPLES`) and
    ``figures/``.

    ``system``: the system that generated the data (accurate rollouts, true energy and
    conserved quantities); None for user data. Returns the metrics dict: the table columns at
    the top level (``train_mse``, ``nll_per_n``, ``kl_per_n``, ``neg_elbo_per_n``,
    ``test_mse``), ``evaluation`` (everything :func:`~noether_ppl.analysis.evaluate.evaluate`
    computed), ``symmetry`` (the learned symmetry, for models that learn C_η), ``resolution``
    (whether the likelihood mean resolves the data's Δt on this fit,
    :func:`~noether_ppl.analysis.mean_resolution`; ``echo`` says so where it does not;
    ``{"error": ...}`` where the fitted field does not integrate to finite values),
    ``vi`` (Pareto k̂), run facts (variant, label, steps, wall time) and ``timing``: the
    seconds of the analysis' phases (``metrics_s``, ``rollouts_s``, ``arviz_s``,
    ``figures_s``, ``io_s``; :mod:`~noether_ppl.runs.timing`).
    """
    from ..analysis.evaluate import evaluate
    from ..analysis.resolution import mean_resolution

    timer = PhaseTimer()
    with timer("io_s"):
        run = folder if isinstance(folder, Run) else open_run(folder)
    if run.train is None:
        raise ValueError(f"{run.folder!r} holds no training data (data/train.npz).")
    result = run.result
    k_eval, k_az = jax.random.split(key)
    inner: dict = {}
    start = time.perf_counter()
    ev = evaluate(result, run.train, run.tests, key=k_eval, system=system,
                  num_samples=num_samples, num_repeats=num_repeats, rollouts=rollouts,
                  rollout_steps=rollout_steps, rollout_trajectories=rollout_trajectories,
                  timings=inner)
    # evaluate's rollouts are a phase of their own
    elapsed = time.perf_counter() - start
    rollouts_s = min(inner.get("rollouts_s", 0.0), elapsed)
    timer.add("metrics_s", elapsed - rollouts_s)
    timer.add("rollouts_s", rollouts_s)
    with timer("metrics_s"):
        metrics = ev.to_dict()
        metrics["evaluation"] = {k: metrics.pop(k) for k in ("predictive", "rollouts")}
        report = _symmetry(run, threshold)
        metrics["symmetry"] = None if report is None else report.to_dict()
        if report is not None and report.parallelness is not None:
            metrics["symmetry"]["matches_reference"] = report.matches_reference(min_parallelness)
            metrics["symmetry"]["min_parallelness"] = min_parallelness
        try:
            resolution = mean_resolution(result, run.train, key=jax.random.fold_in(k_eval, 7))
            metrics["resolution"] = resolution.to_dict()
        except ValueError as err:  # the fitted field's integration is not finite
            resolution, metrics["resolution"] = None, {"error": str(err)}
    metrics["vi"] = None
    tree = _arviz(run, k_az, arviz_samples, metrics, timer)
    metrics.update({
        # which parameters these metrics describe (report warns when params.npz differs)
        "params_sha256": run.info["files"].get(PARAMS_FILE),
        "label": run.label,
        "status": run.info["status"],
        "steps": run.info["steps"],
        "wall_time_s": run.info.get("info", {}).get("wall_time_s"),
    })
    if figures:
        notes: list[str] = []
        with timer("figures_s"):
            run_figures(run, system=system, key=k_eval, evaluation=ev, report=report,
                        notes=notes, tree=tree)
        metrics["figure_notes"] = notes
    metrics["timing"] = {p: round(timer.get(p), 3) for p in (*ANALYSIS_PHASES, "io_s")}
    with timer("io_s"):
        write_json(os.path.join(run.folder, METRICS_FILE), metrics)
    metrics["timing"]["io_s"] = round(timer.get("io_s"), 3)  # with the write of metrics.json
    if echo is not None and report is not None:
        echo(f"{run.label}: " + str(report))
    if echo is not None and resolution is not None and not resolution.resolved():
        echo(f"{run.label}: {resolution}")
    return metrics


def _arviz(run: Run, key, num_samples: int, metrics: dict, timer: PhaseTimer):
    """The ArviZ tree of ``num_samples`` draws (None for 0), written to ``posterior.nc``, and
    (with at least :data:`MIN_VI_SAMPLES` draws) ``metrics["vi"]``: the PSIS diagnostics of
    the same draws (:func:`~noether_ppl.inference.arviz.vi_diagnostics_from_tree`, equal to
    ``vi_diagnostics`` with this key, without running the model a second time)."""
    from ..inference.arviz import save_arviz, to_arviz, vi_diagnostics_from_tree

    if not num_samples:
        return None
    with timer("arviz_s"):
        tree = to_arviz(run.result, run.train, key=key, num_samples=num_samples)
        if num_samples >= MIN_VI_SAMPLES:
            metrics["vi"] = vi_diagnostics_from_tree(tree).to_dict()
    with timer("io_s"):
        save_arviz(tree, os.path.join(run.folder, ARVIZ_FILE))
    return tree


_LOO_CACHE: dict = {}
"""``{(path, mtime_ns, size): (ELPDData, [(category, message), ...])}``: the pointwise
PSIS-LOO of ArviZ files computed in this process (:func:`pointwise_loo`)."""
_LOO_CACHE_SIZE = 16


def pointwise_loo(path, tree=None):
    """``arviz_stats.loo(tree, pointwise=True)`` of the ArviZ file ``path`` (``tree``: its
    contents when already in memory), computed once per version of the file in this process.

    A run's ``khat.png`` and an experiment's ``loo_compare.png`` both need it, and it is the
    analysis' most expensive step: one Pareto fit per observation, e.g. 10000 pairs × 12
    coordinates of the three-body twin. The file's path, modification time and size identify
    it; a rewritten file is computed again. The warnings the computation raised (ArviZ's about
    high Pareto k̂) are raised again on every call, so each figure's notes keep them."""
    import arviz_stats

    path = os.path.abspath(os.fspath(path))
    st = os.stat(path)
    ident = (path, st.st_mtime_ns, st.st_size)
    hit = _LOO_CACHE.get(ident)
    if hit is None:
        if tree is None:
            from ..inference.arviz import load_arviz

            tree = load_arviz(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            elpd = arviz_stats.loo(tree, pointwise=True)
        hit = (elpd, [(w.category, str(w.message)) for w in caught])
        while len(_LOO_CACHE) >= _LOO_CACHE_SIZE:
            _LOO_CACHE.pop(next(iter(_LOO_CACHE)))
        _LOO_CACHE[ident] = hit
    for category, message in hit[1]:
        warnings.warn(message, category, stacklevel=2)
    return hit[0]


def _figure(paths: list, notes: list, path: str, draw) -> None:
    """Draw one figure to ``path``; warnings raised while drawing (e.g. ArviZ's about high
    Pareto k̂) are collected in ``notes``, not lost."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = draw(path)
    _close(fig)
    paths.append(path)
    for w in caught:
        text = f"{os.path.basename(path)}: {w.category.__name__}: {w.message}"
        if text not in notes:
            notes.append(text)


def _num_draws(tree) -> int:
    sizes = tree["posterior"].sizes
    return int(sizes.get("chain", 1) * sizes.get("draw", 1))


def _reference_for(run: Run, system):
    if system is not None and getattr(system, "has_known_generators", False):
        return system
    return run.reference


def run_figures(run: Run, *, system=None, key: jax.Array | None = None, evaluation=None,
                report=None, notes: list | None = None, tree=None) -> list[str]:
    """Draw a run's figures into ``RUN/figures`` and return the paths written:

    - ``training_curves.png``: −ELBO/N and ‖η‖ per step;
    - ``hamiltonian.png`` (``M = 2``): the learned Ĥ on phase space next to the true H (Fig. 2);
    - ``singular_values.png`` and ``generators.png`` (models that learn C_η): singular values
      and parallelness (Figs. 3–4), generator heat-maps and their SVD (Fig. 5);
    - ``rollouts.png`` (with ``evaluation``, an :class:`~noether_ppl.analysis.Evaluation`):
      rollouts against ground truth, error growth and drifts;
    - ``ppc.png``, ``khat.png`` (when the run has ``posterior.nc``): ArviZ's posterior
      predictive check and (with at least :data:`MIN_VI_SAMPLES` draws) the Pareto k̂ of
      PSIS-LOO.

    Warnings raised while drawing are appended to ``notes``. ``tree``: the run's ArviZ tree
    when it is already in memory (it is then not read back from ``posterior.nc``).
    """
    from ..analysis import plots
    from ..analysis.rollouts import model_hamiltonian
    from ..analysis.symmetry import symmetry_report

    out = os.path.join(run.folder, FIGURES_DIR)
    key = jax.random.key(0) if key is None else key
    notes = [] if notes is None else notes
    result = run.result
    paths: list[str] = []
    label = run.label
    _figure(paths, notes, os.path.join(out, "training_curves.png"),
            lambda p: plots.plot_training_curves({label: result}, path=p))
    if result.model.phase_dim == 2:
        panels = {}
        if system is not None:
            panels["true H"] = lambda x: np.asarray(system.hamiltonian(x))
        panels[label] = lambda x: model_hamiltonian(result, x, key=key)
        _figure(paths, notes, os.path.join(out, "hamiltonian.png"),
                lambda p: plots.plot_phase_space_hamiltonians(panels, data=run.train, path=p))
    if result.model.learns_conserved:
        reference = _reference_for(run, system)
        if report is None:
            threshold = run.meta.get("analysis", {}).get("threshold", DEFAULT_THRESHOLD)
            report = symmetry_report(result, reference=run.reference,
                                     names=run.reference_names, threshold=threshold)
        _figure(paths, notes, os.path.join(out, "singular_values.png"),
                lambda p: plots.plot_singular_values({label: report}, path=p))
        _figure(paths, notes, os.path.join(out, "generators.png"),
                lambda p: plots.plot_generators(result, reference=reference, path=p))
    if evaluation is not None and evaluation.rollouts:
        name = "test" if "test" in evaluation.rollouts else next(iter(evaluation.rollouts))
        _figure(paths, notes, os.path.join(out, "rollouts.png"),
                lambda p: plots.plot_rollouts({label: evaluation.rollouts[name]}, path=p))
    tree_path = os.path.join(run.folder, ARVIZ_FILE)
    if tree is None and os.path.exists(tree_path):
        from ..inference.arviz import load_arviz

        tree = load_arviz(tree_path)
    if tree is not None:
        _figure(paths, notes, os.path.join(out, "ppc.png"),
                lambda p: plots.plot_ppc(tree, path=p))
        if _num_draws(tree) >= MIN_VI_SAMPLES:  # PSIS-LOO fits a tail of >= 5 draws
            # the file's pointwise LOO, kept for the experiment's loo_compare.png
            _figure(paths, notes, os.path.join(out, "khat.png"),
                    lambda p: plots.plot_khat(
                        pointwise_loo(tree_path, tree) if os.path.exists(tree_path) else tree,
                        path=p))
    return paths


def comparison_figures(runs: list[Run], out, *, system=None, key: jax.Array | None = None,
                       notes: list | None = None) -> list[str]:
    """Figures comparing runs (e.g. the variants of one experiment) in ``out``:
    ``training_curves.png``; ``hamiltonians.png`` for ``M = 2`` (learned Hamiltonians next to
    the true one, Fig. 2); ``singular_values.png`` of the runs that learn C_η (Figs. 3–4);
    ``loo_compare.png``, the PSIS-LOO comparison of runs with ArviZ files (of at least
    :data:`MIN_VI_SAMPLES` draws) on the same data.
    Returns the paths written."""
    from ..analysis import plots
    from ..analysis.rollouts import model_hamiltonian
    from ..analysis.symmetry import symmetry_report

    key = jax.random.key(0) if key is None else key
    notes = [] if notes is None else notes
    out = os.fspath(out)
    paths: list[str] = []
    labels = _unique_labels(runs)
    pairs = list(zip(labels, runs, strict=True))
    _figure(paths, notes, os.path.join(out, "training_curves.png"),
            lambda p: plots.plot_training_curves({lab: r.result for lab, r in pairs}, path=p))
    if all(r.result.model.phase_dim == 2 for r in runs):
        panels = {}
        if system is not None:
            panels["true H"] = lambda x: np.asarray(system.hamiltonian(x))
        for lab, r in pairs:
            panels[lab] = (lambda res: lambda x: model_hamiltonian(res, x, key=key))(r.result)
        _figure(paths, notes, os.path.join(out, "hamiltonians.png"),
                lambda p: plots.plot_phase_space_hamiltonians(panels, data=runs[0].train,
                                                              path=p))
    reports = {}
    for lab, r in pairs:
        if r.result.model.learns_conserved:
            threshold = r.meta.get("analysis", {}).get("threshold", DEFAULT_THRESHOLD)
            reports[lab] = symmetry_report(r.result, reference=r.reference,
                                           names=r.reference_names, threshold=threshold)
    if reports:
        _figure(paths, notes, os.path.join(out, "singular_values.png"),
                lambda p: plots.plot_singular_values(reports, path=p))
    trees = {lab: os.path.join(r.folder, ARVIZ_FILE) for lab, r in pairs}
    same_data = len({r.info["files"].get("data/train.npz") for r in runs}) == 1
    if len(runs) > 1 and same_data and all(os.path.exists(t) for t in trees.values()):
        from ..inference.arviz import load_arviz

        loaded = {lab: load_arviz(t) for lab, t in trees.items()}
        if min(_num_draws(t) for t in loaded.values()) < MIN_VI_SAMPLES:
            return paths
        # the runs' pointwise LOO, computed once (their khat.png computed it already when
        # drawn in this process)
        _figure(paths, notes, os.path.join(out, "loo_compare.png"),
                lambda p: plots.plot_loo_compare(
                    {lab: pointwise_loo(trees[lab], t) for lab, t in loaded.items()}, path=p))
    return paths


def _unique_labels(runs: list[Run]) -> list[str]:
    labels, seen = [], {}
    for r in runs:
        lab = r.label
        if lab in seen:
            seen[lab] += 1
            lab = f"{lab} ({os.path.basename(os.path.normpath(r.folder))})"
        else:
            seen[lab] = 1
        labels.append(lab)
    return labels
