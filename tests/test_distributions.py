import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
import scipy.optimize
from numpyro.distributions.kl import kl_divergence

from noether_ppl.distributions import (
    collapsed_kl,
    kl_to_diagonal_normal,
    matrix_normal_moments,
    optimal_prior_variance,
)


def random_matrix_normal(key, n=3, p=4, scale=0.4):
    k1, k2, k3 = jax.random.split(key, 3)
    loc = jax.random.normal(k1, (n, p), jnp.float64)

    def tril(k, d):
        L = jnp.tril(scale * jax.random.normal(k, (d, d), jnp.float64), -1)
        return L + jnp.diag(jnp.exp(0.3 * jax.random.normal(jax.random.fold_in(k, 1), (d,),
                                                            jnp.float64)))

    return dist.MatrixNormal(loc, tril(k2, n), tril(k3, p))


def flat_mvn(q):
    """vec (row-major) of MN(m, U, V) is N(vec m, U ⊗ V)."""
    U = q.scale_tril_row @ q.scale_tril_row.T
    V = q.scale_tril_column @ q.scale_tril_column.T
    return dist.MultivariateNormal(q.loc.reshape(-1), covariance_matrix=jnp.kron(U, V))


def test_moments_match_the_kronecker_covariance():
    q = random_matrix_normal(jax.random.key(0))
    mvn = flat_mvn(q)
    D, tr, mm, logdet = matrix_normal_moments(q)
    assert D == 12
    np.testing.assert_allclose(tr, jnp.trace(mvn.covariance_matrix), rtol=1e-12)
    np.testing.assert_allclose(mm, jnp.sum(q.loc**2), rtol=1e-12)
    np.testing.assert_allclose(logdet, jnp.linalg.slogdet(mvn.covariance_matrix)[1], rtol=1e-10)
    x = q.sample(jax.random.key(1), (3,))
    np.testing.assert_allclose(q.log_prob(x), mvn.log_prob(x.reshape(3, -1)), rtol=1e-10)


@pytest.mark.parametrize("prior_scale", [0.7, "elementwise"])
def test_kl_equals_multivariate_normal_kl(prior_scale):
    q = random_matrix_normal(jax.random.key(2))
    n, p = q.event_shape
    if prior_scale == "elementwise":
        loc = 0.3 * jax.random.normal(jax.random.key(3), (n, p), jnp.float64)
        scale = jnp.exp(0.2 * jax.random.normal(jax.random.key(4), (n, p), jnp.float64))
        prior = dist.Normal(loc, scale).to_event(2)
    else:
        loc, scale = jnp.zeros(()), jnp.asarray(prior_scale)
        prior = dist.Normal(loc, scale).expand([n, p]).to_event(2)
    ref = kl_divergence(
        flat_mvn(q),
        dist.MultivariateNormal(jnp.broadcast_to(loc, (n, p)).reshape(-1),
                                covariance_matrix=jnp.diag(
                                    jnp.broadcast_to(scale, (n, p)).reshape(-1) ** 2)))
    np.testing.assert_allclose(kl_divergence(q, prior), ref, rtol=1e-10)


def test_kl_agrees_with_monte_carlo():
    q = random_matrix_normal(jax.random.key(5))
    prior = dist.Normal(0.0, 0.8).expand(list(q.event_shape)).to_event(2)
    x = q.sample(jax.random.key(6), (200_000,))
    log_ratio = q.log_prob(x) - prior.log_prob(x)
    mc, se = float(jnp.mean(log_ratio)), float(jnp.std(log_ratio) / jnp.sqrt(x.shape[0]))
    assert abs(float(kl_divergence(q, prior)) - mc) < 4 * se


def test_closed_form_prior_variance_is_the_numerical_argmin():
    q = random_matrix_normal(jax.random.key(7))

    def kl_at(log_v):
        return float(kl_to_diagonal_normal(q, 0.0, jnp.exp(0.5 * log_v)))

    res = scipy.optimize.minimize_scalar(kl_at, bracket=(-3.0, 3.0), tol=1e-12)
    v_star = float(optimal_prior_variance(q))
    np.testing.assert_allclose(v_star, np.exp(res.x), rtol=1e-6)
    # Eq. 18 is the KL at v* and no v does better
    np.testing.assert_allclose(collapsed_kl(q), kl_at(np.log(v_star)), rtol=1e-12)
    for factor in (0.5, 0.9, 1.1, 2.0):
        assert kl_at(np.log(factor * v_star)) > float(collapsed_kl(q))


def test_unsupported_prior_is_not_implemented():
    q = random_matrix_normal(jax.random.key(8))
    with pytest.raises(NotImplementedError):
        kl_divergence(q, dist.Laplace(0.0, 1.0).expand(list(q.event_shape)).to_event(2))
    with pytest.raises(NotImplementedError):  # wrong event shape
        kl_divergence(q, dist.Normal(0.0, 1.0).expand([4, 3]).to_event(2))
