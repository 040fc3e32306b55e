import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import pytest
from numpyro.infer import SVI, TraceMeanField_ELBO

from noether_ppl.distributions import optimal_prior_variance
from noether_ppl.inference import AutoMatrixNormal, MatrixNormalELBO
from noether_ppl.models import ModelSpec, NoetherRazor


@pytest.fixture(scope="module")
def tiny():
    """A float64 razor model, its guide and perturbed parameters (not the initial ones)."""
    spec = ModelSpec(hidden=(6,), activation="tanh", n_conserved=1, sym_samples=4,
                     substeps=2, noise_variance=0.05, prior_variance=0.5, dtype="float64")
    model = NoetherRazor(spec, phase_dim=2)
    guide = AutoMatrixNormal(model, init_scale=0.05)
    x = jax.random.normal(jax.random.key(0), (12, 2), jnp.float64)
    x_next = x + 0.1 * jax.random.normal(jax.random.key(1), (12, 2), jnp.float64)
    svi = SVI(model, guide, optax.adam(1e-3), MatrixNormalELBO(), dt=0.1)
    params = svi.get_params(svi.init(jax.random.key(2), x, x_next))
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    params = jax.tree_util.tree_unflatten(tree, [
        v + 0.05 * jax.random.normal(k, v.shape, v.dtype)
        for k, v in zip(keys, leaves, strict=True)])
    return model, guide, params, x, x_next


def jitted(elbo, model, guide, method="loss", **kwargs):
    """``elbo.<method>`` as a jitted function of (key, params, x, x_next)."""
    fn = getattr(elbo, method)
    return jax.jit(lambda key, params, x, x_next: fn(key, params, model, guide, x, x_next,
                                                     dt=0.1, **kwargs))


def test_fixed_prior_elbo_equals_numpyro_trace_mean_field(tiny):
    """With the model's prior, our ELBO is TraceMeanField_ELBO with the registered analytic KL."""
    model, guide, params, x, x_next = tiny
    ours = jitted(MatrixNormalELBO(optimal_prior_variance=False), model, guide)
    ref = jitted(TraceMeanField_ELBO(), model, guide)
    for seed in range(3):
        key = jax.random.key(seed)
        np.testing.assert_allclose(ours(key, params, x, x_next), ref(key, params, x, x_next),
                                   rtol=1e-12)


def test_trace_mean_field_uses_the_analytic_kl():
    """A model with latent sites only: with an analytic KL the loss does not depend on the key."""

    def prior_only():
        numpyro.sample("W", dist.Normal(0.0, 0.7).expand([3, 4]).to_event(2))

    guide = AutoMatrixNormal(prior_only, init_scale=0.3)
    svi = SVI(prior_only, guide, optax.adam(1e-3), TraceMeanField_ELBO())
    params = svi.get_params(svi.init(jax.random.key(0)))
    losses = [float(TraceMeanField_ELBO().loss(jax.random.key(i), params, prior_only, guide))
              for i in range(4)]
    assert len(set(losses)) == 1
    q = guide.get_posterior(params)["W"]
    prior = dist.Normal(0.0, 0.7).expand([3, 4]).to_event(2)
    mc = jnp.mean(q.log_prob(x := q.sample(jax.random.key(9), (20_000,))) - prior.log_prob(x))
    assert abs(losses[0] - float(mc)) < 0.05 * abs(float(mc))


def test_collapsed_elbo_is_the_elbo_at_the_optimal_prior_variance(tiny):
    """Eq. 18: the default objective equals the fixed-prior ELBO with v = v* per layer, and
    is no smaller than the ELBO at any other v."""
    model, guide, params, x, x_next = tiny
    key = jax.random.key(4)
    post = guide.get_posterior(params)
    v_star = [float(optimal_prior_variance(post[n])) for n in model.site_names]
    collapsed = jitted(MatrixNormalELBO(), model, guide)(key, params, x, x_next)
    fixed = MatrixNormalELBO(optimal_prior_variance=False)

    def at(variances):
        return fixed.loss(key, params, model, guide, x, x_next, dt=0.1,
                          prior_variances=variances)

    at = jax.jit(at)
    np.testing.assert_allclose(collapsed, at(v_star), rtol=1e-12)
    for factor in (0.5, 2.0):
        assert float(at([factor * v for v in v_star])) > float(collapsed)


def test_components_add_up_and_particles_average(tiny):
    model, guide, params, x, x_next = tiny
    c = jitted(MatrixNormalELBO(num_particles=3), model, guide, "loss_components")(
        jax.random.key(5), params, x, x_next)
    np.testing.assert_allclose(c["neg_elbo"], c["nll"] + c["kl"], rtol=1e-12)
    # the M-particle likelihood is the mean of single-particle ones with the split keys
    single = jitted(MatrixNormalELBO(num_particles=1), model, guide, "loss_components")
    keys = jax.random.split(jax.random.key(5), 3)
    nlls = [single(k, params, x, x_next)["nll"] for k in keys]
    np.testing.assert_allclose(c["nll"], np.mean(nlls), rtol=1e-12)


def test_minibatch_elbo_is_unbiased_for_the_full_data_elbo(tiny):
    """The average over a partition into mini-batches of the scaled mini-batch estimate (same
    weight and symmetry draws) equals the full-data estimate."""
    model, guide, params, x, x_next = tiny
    elbo = MatrixNormalELBO(num_particles=2)
    key = jax.random.key(6)
    full = jitted(elbo, model, guide)(key, params, x, x_next)
    batch_loss = jitted(elbo, model, guide, num_data=12)
    batches = np.arange(12).reshape(4, 3)
    parts = [batch_loss(key, params, x[b], x_next[b]) for b in batches]
    np.testing.assert_allclose(np.mean(parts), full, rtol=1e-12)
    assert np.std(parts) > 1e-6 * abs(float(full))  # the batches do differ


def test_bad_elbo_arguments():
    with pytest.raises(ValueError, match="num_particles"):
        MatrixNormalELBO(num_particles=0)

    def model():
        numpyro.sample("w", dist.Laplace(0.0, 1.0).expand([2, 2]).to_event(2))

    def guide():
        numpyro.sample("w", dist.Laplace(0.0, 1.0).expand([2, 2]).to_event(2))

    with pytest.raises(ValueError, match="No analytic KL"):
        MatrixNormalELBO().loss(jax.random.key(0), {}, model, guide)


@pytest.mark.parametrize("optimal", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_particle_strategies_give_the_same_loss_and_gradients(tiny, optimal):
    """vmap, lax.map and per-particle gradient accumulation differ only in memory and time."""
    model, guide, params, x, x_next = tiny
    results = {}
    for strategy in (True, False, "accumulate"):
        elbo = MatrixNormalELBO(num_particles=3, vectorize_particles=strategy,
                                optimal_prior_variance=optimal)

        def loss(p, a, b, variances, elbo=elbo):
            return elbo.loss(jax.random.key(5), p, model, guide, a, b, dt=0.1,
                             prior_variances=variances)

        results[strategy] = jax.jit(jax.value_and_grad(loss))(params, x, x_next, [0.5, 0.7])
    value, grad = results[True]
    for strategy in (False, "accumulate"):
        v, g = results[strategy]
        np.testing.assert_allclose(v, value, rtol=1e-12)
        for name in grad:
            np.testing.assert_allclose(g[name], grad[name], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="vectorize_particles"):
        MatrixNormalELBO(vectorize_particles="sometimes")
