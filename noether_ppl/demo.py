"""``noether-ppl demo``: a CPU-scale twin of the paper's Table 1 and Fig. 2.

Simulates 1-D harmonic-oscillator data like App. C.1's: 7 initial conditions ~ N(0, I), 5
points Δt = 0.2 apart, i.e. 4 pairs each (the paper has 4 points, 3 pairs: ``sho.toml``); test:
100 initial conditions × 20 steps. Fits the plain HNN (K = 0), Noether's razor with one learned
conserved quantity (K = 1) and the fixed SO(2) "oracle", prints a table in Table 1's layout
with the learned generator's alignment with SO(2), and writes ``metrics.json``,
``hamiltonians.png`` (Fig. 2's layout), ``training_curves.png`` and one run folder per model
(with its ArviZ file ``posterior.nc``, metrics and figures) into the output folder;
``noether-ppl report`` rebuilds the table from the run folders. ``metrics.json`` (``timing``)
and every ``run.json`` record where the time went: the data, the fits, the analysis and I/O
(:mod:`noether_ppl.runs.timing`); the last line printed says it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import jax

from . import systems
from ._io import atomic_write_json
from .analysis.symmetry import DEFAULT_THRESHOLD, symmetry_report
from .analysis.tables import format_table
from .inference.restarts import fit_restarts, refit_summary, runaway_line
from .inference.settings import FitSettings
from .models import ModelSpec, NoetherRazor
from .runs.analysis import analyze_run, comparison_figures
from .runs.folder import open_run, save_run
from .runs.timing import PhaseTimer, record_run_timing, split_line
from .runs.timing import summary as timing_summary

__all__ = ["DemoSettings", "demo_data", "run_demo", "format_table"]


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """CPU-scale settings (the paper's: hidden (200, 200), S = 200, 2000 epochs; App. C.1).

    ``restarts``: every model is fitted this many times from independent keys and the fit with
    the highest ELBO is kept (:func:`~noether_ppl.inference.restarts.fit_restarts`; restart 0
    is the single fit of ``restarts = 1``). At this scale one fit's outcome depends on its key
    (``benchmarks/records/demo-sensitivity/``); each restart costs a full fit.

    ``refit``: the learned model's posterior over θ is fitted again at its learned conserved
    quantity (:func:`~noether_ppl.inference.refit_posterior`), once for each rate of
    ``refit_lr_offdiag`` for the off-diagonals of the guide's Cholesky factors (None: ``lr``),
    and the fit with the highest ELBO of the joint fit and the refits is kept (one more fit per
    rate). Two rates because neither was best on every fit key (``lr`` fits closer to the
    oracle's ELBO or runs away, ``lr / 10`` is steadier): ``benchmarks/records/demo-refits/``
    and ``generator-scale/``. ``lr_offdiag``: that rate for every fit (None: ``lr``).
    """

    hidden: tuple[int, ...] = (64, 64)
    elu_alpha: float = 2.0
    sym_samples: int = 64
    sampling: str = "lattice"
    integrator: str = "euler"
    substeps: int = 20
    num_particles: int = 1
    num_steps: int = 2000
    lr: float = 3e-3
    lr_conserved: float = 3e-2
    lr_offdiag: float | None = None
    refit: bool = True
    refit_lr_offdiag: tuple[float | None, ...] = (3e-4, None)
    noise_variance: float = 1e-3
    init_scale: float = 1e-3
    restarts: int = 1
    seed: int = 0

    def refit_candidates(self) -> list[dict]:
        """``refit_kwargs`` of :func:`~noether_ppl.inference.fit_restarts`: one per rate of
        ``refit_lr_offdiag`` (a single rate, as older records store it, is one refit)."""
        rates = self.refit_lr_offdiag
        rates = tuple(rates) if isinstance(rates, (tuple, list)) else (rates,)
        return [{"lr_offdiag": r} for r in rates]

    def fit_settings(self) -> FitSettings:
        """The settings of every fit: the fields of these settings that are fields of
        :class:`~noether_ppl.inference.FitSettings` (the others at ``fit``'s defaults)."""
        return FitSettings(**self._fit_fields())

    def _fit_fields(self) -> dict:
        """``{name: value}`` of the fields shared with FitSettings, in FitSettings' order."""
        mine = {f.name for f in dataclasses.fields(self)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(FitSettings)
                if f.name in mine}

    def spec(self, n_conserved: int) -> ModelSpec:
        return ModelSpec(
            hidden=self.hidden, activation="elu", elu_alpha=self.elu_alpha,
            n_conserved=n_conserved, sym_samples=self.sym_samples, measure="uniform",
            measure_scale=math.pi, sampling=self.sampling, integrator=self.integrator,
            substeps=self.substeps, noise_variance=self.noise_variance,
            prior_variance="optimal",
        )


def demo_data(settings: DemoSettings):
    """``(system, train, test, k_fit, k_eval)``: the demo's oscillator, its training data (7
    trajectories × 4 pairs, Δt = 0.2) and test data (100 × 20) and the keys of its fits and
    evaluation, all from ``settings.seed``."""
    key = jax.random.key(settings.seed)
    k_train, k_test, k_fit, k_eval = jax.random.split(key, 4)
    sho = systems.HarmonicOscillator()
    train = sho.simulate(k_train, n_trajectories=7, n_steps=4, dt=0.2)
    test = sho.simulate(k_test, n_trajectories=100, n_steps=20, dt=0.2)
    return sho, train, test, k_fit, k_eval


def run_demo(out: str = "runs/demo", settings: DemoSettings | None = None, *,
             progress_bar: bool = True, echo=print) -> dict:
    """Run the demo; returns the metrics dict written to ``out/metrics.json``.

    Every model is fitted from the same key and evaluated with the same key, so the table
    compares the models on equal terms (the same initial MLP weights and minibatches).

    Writes one run folder per model (``out/vanilla``, ``out/learned``, ``out/oracle``: the
    fit, its data, ``metrics.json``, the ArviZ file ``posterior.nc`` and figures; see
    :mod:`noether_ppl.runs`), ``metrics.json``, ``hamiltonians.png`` (Fig. 2) and
    ``training_curves.png``.
    """
    settings = settings or DemoSettings()
    timer = PhaseTimer()
    with timer("simulate_s"):
        sho, train, test, k_fit, k_eval = demo_data(settings)
    echo(f"Data: {train.n_trajectories} training trajectories x {train.n_steps} pairs "
         f"(dt = {train.dt}), {test.n_trajectories} test trajectories x {test.n_steps} steps.")

    models = {
        "vanilla": NoetherRazor(settings.spec(0), phase_dim=2),
        "learned": NoetherRazor(settings.spec(1), phase_dim=2),
        "oracle": NoetherRazor(settings.spec(1), phase_dim=2, generators=sho.generators()),
    }
    labels = {"vanilla": "HNN", "learned": "HNN + learned symmetry",
              "oracle": "HNN + fixed SO(2)"}
    fit = settings.fit_settings()
    # what run.json records: the demo's own fit settings and its restarts
    fit_settings = {**settings._fit_fields(), "restarts": settings.restarts}
    runs, metrics = {}, {}
    for i, (name, model) in enumerate(models.items()):
        refit = settings.refit and model.learns_conserved
        # every model from the same key: the comparison is paired (same initial MLP weights,
        # same minibatches and symmetry draws where the models share them)
        start = time.perf_counter()
        result = fit_restarts(model, train, key=k_fit,
                              refit=refit,
                              refit_kwargs=settings.refit_candidates() if refit else None,
                              restarts=settings.restarts, progress_bar=progress_bar,
                              **fit.to_kwargs())
        fit_s = time.perf_counter() - start  # the fit(s), compilation included
        timer.add("fit_s", fit_s)
        if (line := runaway_line(labels[name], result.info)) is not None:
            echo(line)
        meta = {"experiment": "demo", "variant": name, "label": labels[name], "order": i,
                "system": {"name": "harmonic_oscillator", "mass": 1.0, "stiffness": 1.0},
                "analysis": {"threshold": DEFAULT_THRESHOLD}, "data_source": "simulated"}
        run_settings = {**fit_settings, **({"refit": True, "refit_lr_offdiag":
                                            list(settings.refit_lr_offdiag)} if refit else {})}
        runs[name], metrics[name] = _save_and_analyze(
            result, os.path.join(out, name), timer, fit_s=fit_s, key=k_eval, system=sho,
            data={"train": train, "tests": {"test": test}}, meta=meta, settings=run_settings)
    with timer("metrics_s"):
        report = symmetry_report(runs["learned"].result, reference=sho,
                                 threshold=DEFAULT_THRESHOLD)
    metrics["learned"]["singular_values"] = report.singular_values.tolist()
    metrics["learned"]["parallelness"] = report.parallelness.tolist()
    metrics["learned"]["conserved_quantity"] = report.descriptions

    echo("")
    echo(format_table({labels[n]: m for n, m in metrics.items()},
                      "Harmonic oscillator (paper Table 1 layout, CPU scale)", layout="table1"))
    echo("")
    echo(str(report))
    for name in models:
        if "refit" in metrics[name]:
            echo(refit_summary(labels[name], metrics[name]["refit"],
                               n_conserved=models[name].n_conserved))
    if settings.restarts > 1:
        echo("")
        for name in models:
            scores = ", ".join(
                "diverged" if r["diverged"] else f"{r['neg_elbo_per_n']:.2f}"
                for r in metrics[name]["restarts"])
            echo(f"{labels[name]}: final -ELBO/N of the {settings.restarts} restarts {scores}; "
                 f"kept restart {metrics[name]['restart_kept']} (highest ELBO).")

    with timer("figures_s"):
        comparison_figures([runs[n] for n in models], out, system=sho,
                           key=jax.random.fold_in(k_eval, 99))
    metrics_out = dict(metrics)
    metrics_out["settings"] = dataclasses.asdict(settings)
    metrics_out["wall_time_s"] = timer.elapsed
    metrics_out["timing"] = timing_summary(timer, wall_s=metrics_out["wall_time_s"])
    atomic_write_json(os.path.join(out, "metrics.json"), metrics_out)
    echo(f"\nWrote {out}/metrics.json, {out}/hamiltonians.png, {out}/training_curves.png and "
         f"one run folder per model ({', '.join(models)}) with posterior.nc, metrics and "
         f"figures ({metrics_out['wall_time_s']:.0f} s). Rebuild the table with: "
         f"noether-ppl report {out}")
    echo(split_line(metrics_out["timing"]))
    return metrics_out


def _save_and_analyze(result, folder, timer: PhaseTimer, *, fit_s: float, key, system, data,
                      meta, settings):
    """Save one model's fit into its run folder, analyse it and record its time split in
    ``run.json``; returns ``(Run, its row of the demo's metrics)``."""
    with timer("io_s"):
        save_run(result, folder, train=data["train"], tests=data["tests"],
                 reference=system.generators(), reference_names=system.generator_names(),
                 meta=meta, settings=settings)
        run = open_run(folder, result=result)  # the fit in memory: nothing rebuilt, recompiled
    # 8 posterior draws for the predictive metrics and rollouts from 20 test initial
    # conditions keep the analysis to seconds; 100 draws in the ArviZ file (PSIS needs 25+).
    m = analyze_run(run, key=key, system=system, threshold=DEFAULT_THRESHOLD, num_samples=8,
                    rollout_trajectories=20, arviz_samples=100)
    timer.merge(m["timing"])
    with timer("io_s"):
        record_run_timing(folder, fit_s=fit_s, analysis=m["timing"])
    row = {
        "train_mse": m["train_mse"],
        "nll_per_n": m["nll_per_n"],
        "kl_per_n": m["kl_per_n"],
        "neg_elbo_per_n": m["neg_elbo_per_n"],
        "test_mse": m["test_mse"]["test"],
        "wall_time_s": sum(r["wall_time_s"] or 0.0 for r in result.info["restarts"])
        + ((result.info.get("refit") or {}).get("wall_time_s") or 0.0),
        "restarts": result.info["restarts"],
        "restart_kept": result.info["restart"],
    }
    if "refit" in result.info:
        row["refit"] = result.info["refit"]
    if m.get("vi"):
        row["pareto_k"] = m["vi"]["pareto_k"]
    return run, row
