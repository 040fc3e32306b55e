"""Figures (matplotlib, headless). Each function returns the figure and writes a PNG when
``path`` is given (atomically: a temporary file renamed into place).

- :func:`plot_phase_space_hamiltonians`: learned vs true ``H`` on 2-D phase space (Fig. 2).
- :func:`plot_singular_values`: singular values and parallelness across runs (Figs. 3–4).
- :func:`plot_generators`: generator heat-maps and their SVD (Fig. 5).
- :func:`plot_discovery`: the Lie-derivative spectrum of a Hamiltonian and the parallelness of
  the conserved quadratic quantities it has (seed 000's "discover").
- :func:`plot_rollouts`: rollouts against ground truth, error growth, energy and
  conserved-quantity drift.
- :func:`plot_training_curves`: −ELBO/N, NLL/N, KL/N and ‖η‖ per step.
- :func:`plot_ppc`, :func:`plot_khat`, :func:`plot_loo_compare`: ArviZ's own plots
  (``arviz_plots``) of a :func:`~noether_ppl.inference.to_arviz` DataTree.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping

import numpy as np

from .._io import atomic_open

__all__ = [
    "save_figure",
    "plot_phase_space_hamiltonians",
    "plot_singular_values",
    "plot_generators",
    "plot_discovery",
    "plot_rollouts",
    "plot_training_curves",
    "plot_ppc",
    "plot_khat",
    "plot_loo_compare",
]


def _pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 120) -> str:
    """Write ``fig`` to ``path`` (PNG) via a temporary file and ``os.replace``."""
    with atomic_open(path, "wb") as f:
        fig.savefig(f, dpi=dpi, format="png", bbox_inches="tight")
    return os.fspath(path)


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _check_mapping(name: str, value, what: str) -> Mapping:
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"Expected `{name}` to be a non-empty dict {{name: {what}}}, got "
                         f"{type(value).__name__}.")
    return value


# ----------------------------------------------------------------------------- Fig. 2
def plot_phase_space_hamiltonians(
    hamiltonians: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    *,
    extent: float = 3.0,
    resolution: int = 81,
    data=None,
    path=None,
):
    """Contours of 2-D Hamiltonians ``H(q, p)`` side by side (the paper's Fig. 2).

    ``hamiltonians`` maps a panel title to a batched callable ``x (n, 2) → (n,)``. Each panel
    is shifted to its minimum on the grid (Hamiltonians are defined up to a constant).
    ``data`` (a ``Trajectories`` or ``(N, T, 2)`` array) is overlaid as training trajectories.
    """
    _check_mapping("hamiltonians", hamiltonians, "callable")
    plt = _pyplot()
    g = np.linspace(-extent, extent, resolution)
    Q, P = np.meshgrid(g, g)
    X = np.stack([Q.ravel(), P.ravel()], axis=1)
    n = len(hamiltonians)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    states = None
    if data is not None:
        states = np.asarray(getattr(data, "states", data))
        if states.ndim != 3 or states.shape[-1] != 2:
            raise ValueError(f"Expected `data` of shape (N, T, 2), got {states.shape}.")
    for ax, (title, H) in zip(axes[0], hamiltonians.items(), strict=True):
        Z = np.asarray(H(X), dtype=np.float64).reshape(Q.shape)
        Z = Z - Z.min()
        ax.contourf(Q, P, Z, levels=20, cmap="viridis")
        ax.contour(Q, P, Z, levels=20, colors="k", linewidths=0.3)
        if states is not None:
            for traj in states:
                ax.plot(traj[:, 0], traj[:, 1], ".-", color="w", ms=3, lw=0.8)
        ax.set_title(title)
        ax.set_xlabel("q")
        ax.set_aspect("equal")
    axes[0][0].set_ylabel("p")
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------- Figs. 3–5
def _as_report(value, reference=None):
    from .symmetry import SymmetryReport, symmetry_report

    if isinstance(value, SymmetryReport):
        return value
    return symmetry_report(value, reference=reference)


def _label_spectrum_axes(ax_s, ax_p, s_xlabel, s_ylabel, s_title, p_xlabel, p_ylabel,
                         p_title) -> None:
    """A log-scale spectrum with its legend beside parallelness bars in [0, 1.05] with the
    paper's 0.99 line."""
    ax_s.set_yscale("log")
    ax_s.set_xlabel(s_xlabel)
    ax_s.set_ylabel(s_ylabel)
    ax_s.set_title(s_title)
    ax_s.legend(fontsize=8)
    ax_p.set_ylim(0, 1.05)
    ax_p.axhline(0.99, color="k", ls=":", lw=0.8)
    ax_p.set_xlabel(p_xlabel)
    ax_p.set_ylabel(p_ylabel)
    ax_p.set_title(p_title)


def plot_singular_values(reports: Mapping, *, path=None):
    """Normalised singular values ``σ_i/σ_1`` of the learned generators (log scale, with each
    report's threshold) and the parallelness ``‖P v_i‖`` of every right singular vector
    (Sec. 5.1; the paper's Figs. 3–4), one colour per entry of ``reports``
    (``{label: SymmetryReport}``, e.g. one per system or per ``n``)."""
    _check_mapping("reports", reports, "SymmetryReport")
    reports = {k: _as_report(v) for k, v in reports.items()}
    plt = _pyplot()
    fig, (ax_p, ax_s) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = len(reports)
    width = 0.8 / n
    for j, (label, rep) in enumerate(reports.items()):
        s = rep.normalized_singular_values
        idx = np.arange(1, s.size + 1)
        (line,) = ax_s.plot(idx, s, "o-", ms=4, label=f"{label} (dim {rep.dimension})")
        ax_s.axhline(rep.threshold, color=line.get_color(), ls=":", lw=0.8)
        if rep.all_parallelness is not None:
            active = idx <= rep.dimension
            ax_p.bar(idx[active] + (j - (n - 1) / 2) * width, rep.all_parallelness[active],
                     width, color=line.get_color(), label=label)
            ax_p.bar(idx[~active] + (j - (n - 1) / 2) * width, rep.all_parallelness[~active],
                     width, color=line.get_color(), alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    k_max = max(r.singular_values.size for r in reports.values())
    for ax in (ax_p, ax_s):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.4, k_max + 0.6)
    _label_spectrum_axes(ax_s, ax_p, "singular vector i", r"$\sigma_i / \sigma_1$",
                         "singular values (dotted: threshold)", "singular vector i",
                         r"parallelness $\|P v_i\|$", "parallelness (faded: inactive)")
    if any(r.all_parallelness is not None for r in reports.values()):
        ax_p.legend(fontsize=8)
    else:
        ax_p.text(0.5, 0.5, "no reference generators", ha="center", va="center",
                  transform=ax_p.transAxes)
    fig.tight_layout()
    return _finish(fig, path)


def plot_generators(generators, *, reference=None, coord_names=None, path=None):
    """Heat-maps of the learned generators ``G_k`` (top row) and of the right singular vectors
    ``v_i`` of their stack, titled with ``σ_i/σ_1`` and (with a ``reference``) ``‖P v_i‖``
    (bottom row): the paper's Fig. 5. Each row shares one symmetric colour scale.

    ``generators``: a stack ``(K, M+1, M+1)`` or a fit result; ``reference``: generators or a
    system (App. B), as for :func:`~noether_ppl.analysis.symmetry_report`.
    """
    from .symmetry import _as_stack, coordinate_names, symmetry_report

    if hasattr(generators, "generators") and callable(generators.generators):
        generators = generators.generators()
    G = _as_stack(generators, "generators")
    rep = symmetry_report(G, reference=reference)
    K, M1 = G.shape[0], G.shape[1]
    if coord_names is None:
        coord_names = (coordinate_names(reference) if hasattr(reference, "phase_dim")
                       else coordinate_names(M1 - 1))
    labels = list(coord_names) + ["1"]
    plt = _pyplot()
    fig, axes = plt.subplots(2, K, figsize=(max(1.9 * K, 4.0), 4.2), squeeze=False)
    s = rep.normalized_singular_values
    # One colour scale per row, so that inactive (small) generators look faint, as in Fig. 5.
    scale = [float(np.max(np.abs(G))) or 1.0, float(np.max(np.abs(rep.directions))) or 1.0]
    for k in range(K):
        panels = [(0, G[k], f"G_{k}")]
        if k < s.size:  # the stack has min(K, (M+1)²) singular directions
            par = rep.all_parallelness
            panels.append((1, rep.directions[k], f"v_{k}: σ={s[k]:.2g}" + (
                f"\n‖Pv‖={par[k]:.2f}" if par is not None else "")))
        else:
            axes[1][k].axis("off")
        for row, mat, title in panels:
            ax = axes[row][k]
            vmax = scale[row]
            ax.imshow(mat, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            faded = row == 1 and k >= rep.dimension
            ax.set_title(title + (" (inactive)" if faded else ""), fontsize=7,
                         color="0.5" if faded else "k")
            if M1 <= 13:
                ax.set_xticks(range(M1), labels, fontsize=5, rotation=90)
                ax.set_yticks(range(M1), labels, fontsize=5)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    axes[0][0].set_ylabel("learned", fontsize=8)
    axes[1][0].set_ylabel("SVD", fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def plot_discovery(discoveries: Mapping, *, path=None):
    """The spectrum of :func:`~noether_ppl.analysis.discover` — RMS Lie derivatives
    ``σ_k/σ_max`` of ``H`` along unit quadratic observables, smallest first, log scale, the
    conserved ones filled — and the parallelness of each conserved quantity to the reference
    span, one colour per entry of ``discoveries`` (``{label: Discovery}``)."""
    from .lie.discover import Discovery

    _check_mapping("discoveries", discoveries, "Discovery")
    for label, d in discoveries.items():
        if not isinstance(d, Discovery):
            raise ValueError(f"Expected `discoveries` to map names to Discovery results, got "
                             f"{type(d).__name__} for {label!r}.")
    plt = _pyplot()
    fig, (ax_s, ax_p) = plt.subplots(1, 2, figsize=(10, 3.6))
    n = len(discoveries)
    width = 0.8 / n
    for j, (label, d) in enumerate(discoveries.items()):
        s = d.normalized_singular_values[::-1]  # ascending: the most conserved first
        s = np.maximum(s, np.finfo(np.float64).tiny)  # exact zeros on the log axis
        idx = np.arange(1, s.size + 1)
        (line,) = ax_s.plot(idx, s, "-", lw=1, label=f"{label} ({d.dimension} conserved)")
        c = line.get_color()
        ax_s.plot(idx[: d.dimension], s[: d.dimension], "o", ms=4, color=c)
        ax_s.plot(idx[d.dimension:], s[d.dimension:], "o", ms=4, mfc="none", color=c)
        if d.parallelness is not None and d.dimension:
            k = np.arange(1, d.dimension + 1)
            ax_p.bar(k + (j - (n - 1) / 2) * width, d.parallelness, width, color=c,
                     label=label)
    _label_spectrum_axes(ax_s, ax_p, "quadratic direction k (most conserved first)",
                         r"$\sigma_k / \sigma_{max}$ (RMS $\{H, C_k\}$)",
                         "Lie-derivative spectrum (filled: conserved)", "conserved quantity k",
                         r"parallelness $\|P v_k\|$", "in the reference span")
    if any(d.parallelness is not None and d.dimension for d in discoveries.values()):
        ax_p.legend(fontsize=8)
        from matplotlib.ticker import MaxNLocator

        ax_p.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax_p.text(0.5, 0.5, "no reference generators", ha="center", va="center",
                  transform=ax_p.transAxes)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------- rollouts
def plot_rollouts(rollouts, *, trajectory: int = 0, coords=(0,), path=None):
    """Rollouts against ground truth for one or more models (``{label: RolloutMetrics}`` or
    one :class:`~noether_ppl.analysis.RolloutMetrics`): the states ``coords`` of
    ``trajectory`` over time, the squared error, the drift of the true energy and of the
    ground-truth conserved quantities (largest over them) along each rollout, and the drift of
    each model's own conserved quantities along the ground truth (dashed; near 0 when they are
    real conserved quantities)."""
    from .rollouts import RolloutMetrics

    if isinstance(rollouts, RolloutMetrics):
        rollouts = {"model": rollouts}
    _check_mapping("rollouts", rollouts, "RolloutMetrics")
    for label, r in rollouts.items():
        if not isinstance(r, RolloutMetrics):
            raise ValueError(f"Expected rollouts[{label!r}] to be a RolloutMetrics, got "
                             f"{type(r).__name__}.")
        if not 0 <= trajectory < r.n_trajectories:
            raise ValueError(f"Expected 0 <= `trajectory` < {r.n_trajectories}, got "
                             f"{trajectory}.")
        M = r.model_states.shape[-1]
        if any(not (0 <= c < M) for c in coords):
            raise ValueError(f"Expected `coords` in [0, {M}), got {coords!r}.")
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    first = next(iter(rollouts.values()))
    for c in coords:
        axes[0].plot(first.times, first.true_states[trajectory, :, c], "k-", lw=1.5,
                     label=f"truth x[{c}]")
    has_energy = has_conserved = False
    for label, r in rollouts.items():
        t = r.times
        for c in coords:
            axes[0].plot(t, r.model_states[trajectory, :, c], "--", lw=1, label=f"{label} x[{c}]")
        axes[1].plot(t[1:], r.mse[1:], label=label)
        if r.energy_drift is not None:
            has_energy = True
            axes[2].plot(t[1:], r.energy_drift[1:], label=label)
        if r.true_conserved_drift is not None and r.true_conserved_drift.shape[1]:
            has_conserved = True
            (line,) = axes[3].plot(t[1:], r.true_conserved_drift[1:].max(axis=1),
                                   label=f"{label}: true C along rollout")
            if r.conserved_drift_truth.shape[1]:
                axes[3].plot(t[1:], r.conserved_drift_truth[1:].max(axis=1), "--",
                             color=line.get_color(), label=f"{label}: own C along truth")
        elif r.conserved_drift_truth.shape[1]:
            has_conserved = True
            axes[3].plot(t[1:], r.conserved_drift_truth[1:].max(axis=1), "--",
                         label=f"{label}: own C along truth")
    axes[0].set_title(f"trajectory {trajectory} ({first.reference} reference)")
    axes[0].set_xlabel("t")
    axes[0].legend(fontsize=7)
    titles = ("squared error", "energy drift |H(x_t) - H(x_0)|",
              "conserved-quantity drift (max over C)")
    for ax, title, shown in zip(axes[1:], titles, (True, has_energy, has_conserved),
                                strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("t")
        if shown:
            ax.set_yscale("log")
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "needs a system with known\nground truth", ha="center",
                    va="center", transform=ax.transAxes, fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------- training
_TRACES = ("neg_elbo_per_n", "nll_per_n", "kl_per_n", "eta_norm")
_TRACE_LABELS = {"neg_elbo_per_n": "−ELBO / N", "nll_per_n": "NLL / N", "kl_per_n": "KL / N",
                 "eta_norm": "‖η‖"}


def _traces(name, run) -> dict:
    if hasattr(run, "losses"):
        out = {"neg_elbo_per_n": run.losses}
        if getattr(run, "eta_norms", None) is not None:
            out["eta_norm"] = run.eta_norms
    elif isinstance(run, Mapping):
        unknown = set(run) - set(_TRACES)
        if unknown:
            raise ValueError(f"Unknown trace(s) {sorted(unknown)} for run {name!r}; expected "
                             f"some of {_TRACES}.")
        out = {k: v for k, v in run.items() if v is not None}
    else:
        out = {"neg_elbo_per_n": run}
    traces = {}
    for k, v in out.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"Expected 1-D trace {k!r} for run {name!r}, got shape {a.shape}.")
        traces[k] = a
    return traces


def plot_training_curves(runs: Mapping, *, path=None, log_offset: bool = True):
    """Training curves per step: −ELBO/N, and NLL/N, KL/N and ‖η‖ where any run has them.

    ``runs`` maps a label to a fit result (its ``losses`` and ``eta_norms``), a 1-D array of
    −ELBO/N, or a dict of traces with keys among ``neg_elbo_per_n``, ``nll_per_n``,
    ``kl_per_n``, ``eta_norm``. A panel whose values span more than 100 uses a symlog axis.
    """
    _check_mapping("runs", runs, "FitResult, array or dict of traces")
    traces = {name: _traces(name, run) for name, run in runs.items()}
    panels = [k for k in _TRACES if any(k in t for t in traces.values())]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        values = []
        for name, t in traces.items():
            if key in t:
                ax.plot(np.arange(1, t[key].size + 1), t[key], label=name, lw=1)
                values.append(t[key][np.isfinite(t[key])])
        ax.set_xlabel("step")
        ax.set_ylabel(_TRACE_LABELS[key])
        finite = np.concatenate(values) if values else np.zeros(0)
        if log_offset and finite.size and finite.max() - finite.min() > 100:
            ax.set_yscale("symlog")
        ax.legend()
    fig.tight_layout()
    return _finish(fig, path)


# ----------------------------------------------------------------------------- ArviZ
def _arviz_figure(plot_collection):
    fig = plot_collection.viz["figure"]
    return fig.item() if hasattr(fig, "item") else fig


def plot_ppc(tree, *, num_samples: int = 50, path=None):
    """Posterior predictive check (``arviz_plots.plot_ppc_dist``): the distribution of the
    observed next states ``x_next`` against ``num_samples`` replicated data sets from the
    ``posterior_predictive`` group of a :func:`~noether_ppl.inference.to_arviz` DataTree."""
    _pyplot()
    import arviz_plots

    if not hasattr(tree, "children") or "posterior_predictive" not in tree.children:
        raise ValueError("Expected `tree` to be a to_arviz DataTree with a "
                         "'posterior_predictive' group.")
    pc = arviz_plots.plot_ppc_dist(tree, var_names=["x_next"], num_samples=num_samples,
                                   backend="matplotlib")
    return _finish(_arviz_figure(pc), path)


def plot_khat(tree_or_elpd, *, path=None):
    """Pareto k̂ of PSIS-LOO per pair (``arviz_plots.plot_khat``) from a
    :func:`~noether_ppl.inference.to_arviz` DataTree (``arviz_stats.loo`` is computed, and
    warns when k̂ is high) or from an ``ELPDData`` computed with ``pointwise=True``."""
    _pyplot()
    import arviz_plots
    import arviz_stats

    elpd = tree_or_elpd
    if hasattr(tree_or_elpd, "children"):
        elpd = arviz_stats.loo(tree_or_elpd, pointwise=True)
    if getattr(elpd, "pareto_k", None) is None:
        raise ValueError("Expected a to_arviz DataTree or an ELPDData with pointwise Pareto k "
                         "(arviz_stats.loo(..., pointwise=True)).")
    pc = arviz_plots.plot_khat(elpd, backend="matplotlib")
    return _finish(_arviz_figure(pc), path)


def _compare_unrounded() -> dict:
    """``compare``'s keyword for an unrounded table where it has one: ArviZ 1.x rounds by the
    standard errors by default (``round_to="auto"``) and fails when one of them is NaN, as it is
    for a model whose pointwise ELPD has a Pareto k̂ of inf; 0.8.x never rounds."""
    import inspect

    import arviz_stats

    return ({"round_to": "none"}
            if "round_to" in inspect.signature(arviz_stats.compare).parameters else {})


def plot_loo_compare(trees: Mapping, *, path=None):
    """PSIS-LOO comparison of several fits (``arviz_stats.compare`` then
    ``arviz_plots.plot_compare``), e.g. ``{"vanilla": ..., "learned": ..., "oracle": ...}``
    DataTrees from :func:`~noether_ppl.inference.to_arviz` on the same data, or their
    ``arviz_stats.loo(..., pointwise=True)`` (not computed again)."""
    _check_mapping("trees", trees, "DataTree or pointwise ELPDData")
    _pyplot()
    import arviz_plots
    import arviz_stats

    with warnings.catch_warnings():
        # arviz_stats.compare sorts with DataFrame.sort_values(inplace=True), which pandas
        # deprecates; the table is unaffected, and users cannot act on the message.
        warnings.filterwarnings("ignore", message="The inplace keyword",
                                category=DeprecationWarning)
        table = arviz_stats.compare(dict(trees), **_compare_unrounded())
    pc = arviz_plots.plot_compare(table, backend="matplotlib")
    return _finish(_arviz_figure(pc), path)
