import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro import handlers
from numpyro.infer import SVI, Predictive

from noether_ppl.inference import AutoMatrixNormal, MatrixNormalELBO
from noether_ppl.models import ModelSpec, NoetherRazor


def linear_regression(X, Y=None, *, prior_var=2.0, noise_var=0.25):
    """Y_n ~ N(W x_n, σ² I) with W (out, in) ~ N(0, v I): the exact posterior is
    MN(M, I, (XᵀX/σ² + I/v)⁻¹) — conjugate, and matrix normal with an identity row factor."""
    out = 2 if Y is None else Y.shape[1]
    W = numpyro.sample("W", dist.Normal(0.0, jnp.sqrt(prior_var)).expand([out, X.shape[1]])
                       .to_event(2))
    numpyro.sample("Y", dist.Normal(X @ W.T, jnp.sqrt(noise_var)).to_event(2), obs=Y)


def test_guide_recovers_the_conjugate_posterior():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 3))
    W_true = rng.normal(size=(2, 3))
    Y = X @ W_true.T + 0.5 * rng.normal(size=(12, 2))
    prior_var, noise_var = 2.0, 0.25
    precision = X.T @ X / noise_var + np.eye(3) / prior_var
    V = np.linalg.inv(precision)
    M = Y.T @ X @ V / noise_var

    guide = AutoMatrixNormal(linear_regression, init_scale=0.1)
    elbo = MatrixNormalELBO(num_particles=32, optimal_prior_variance=False)
    svi = SVI(linear_regression, guide, optax.adam(optax.cosine_decay_schedule(0.03, 3000)),
              elbo, prior_var=prior_var, noise_var=noise_var)
    res = svi.run(jax.random.key(1), 3000, jnp.asarray(X), jnp.asarray(Y), progress_bar=False)
    q = guide.get_posterior(res.params)["W"]
    sd = np.sqrt(np.diag(V))
    # means within a few percent of a posterior standard deviation
    assert np.max(np.abs(np.asarray(q.loc) - M) / sd[None, :]) < 0.05
    U_fit = np.asarray(q.scale_tril_row @ q.scale_tril_row.T)
    V_fit = np.asarray(q.scale_tril_column @ q.scale_tril_column.T)
    cov_fit = np.kron(U_fit, V_fit)
    cov_true = np.kron(np.eye(2), V)
    assert np.max(np.abs(cov_fit - cov_true)) / np.max(np.abs(cov_true)) < 0.1


def test_guide_represents_any_matrix_normal_with_pinned_scale():
    """The pinned parameterisation (L_r[0, 0] = 1) still reaches every MN(m, U, V)."""
    guide = AutoMatrixNormal(linear_regression)
    X = jnp.ones((4, 3))
    with handlers.seed(rng_seed=0):
        guide(X, jnp.ones((4, 2)))
    rng = np.random.default_rng(1)
    Lr = np.tril(rng.normal(size=(2, 2)), -1) + np.diag([0.7, 1.3])
    Lc = np.tril(rng.normal(size=(3, 3)), -1) + np.diag([0.5, 0.2, 0.9])
    target = dist.MatrixNormal(jnp.asarray(rng.normal(size=(2, 3))), jnp.asarray(Lr),
                               jnp.asarray(Lc))
    c = Lr[0, 0]
    params = {
        "W_auto_loc": target.loc,
        "W_auto_row_offdiag": jnp.asarray((Lr / c)[np.tril_indices(2, -1)]),
        "W_auto_row_logdiag": jnp.log(jnp.asarray(np.diag(Lr)[1:] / c)),
        "W_auto_col_offdiag": jnp.asarray((Lc * c)[np.tril_indices(3, -1)]),
        "W_auto_col_logdiag": jnp.log(jnp.asarray(np.diag(Lc) * c)),
    }
    q = guide.get_posterior(params)["W"]
    assert float(q.scale_tril_row[0, 0]) == 1.0
    x = target.sample(jax.random.key(2), (5,))
    np.testing.assert_allclose(q.log_prob(x), target.log_prob(x), rtol=1e-10)
    # the guide's parameters number exactly the degrees of freedom of MN(m, U, V):
    # n p means and n(n+1)/2 + p(p+1)/2 covariance entries less the one shared scale
    with handlers.seed(rng_seed=0):
        tr = handlers.trace(guide).get_trace(X, jnp.ones((4, 2)))
    n_params = sum(site["value"].size for site in tr.values() if site["type"] == "param")
    n, p = 2, 3
    assert n_params == n * p + n * (n + 1) // 2 + p * (p + 1) // 2 - 1


