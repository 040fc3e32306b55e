"""Starting η at given conserved quantities (models.conserved_params_from_generators): the
razor's generators of the returned parameters are the given ones (Eq. 4 inverted), the rest
start as the razor's own do."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import analysis, geometry, systems
from noether_ppl.models import ModelSpec, NoetherRazor, conserved_params_from_generators


def _random_generators(rng, L, M):
    W, b = rng.normal(size=(L, M, M)), rng.normal(size=(L, M))
    return np.asarray(geometry.generator_from_quadratic(jnp.asarray(W + np.swapaxes(W, 1, 2)),
                                                        jnp.asarray(b)))


@pytest.mark.parametrize("source", ["random", "discovered"])
def test_the_razor_gets_back_the_generators_it_was_started_at(source):
    if source == "random":
        M, K = 4, 5
        G = _random_generators(np.random.default_rng(0), 3, M)
    else:  # what discover finds for three bodies: the 7-dim algebra, orthonormal
        nbody = systems.NBody(n_bodies=3, dim=2)
        points = nbody.sample_initial_conditions(jax.random.key(0), 200)
        G, M, K = analysis.discover(nbody.hamiltonian, points).generators, 12, 10
    key = jax.random.key(3)
    params = conserved_params_from_generators(G, K, key=key, scale=0.01, dtype=np.float64)
    assert params["conserved_W"].shape == (K, M, M) and params["conserved_b"].shape == (K, M)
    model = NoetherRazor(ModelSpec(hidden=(4,), n_conserved=K, dtype="float64"), phase_dim=M)
    back = np.asarray(model.generators_from_params(params))
    np.testing.assert_allclose(back[: len(G)], G, rtol=0, atol=1e-12)
    # the other K - L: entries N(0, 0.01²) from the key, as the razor's own start
    k_W, k_b = jax.random.split(key)
    L = len(G)
    np.testing.assert_allclose(params["conserved_W"][L:],
                               0.01 * np.asarray(jax.random.normal(k_W, (K, M, M)))[L:])
    np.testing.assert_allclose(params["conserved_b"][L:],
                               0.01 * np.asarray(jax.random.normal(k_b, (K, M)))[L:])


def test_generators_that_no_quadratic_has_are_refused():
    G = _random_generators(np.random.default_rng(1), 2, 4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`n_conserved`"):
        conserved_params_from_generators(G, 1, key=key, scale=0.1)
    bad = G.copy()
    bad[0, 4, 0] = 1.0  # a non-zero bottom row
    with pytest.raises(ValueError, match=r"\[\[JA, Jb\], \[0, 0\]\]"):
        conserved_params_from_generators(bad, 2, key=key, scale=0.1)
    bad = G.copy()
    bad[0, 0, 1] += 1.0  # JA with A not symmetric
    with pytest.raises(ValueError, match="symmetric"):
        conserved_params_from_generators(bad, 2, key=key, scale=0.1)
    with pytest.raises(ValueError, match="`generators`"):
        conserved_params_from_generators(np.zeros((2, 4, 4)), 2, key=key, scale=0.1)
    with pytest.raises(ValueError, match="finite"):
        conserved_params_from_generators(np.full((1, 5, 5), np.nan), 2, key=key, scale=0.1)
