"""Every figure renders headless (Agg) to a PNG of non-trivial size, and returns its figure."""

import os
import warnings

import jax
import matplotlib
import numpy as np
import pytest
from test_arviz import tree
from test_evaluate import fitted, oracle_evaluation, setup
from test_symmetry_report import SYSTEMS, _hand_made_stack

from noether_ppl import systems
from noether_ppl.analysis import discover, plots
from noether_ppl.analysis.symmetry import symmetry_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(fig, path, min_bytes=10_000):
    import matplotlib.pyplot as plt

    assert isinstance(fig, matplotlib.figure.Figure)
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > min_bytes
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name + ".")] == []
    plt.close(fig)


def test_backend_is_headless():
    plots._pyplot()
    assert matplotlib.get_backend().lower() == "agg"


def test_symmetry_figures(tmp_path):
    rng = np.random.default_rng(0)
    reports = {name: symmetry_report(_hand_made_stack(sys, rng), reference=sys)
               for name, sys in SYSTEMS.items()}
    path = tmp_path / "singular_values.png"
    check_png(plots.plot_singular_values(reports, path=path), path)
    nbody = SYSTEMS["3 bodies in 2-D"]
    path = tmp_path / "generators.png"
    fig = plots.plot_generators(_hand_made_stack(nbody, rng), reference=nbody, path=path)
    assert len(fig.axes) == 2 * 10
    check_png(fig, path)
    path = tmp_path / "generators_no_reference.png"
    check_png(plots.plot_generators(fitted("oracle"), path=path), path, min_bytes=5_000)


def test_discovery_figure(tmp_path):
    nbody = systems.NBody(n_bodies=3, dim=2)
    points = nbody.sample_initial_conditions(jax.random.key(0), 120)
    found = {"with reference": discover(nbody.hamiltonian, points, reference=nbody),
             "without": discover(nbody.hamiltonian, points, dimension="gap")}
    path = tmp_path / "discovery.png"
    check_png(plots.plot_discovery(found, path=path), path)


def test_model_figures(tmp_path):
    s = setup()
    oracle, vanilla = fitted("oracle"), fitted("vanilla")
    key = jax.random.key(0)
    path = tmp_path / "hamiltonians.png"
    fig = plots.plot_phase_space_hamiltonians(
        {"true H": lambda x: np.asarray(s.system.hamiltonian(x)),
         "oracle": lambda x: np.asarray(oracle.hamiltonian(x, key=key))},
        data=s.train, resolution=41, path=path)
    check_png(fig, path)
    path = tmp_path / "rollouts.png"
    check_png(plots.plot_rollouts(oracle_evaluation().rollouts, coords=(0, 1), path=path), path)
    path = tmp_path / "training.png"
    runs = {"vanilla": vanilla, "oracle": oracle,
            "traces": {"neg_elbo_per_n": oracle.losses, "nll_per_n": oracle.losses - 50,
                       "kl_per_n": np.full(oracle.losses.shape, 50.0),
                       "eta_norm": np.linspace(0.1, 1.0, oracle.losses.size)}}
    fig = plots.plot_training_curves(runs, path=path)
    assert [ax.get_ylabel() for ax in fig.axes] == ["−ELBO / N", "NLL / N", "KL / N", "‖η‖"]
    check_png(fig, path)


def test_arviz_figures(tmp_path):
    oracle = tree("oracle")
    path = tmp_path / "ppc.png"
    check_png(plots.plot_ppc(oracle, num_samples=20, path=path), path)
    with warnings.catch_warnings():
        # arviz_stats warns about high Pareto k (the figure shows them) and pandas deprecations.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        path = tmp_path / "khat.png"
        check_png(plots.plot_khat(oracle, path=path), path)
        path = tmp_path / "compare.png"
        fig = plots.plot_loo_compare({"vanilla": tree("vanilla"), "oracle": oracle}, path=path)
        check_png(fig, path, min_bytes=5_000)


def test_pointwise_loo_is_computed_once_per_version_of_the_file(tmp_path, monkeypatch):
    """A run's khat.png and the experiment's loo_compare.png share one PSIS-LOO per ArviZ file
    (``runs.analysis.pointwise_loo``): equal to ``arviz_stats.loo(pointwise=True)``, computed
    again only when the file changes, its warnings raised on every call; the figures take
    it."""
    import arviz_stats

    from noether_ppl.inference.arviz import save_arviz
    from noether_ppl.runs import analysis as run_analysis

    oracle = tree("oracle")
    file = tmp_path / "posterior.nc"
    save_arviz(oracle, file)
    calls = []
    real = arviz_stats.loo

    def counted(*args, **kwargs):
        calls.append(kwargs)
        warnings.warn("k hat is high", UserWarning, stacklevel=2)
        return real(*args, **kwargs)

    monkeypatch.setattr(arviz_stats, "loo", counted)
    monkeypatch.setattr(run_analysis, "_LOO_CACHE", {})
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always")
        elpd = run_analysis.pointwise_loo(file)  # read from the file
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        assert run_analysis.pointwise_loo(str(file), oracle) is elpd
    assert calls == [{"pointwise": True}]
    assert [str(w.message) for w in again] == [str(w.message) for w in first]
    assert "k hat is high" in [str(w.message) for w in first]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = real(oracle, pointwise=True)
    np.testing.assert_array_equal(np.asarray(elpd.elpd_i), np.asarray(direct.elpd_i))
    np.testing.assert_array_equal(np.asarray(elpd.pareto_k), np.asarray(direct.pareto_k))
    st = file.stat()
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the file rewritten
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert run_analysis.pointwise_loo(file) is not elpd
        assert len(calls) == 2
        path = tmp_path / "khat.png"
        check_png(plots.plot_khat(elpd, path=path), path)
        path = tmp_path / "compare.png"
        fig = plots.plot_loo_compare({"once": elpd, "twice": run_analysis.pointwise_loo(file)},
                                     path=path)
        check_png(fig, path, min_bytes=5_000)
    assert len(calls) == 2


def test_loo_compare_asks_arviz_1x_for_an_unrounded_table(monkeypatch):
    """ArviZ 1.x's ``compare`` rounds by the standard errors unless told not to, and fails on
    a NaN one (a model with Pareto k̂ = inf): the figure asks for the raw table where the keyword
    exists (1.x), and passes nothing where it does not (0.8.x)."""
    import arviz_stats

    seen = []

    def compare_1x(compare_dict, method="stacking", var_name=None, reference=None,
                   round_to="auto"):
        seen.append(round_to)
        raise RuntimeError("stop")

    def compare_08(compare_dict, method="stacking", var_name=None, **kwargs):
        seen.append(kwargs)
        raise RuntimeError("stop")

    trees = {"vanilla": tree("vanilla"), "oracle": tree("oracle")}
    for fake in (compare_1x, compare_08):
        monkeypatch.setattr(arviz_stats, "compare", fake)
        with pytest.raises(RuntimeError, match="stop"):
            plots.plot_loo_compare(trees)
    assert seen == ["none", {}]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: plots.plot_training_curves({"a": {"bogus": [1.0]}}), "bogus"),
        (lambda: plots.plot_training_curves({}), "runs"),
        (lambda: plots.plot_training_curves({"a": np.zeros((2, 2))}), "1-D"),
        (lambda: plots.plot_singular_values({}), "reports"),
        (lambda: plots.plot_discovery({"a": object()}), "Discovery"),
        (lambda: plots.plot_rollouts({"a": 1}), "RolloutMetrics"),
        (lambda: plots.plot_ppc(object()), "posterior_predictive"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