def test_sample_posterior_median_and_quantiles():
    guide = AutoMatrixNormal(linear_regression, init_scale=0.3)
    X = jnp.ones((4, 3))
    with handlers.seed(rng_seed=0):
        guide(X, jnp.ones((4, 2)))
    params = {
        "W_auto_loc": jnp.arange(6.0).reshape(2, 3),
        "W_auto_row_offdiag": jnp.array([0.4]),
        "W_auto_row_logdiag": jnp.array([0.2]),
        "W_auto_col_offdiag": jnp.array([0.1, 0.0, -0.2]),
        "W_auto_col_logdiag": jnp.log(jnp.array([0.5, 0.3, 0.4])),
    }
    draws = guide.sample_posterior(jax.random.key(3), params, sample_shape=(100_000,))["W"]
    assert draws.shape == (100_000, 2, 3)
    q = guide.get_posterior(params)["W"]
    cov = np.kron(np.asarray(q.scale_tril_row @ q.scale_tril_row.T),
                  np.asarray(q.scale_tril_column @ q.scale_tril_column.T))
    np.testing.assert_allclose(np.cov(np.asarray(draws).reshape(-1, 6).T), cov, atol=0.01)
    np.testing.assert_allclose(guide.median(params)["W"], params["W_auto_loc"])
    qs = guide.quantiles(params, [0.5, 0.8413447460685429])["W"]
    np.testing.assert_allclose(qs[0], params["W_auto_loc"], atol=1e-12)
    np.testing.assert_allclose(qs[1] - qs[0], np.sqrt(np.diag(cov)).reshape(2, 3), rtol=1e-6)


def test_initial_means_from_sets_where_svi_init_starts_and_restores_them():
    """Inside ``initial_means_from`` the ``*_loc`` parameters start at the given means (also as
    traced arguments of a jitted ``SVI.init``); outside, at the guide's own, even after an
    error in the block."""
    X, Y = jnp.ones((4, 3)), jnp.ones((4, 2))
    guide = AutoMatrixNormal(linear_regression)
    svi = SVI(linear_regression, guide, optax.adam(1e-2), MatrixNormalELBO())
    own = svi.get_params(svi.init(jax.random.key(0), X, Y))["W_auto_loc"]
    np.testing.assert_array_equal(own, guide.initial_means["W"])
    given = {"W": jnp.full((2, 3), 7.0)}

    def init(locs):
        with guide.initial_means_from(locs):
            return svi.init(jax.random.key(0), X, Y)

    for run in (init, jax.jit(init)):
        np.testing.assert_array_equal(svi.get_params(run(given))["W_auto_loc"], given["W"])
    with pytest.raises(RuntimeError), guide.initial_means_from(given):
        raise RuntimeError
    np.testing.assert_array_equal(
        svi.get_params(svi.init(jax.random.key(0), X, Y))["W_auto_loc"], own)


def test_guide_with_the_razor_model_under_svi_and_predictive():
    spec = ModelSpec(hidden=(8,), n_conserved=1, sym_samples=4, substeps=2)
    model = NoetherRazor(spec, phase_dim=2)
    guide = AutoMatrixNormal(model)
    x = jax.random.normal(jax.random.key(0), (6, 2))
    svi = SVI(model, guide, optax.adam(1e-3), MatrixNormalELBO(num_particles=2), dt=0.1)
    state = svi.init(jax.random.key(1), x, x)
    params = svi.get_params(state)
    assert set(params) == {"conserved_W", "conserved_b"} | {
        f"theta_{i}_auto_{what}" for i in (0, 1)
        for what in ("loc", "col_offdiag", "col_logdiag")} | {
        "theta_0_auto_row_offdiag", "theta_0_auto_row_logdiag"}
    # LeCun-normal means, zero biases
    assert np.all(np.asarray(params["theta_0_auto_loc"][:, -1]) == 0.0)
    state, loss = jax.jit(svi.update)(state, x, x)
    assert np.isfinite(float(loss))
    pred = Predictive(model, guide=guide, params=svi.get_params(state), num_samples=3,
                      return_sites=["x_next", "theta_1"])(jax.random.key(2), x, dt=0.1)
    assert pred["x_next"].shape == (3, 6, 2) and pred["theta_1"].shape == (3, 1, 9)


