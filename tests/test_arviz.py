"""to_arviz (groups, dims, coords, values), LOO comparison, VI diagnostics and netCDF I/O."""

import dataclasses
import functools
import math
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from scipy import stats
from test_evaluate import SPEC, fitted, setup

from noether_ppl.inference import (
    load_arviz,
    psis_khat,
    save_arviz,
    summary,
    to_arviz,
    vi_diagnostics,
)
from noether_ppl.models import NoetherRazor

NUM_SAMPLES = 50


@functools.cache
def tree(variant: str):
    """The training pairs under 50 draws of q (shared with test_plots.py)."""
    return to_arviz(fitted(variant), setup().train, key=jax.random.key(7),
                    num_samples=NUM_SAMPLES, include_weights=variant == "oracle")


def test_to_arviz_groups_dims_and_coords():
    s = setup()
    result = fitted("oracle")
    dt = tree("oracle")
    N = s.train.n_pairs
    assert set(dt.children) == {"posterior", "posterior_predictive", "observed_data",
                                "log_likelihood", "sample_stats", "constant_data"}
    post = dt["posterior"]
    assert post["x_pred"].dims == ("chain", "draw", "pair", "coord")
    assert post["x_pred"].shape == (1, NUM_SAMPLES, N, 2)
    assert post["hamiltonian"].dims == ("chain", "draw", "probe")
    assert post["conserved_rate"].dims == ("chain", "draw", "probe", "conserved")
    assert post["weight_norm"].dims == ("chain", "draw", "layer")
    assert post["theta_1"].dims == ("chain", "draw", "theta_1_row", "theta_1_col")
    assert list(post["coord"].values) == ["q_0", "p_0"]
    assert list(post["layer"].values) == ["theta_0", "theta_1"]
    assert list(post["conserved"].values) == ["C_0"]
    np.testing.assert_array_equal(post["pair"].values, np.arange(N))
    assert dt["posterior_predictive"]["x_next"].dims == ("chain", "draw", "pair", "coord")
    assert dt["observed_data"]["x_next"].dims == ("pair", "coord")
    # The log-likelihood has the observed variable's dims (arviz_stats.loo_pit needs them).
    assert dt["log_likelihood"]["x_next"].dims == ("chain", "draw", "pair", "coord")
    assert post["symmetry_times"].dims == ("chain", "draw", "sym_sample", "conserved")
    stats_ = dt["sample_stats"]
    for name in ("log_p", "log_q", "log_weight"):
        assert stats_[name].dims == ("chain", "draw")
    assert stats_["neg_elbo_per_n"].dims == ("step",)
    const = dt["constant_data"]
    assert const["generators"].dims == ("conserved", "hom_row", "hom_col")
    assert list(const["hom_row"].values) == ["q_0", "p_0", "1"]
    assert const["conserved_value"].dims == ("probe", "conserved")
    assert dt.attrs["variant"] == "oracle"
    # Values: the data, Δt, the ELBO trace and η's generators as given.
    x_t, x_next = s.train.pairs()
    np.testing.assert_array_equal(dt["observed_data"]["x_next"].values, x_next)
    np.testing.assert_array_equal(const["x_t"].values, x_t)
    assert float(const["dt"]) == s.train.dt and int(const["num_data"]) == N
    np.testing.assert_array_equal(stats_["neg_elbo_per_n"].values, result.losses)
    np.testing.assert_array_equal(const["generators"].values, result.generators())
    # The oracle's conserved quantity is H = (q² + p²)/2 at the probes (the initial states).
    probes = const["probe_points"].values
    np.testing.assert_allclose(const["conserved_value"].values[:, 0],
                               0.5 * np.sum(probes**2, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(probes, s.train.states[:, 0])


def test_to_arviz_values_follow_the_likelihood():
    """Pointwise log-likelihood = log N(x_next | x_pred, σ²) per pair and coordinate
    (Sec. 4.1); log p = Σ pairs, coordinates + log N(θ | 0, v I) at the prior variances in
    effect; posterior predictive = x_pred + σ ε."""
    result = fitted("oracle")
    dt = tree("oracle")
    sigma2 = float(dt["constant_data"]["noise_variance"])
    assert sigma2 == result.spec.noise_variance
    x_pred = dt["posterior"]["x_pred"].values[0]
    obs = dt["observed_data"]["x_next"].values
    loglik = stats.norm.logpdf(obs[None], x_pred, math.sqrt(sigma2))
    np.testing.assert_allclose(dt["log_likelihood"]["x_next"].values[0], loglik,
                               rtol=1e-5, atol=1e-3)
    prior_var = dt["constant_data"]["prior_variance"].values
    np.testing.assert_allclose(prior_var, result.prior_variances(), rtol=1e-6)
    log_prior = sum(
        stats.norm.logpdf(dt["posterior"][f"theta_{l}"].values[0], 0.0, math.sqrt(v))
        .sum(axis=(1, 2)) for l, v in enumerate(prior_var))
    np.testing.assert_allclose(dt["sample_stats"]["log_p"].values[0],
                               loglik.sum((1, 2)) + log_prior,
                               rtol=1e-5)
    norms = [np.linalg.norm(dt["posterior"][f"theta_{l}"].values[0], axis=(1, 2))
             for l in range(len(prior_var))]
    np.testing.assert_allclose(dt["posterior"]["weight_norm"].values[0], np.stack(norms, 1),
                               rtol=1e-5)
    z = (dt["posterior_predictive"]["x_next"].values - dt["posterior"]["x_pred"].values)
    z = z.ravel() / math.sqrt(sigma2)
    assert abs(np.mean(z)) < 0.1 and abs(np.std(z) - 1) < 0.06       # 2800 draws of N(0, 1)
    # The learned quantities' rates are {C, Ĥ}: H is conserved by SO(2)-symmetric Ĥ only up
    # to the quadrature of S = 8 points, so small but not zero.
    rate = np.abs(dt["posterior"]["conserved_rate"].values)
    assert np.all(np.isfinite(rate)) and np.median(rate) < 0.5


def test_log_q_is_the_matrix_normal_density():
    """log q(θ) per draw equals the density of vec θ ~ N(vec M, U ⊗ V) (App. D.1; row-major
    vec, U = L_r L_rᵀ over rows, V = L_c L_cᵀ over columns) computed in float64 by scipy, for
    factors with distinct scales (the fitted ones are too ill-conditioned, cond(L_c) ~ 1e12,
    for a float64 reference)."""
    oracle = fitted("oracle")
    params = dict(oracle.params)
    for name, value in params.items():
        if name.endswith("row_offdiag"):
            params[name] = 0.1 * jnp.sin(jnp.arange(value.size, dtype=value.dtype))
        elif name.endswith("col_offdiag"):
            params[name] = 0.01 * jnp.sin(jnp.arange(value.size, dtype=value.dtype))
        elif name.endswith("row_logdiag"):
            params[name] = jnp.linspace(-0.5, 0.5, value.size, dtype=value.dtype)
        elif name.endswith("col_logdiag"):
            params[name] = jnp.linspace(-3.0, -2.0, value.size, dtype=value.dtype)
    result = dataclasses.replace(oracle, params=params)
    dt = to_arviz(result, setup().train, key=jax.random.key(3), num_samples=NUM_SAMPLES,
                  include_weights=True)
    expected = np.zeros(NUM_SAMPLES)
    for name, q in result.guide.get_posterior(params).items():
        L_r = np.asarray(q.scale_tril_row, np.float64)
        L_c = np.asarray(q.scale_tril_column, np.float64)
        cov = np.kron(L_r @ L_r.T, L_c @ L_c.T)
        theta = dt["posterior"][name].values[0].reshape(NUM_SAMPLES, -1)
        expected += stats.multivariate_normal(np.asarray(q.loc, np.float64).ravel(),
                                              cov).logpdf(theta)
    np.testing.assert_allclose(dt["sample_stats"]["log_q"].values[0], expected, rtol=1e-6,
                               atol=0.02)


@pytest.mark.slow  # a third compiled model (~10 s on 2 CPU cores)
def test_learned_model_with_empirical_noise_variance():
    """A model that learns C_η: η = (W, b) is stored as given, its conserved quantities at the
    probes are ½ xᵀ(W + Wᵀ)x + bᵀx (Sec. 3.1; computed through the generators), and with
    σ² = "empirical" each draw's σ² is its mean squared residual (App. D.2)."""
    oracle = fitted("oracle")  # its guide fits any model with the same layer shapes
    model = NoetherRazor(SPEC.replace(n_conserved=1, noise_variance="empirical"), phase_dim=2)
    rng = np.random.default_rng(0)
    W = jnp.asarray(rng.normal(size=(1, 2, 2)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(1, 2)), jnp.float32)
    result = dataclasses.replace(oracle, model=model, eta_norms=np.linspace(0, 1, 300),
                                 params={**oracle.params, "conserved_W": W, "conserved_b": b})
    dt = to_arviz(result, setup().train, key=jax.random.key(1), num_samples=25)
    const = dt["constant_data"]
    assert const["conserved_W"].dims == ("conserved", "coord", "coord_col")
    np.testing.assert_array_equal(const["conserved_W"].values, np.asarray(W, np.float64))
    np.testing.assert_array_equal(const["conserved_b"].values, np.asarray(b, np.float64))
    x = const["probe_points"].values
    A = np.asarray(W[0] + W[0].T, np.float64)
    expected = 0.5 * np.einsum("pi,ij,pj->p", x, A, x) + x @ np.asarray(b[0], np.float64)
    np.testing.assert_allclose(const["conserved_value"].values[:, 0], expected, rtol=1e-6)
    assert "noise_variance" not in const
    resid = dt["posterior"]["x_pred"].values - dt["observed_data"]["x_next"].values
    np.testing.assert_allclose(dt["posterior"]["noise_variance"].values,
                               np.mean(resid**2, axis=(2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(dt["sample_stats"]["eta_norm"].values, result.eta_norms)
    assert dt.attrs["variant"] == "learned"


@pytest.mark.parametrize("variant", [pytest.param("vanilla", marks=pytest.mark.slow), "oracle"])
def test_log_p_is_the_models_log_density(variant):
    """to_arviz's log p(X, θ) equals numpyro.infer.util.log_density of the model (through
    vi_diagnostics) for the same draws; both models are deterministic given θ (no symmetry /
    grid quadrature)."""
    dt = tree(variant)
    diag = vi_diagnostics(fitted(variant), setup().train, key=jax.random.key(7),
                          num_samples=NUM_SAMPLES)
    # Both sums of ~100 float32 terms of size up to ~100: equal to ~1e-4.
    np.testing.assert_allclose(diag.log_p, dt["sample_stats"]["log_p"].values[0], rtol=1e-6,
                               atol=5e-4)
    np.testing.assert_allclose(diag.log_q, dt["sample_stats"]["log_q"].values[0], rtol=1e-6,
                               atol=5e-4)
    assert diag.log_weights.shape == (NUM_SAMPLES,)
    assert np.logaddexp.reduce(diag.log_weights) == pytest.approx(0.0, abs=1e-12)
    assert 1.0 <= diag.ess <= NUM_SAMPLES and np.isfinite(diag.pareto_k)
    assert diag.good_k == pytest.approx(min(1 - 1 / math.log10(NUM_SAMPLES), 0.7))
    assert f"{diag.pareto_k:.3f}" in str(diag)


def test_loo_ranks_the_oracle_above_vanilla():
    """PSIS-LOO (arviz_stats.compare) on the symmetric oscillator data: the model with the
    right symmetry built in predicts held-out data (one coordinate of one pair at a time) better
    than the plain HNN."""
    import arviz_stats

    with warnings.catch_warnings(record=True) as caught:
        # Pareto-k warnings for some pairs are expected under VI with 28 pairs; pandas
        # deprecation warnings come from arviz_stats.compare itself.
        warnings.simplefilter("always")
        table = arviz_stats.compare({"vanilla": tree("vanilla"), "oracle": tree("oracle")})
    assert all(issubclass(w.category, (UserWarning, DeprecationWarning, FutureWarning))
               for w in caught)
    assert list(table.index) == ["oracle", "vanilla"]
    assert table.loc["oracle", "elpd"] - table.loc["vanilla", "elpd"] > table.loc["vanilla",
                                                                                  "dse"]
    # The VI-corrected variant takes log p and log q from sample_stats.
    dt = tree("oracle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        approx = arviz_stats.loo_approximate_posterior(
            dt, log_p=dt["sample_stats"]["log_p"], log_q=dt["sample_stats"]["log_q"])
    assert np.isfinite(approx.elpd) and approx.n_data_points == 2 * setup().train.n_pairs


@pytest.mark.parametrize("sigma_p,low,high", [(2.0, 0.55, 0.95), (1.1, 0.0, 0.4),
                                              (0.5, -np.inf, 0.0)])
def test_psis_khat_recovers_the_tail_of_normal_importance_ratios(sigma_p, low, high):
    """q = N(0, 1), p = N(0, σ_p²): the ratios' Pareto shape is 1 − 1/σ_p² (0.75, 0.17) for a
    proposal narrower than the target, negative for a wider one."""
    x = np.random.default_rng(0).normal(size=4000)
    log_w = stats.norm.logpdf(x, 0, sigma_p) - stats.norm.logpdf(x)
    khat, lw = psis_khat(log_w)
    assert low < khat < high
    assert np.logaddexp.reduce(lw) == pytest.approx(0.0, abs=1e-12)
    assert psis_khat(np.zeros(30))[0] == -np.inf
    with pytest.raises(ValueError, match="25"):
        psis_khat(log_w[:24])


def test_psis_khat_flags_ratios_too_spread_to_fit():
    """Log ratios spread over thousands of nats (a high-dimensional posterior against a poor
    proposal): the Pareto fit breaks down. That is k̂ = inf (one draw carries the weight), not
    the finite shape the failed fit would report, and no NumPy warnings reach the user."""
    log_w = np.random.default_rng(0).normal(size=100) * 2000.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        khat, lw = psis_khat(log_w)
    assert khat == np.inf
    np.testing.assert_allclose(lw, log_w - np.logaddexp.reduce(log_w))
    assert 1.0 / np.sum(np.exp(2 * lw)) == pytest.approx(1.0)  # ESS of one draw
    # A moderately heavy tail still gets its fitted shape.
    assert np.isfinite(psis_khat(np.random.default_rng(0).normal(size=100) * 5.0)[0])


def test_summary_is_arviz_stats_summary():
    dt = tree("oracle")
    table = summary(dt)
    means = dt["posterior"]["weight_norm"].values[0].mean(0)
    for l, m in enumerate(means):
        assert table.loc[f"weight_norm[theta_{l}]", "mean"] == pytest.approx(m, abs=0.006)
    assert "conserved_rate[0, C_0]" in table.index


def test_save_load_round_trips_bit_exactly(tmp_path):
    dt = tree("oracle")
    path = tmp_path / "run" / "arviz.nc"
    save_arviz(dt, path)
    assert os.listdir(path.parent) == ["arviz.nc"]                # no temporary file left
    back = load_arviz(path)
    xr.testing.assert_identical(dt, back)
    for group in dt.children:
        for name, var in dt[group].variables.items():
            other = back[group][name].values
            assert other.dtype == var.values.dtype or var.values.dtype.kind == "U"
            if var.values.dtype.kind == "f":
                assert other.tobytes() == var.values.tobytes(), (group, name)
            else:
                np.testing.assert_array_equal(other, var.values)
    assert back.attrs == dt.attrs


def test_truncated_or_corrupt_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "run" / "arviz.nc"
    save_arviz(tree("oracle"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated") as info:
        load_arviz(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"not a netCDF file")
    with pytest.raises(ValueError, match="arviz.nc"):
        load_arviz(path)
    with pytest.raises(FileNotFoundError):
        load_arviz(tmp_path / "missing.nc")


def test_bad_input_is_rejected():
    s = setup()
    result = fitted("oracle")
    k = jax.random.key(0)
    with pytest.raises(ValueError, match="num_samples"):
        to_arviz(result, s.train, key=k, num_samples=0)
    with pytest.raises(ValueError, match="multiple"):
        to_arviz(result, s.train, key=k, num_samples=10, num_chains=3)
    with pytest.raises(ValueError, match="probe_points"):
        to_arviz(result, s.train, key=k, probe_points=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="coord_names"):
        to_arviz(result, s.train, key=k, coord_names=["q"])
    with pytest.raises(ValueError, match="Trajectories"):
        to_arviz(result, s.train.states, key=k)
    with pytest.raises(ValueError, match="key"):
        vi_diagnostics(result, s.train, key=1)
    with pytest.raises(ValueError, match="DataTree"):
        save_arviz({"posterior": {}}, "x.nc")


def test_log_likelihood_and_predictive_are_the_models_own():
    """The pointwise log-likelihood sums over ``coord`` to numpyro.infer.util.log_likelihood of
    the model itself at the stored draws (θ and the model's symmetry times; no seed needed),
    and the posterior predictive is what numpyro's Predictive draws from the model there."""
    from numpyro.infer import Predictive
    from numpyro.infer.util import log_likelihood

    s = setup()
    result = fitted("oracle")
    dt = tree("oracle")
    post = dt["posterior"]
    samples = {name: jnp.asarray(post[name].values[0], jnp.float32)
               for name in (*result.model.site_names, "symmetry_times")}
    x_t, x_next = s.train.pairs()
    ll = log_likelihood(result.model, samples, x_t, x_next, dt=s.train.dt)["x_next"]
    # Two compiled float32 programs for the same terms of size < 6: equal to float32 round-off.
    np.testing.assert_allclose(dt["log_likelihood"]["x_next"].values[0].sum(-1),
                               np.asarray(ll), rtol=1e-6, atol=2e-6)
    pred = Predictive(result.model, samples, return_sites=["x_next"],
                      condition_deterministic=True)(jax.random.key(4), x_t, dt=s.train.dt)
    sigma = math.sqrt(result.spec.noise_variance)
    z = (np.asarray(pred["x_next"], np.float64) - post["x_pred"].values[0]).ravel() / sigma
    assert abs(np.mean(z)) < 0.1 and abs(np.std(z) - 1) < 0.06       # 2800 draws of N(0, 1)


def test_loo_and_loo_pit_run_on_to_arviz_output():
    """arviz_stats.loo and loo_pit need the log-likelihood on the observed variable's dims:
    one value per pair and coordinate. LOO's elpd is below the in-sample log predictive
    density by p_loo, and every LOO-PIT value is a probability (up to round-off)."""
    import arviz_stats

    dt = tree("oracle")
    N = setup().train.n_pairs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)                # Pareto k̂ of some points
        loo = arviz_stats.loo(dt, pointwise=True)
        pit = arviz_stats.loo_pit(dt)
    assert loo.n_data_points == 2 * N and loo.elpd_i.shape == (N, 2)
    np.testing.assert_allclose(float(loo.elpd_i.sum()), loo.elpd, rtol=1e-10)
    ll = dt["log_likelihood"]["x_next"].values.reshape(NUM_SAMPLES, N, 2)
    lppd = np.sum(np.logaddexp.reduce(ll, axis=0) - math.log(NUM_SAMPLES))
    assert loo.elpd < lppd
    np.testing.assert_allclose(lppd - loo.elpd, loo.p, rtol=1e-8)
    assert pit["x_next"].dims == ("pair", "coord")
    values = pit["x_next"].values
    # a probability up to round-off: the PIT is a sum of normalised importance weights, which
    # can reach 1 + 2.2e-16 (measured on one platform)
    eps = 1e-12
    assert values.shape == (N, 2) and np.all((values >= -eps) & (values <= 1 + eps))
    assert 0.05 < np.mean(values) < 0.95


def test_plot_trace_dist_runs_on_to_arviz_output(tmp_path):
    """arviz_plots.plot_trace_dist (broken by xarray >= 2026.4, hence the bound in
    pyproject.toml) on the compact posterior variables."""
    import arviz_plots

    pc = arviz_plots.plot_trace_dist(tree("oracle"), var_names=["weight_norm"],
                                     backend="matplotlib")
    pc.savefig(tmp_path / "trace.png")
    assert (tmp_path / "trace.png").stat().st_size > 1000


def test_map_points_in_chunks_equals_the_whole_map():
    """to_arviz's probe quantities run through pointwise.map_points: padded chunks under
    lax.map give the rows of the unchunked (eager) map, to float64 round-off."""
    from noether_ppl.pointwise import map_points

    x = jnp.asarray(np.random.default_rng(0).normal(size=(7, 2)))

    def f(p):
        return jnp.stack([jnp.sin(p[:, 0]) * p[:, 1], jnp.sum(p**2, axis=1)], axis=1)

    for chunk in (1, 3, 7, 50):
        np.testing.assert_allclose(np.asarray(jax.jit(map_points, static_argnums=(0, 2))(
            f, x, chunk)), np.asarray(f(x)), rtol=1e-15, atol=0)