def test_bad_guide_arguments():
    with pytest.raises(ValueError, match="init_scale"):
        AutoMatrixNormal(linear_regression, init_scale=0.0)
    with pytest.raises(ValueError, match="model"):
        AutoMatrixNormal("not a model")

    def vector_model():
        numpyro.sample("w", dist.Normal(0.0, 1.0).expand([3]).to_event(1))

    with pytest.raises(ValueError, match="matrix-valued"):
        with handlers.seed(rng_seed=0):
            AutoMatrixNormal(vector_model)()
    with pytest.raises(ValueError, match="set up"):
        AutoMatrixNormal(linear_regression).get_posterior({})


def test_prototype_traced_under_jit_equals_the_eager_trace():
    # The guide traces the model once under jit to find its sites; the initial posterior means
    # must be the bits an eager trace with the same key gives (init_to_lecun: fan-ins 2 and 5
    # have an inexact 1/sqrt), and sites must keep their metadata.
    from noether_ppl.inference.guide import init_to_lecun

    model = NoetherRazor(ModelSpec(hidden=(5, 4), n_conserved=1, sym_samples=3, substeps=2),
                         phase_dim=2)
    x = jnp.linspace(-1.0, 1.0, 12).reshape(6, 2)
    key = jax.random.key(3)
    guide = AutoMatrixNormal(model)
    handlers.seed(guide._setup_prototype, key)(x, x, dt=0.1)
    eager_key = jax.random.split(key)[1]  # what the seed handler's first prng_key() returns
    with handlers.block():
        eager = handlers.trace(handlers.substitute(handlers.seed(model, eager_key),
                                                   substitute_fn=init_to_lecun)).get_trace(
            x, x, dt=0.1)
    latent = [n for n, s in eager.items() if s["type"] == "sample" and not s["is_observed"]]
    assert latent == list(guide._init_locs) == ["theta_0", "theta_1", "theta_2"]
    for name in latent:
        np.testing.assert_array_equal(np.asarray(guide._init_locs[name]),
                                      np.asarray(eager[name]["value"]))
        assert guide.prototype_trace[name]["fn"].event_shape == eager[name]["fn"].event_shape
    assert set(guide.prototype_trace) == set(eager)


def test_init_to_lecun_is_a_strategy_for_numpyros_autoguides():
    """numpyro's initialize_model (behind every stock autoguide) reads ``init_loc_fn().func``:
    init_to_lecun() is a partial, and AutoNormal starts at LeCun-normal means with zero biases
    and runs SVI on the razor (K = 0: the strategy sees the same weight sites for every K, and
    initialize_model's eager trace of a K > 0 model costs seconds more)."""
    import functools

    from numpyro.infer import Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    from noether_ppl.inference import init_to_lecun

    assert isinstance(init_to_lecun(), functools.partial)
    assert init_to_lecun().func is init_to_lecun
    model = NoetherRazor(ModelSpec(hidden=(8,), n_conserved=0, substeps=1), phase_dim=2)
    x = jax.random.normal(jax.random.key(0), (6, 2))
    guide = AutoNormal(model, init_loc_fn=init_to_lecun)
    svi = SVI(model, guide, optax.adam(1e-3), Trace_ELBO(), dt=0.1)
    result = svi.run(jax.random.key(1), 5, x, x, progress_bar=False)
    assert result.losses.shape == (5,) and np.all(np.isfinite(result.losses))
    loc = np.asarray(guide.median(result.params)["theta_0"])
    assert loc.shape == (8, 3)
    # Adam's steps are about lr = 1e-3 each: five move the zero biases by ~5e-3 (a stock
    # strategy, init_to_uniform, would start them anywhere in (-2, 2)).
    assert np.max(np.abs(loc[:, -1])) < 1e-2
    # LeCun normal: variance 1 / fan_in = 1/2 for the 8 x 2 input weights.
    assert 0.2 < float(np.var(loc[:, :-1])) < 1.0
