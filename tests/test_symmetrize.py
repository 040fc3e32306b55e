import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import geometry, nn, symmetrize
from noether_ppl.integrators import rollout


def so2_generator():
    # C = (q^2 + p^2)/2: A = I, b = 0 -> the rotation of the oscillator's phase plane (App. B.1)
    return geometry.generator_from_quadratic(jnp.eye(2), jnp.zeros(2))[None]


def tiny_net(key, M=2, hidden=(16, 16)):
    w = nn.init_weights(key, nn.layer_shapes(M, hidden, 1), jnp.float64)
    return [x.at[:, -1].set(0.2) for x in w]


@pytest.mark.parametrize("measure", symmetrize.MEASURES)
@pytest.mark.parametrize("sampling", ["iid", "antithetic", "lattice"])
def test_symmetry_times_follow_the_measure(measure, sampling):
    K, S = 3, 4096
    tau = symmetrize.sample_symmetry_times(
        jax.random.key(0), S, K, measure=measure, scale=2.0, sampling=sampling,
        dtype=jnp.float64)
    assert tau.shape == (S, K)
    # mean 0 and the measure's second moment per coordinate
    second = {"normal": 4.0, "uniform": 4.0 / 3.0, "ball": 4.0 / (K + 2)}[measure]
    np.testing.assert_allclose(np.mean(tau, 0), 0.0, atol=0.12)
    np.testing.assert_allclose(np.mean(tau**2, 0), second, rtol=0.08)
    if measure == "ball":
        assert np.all(np.linalg.norm(tau, axis=1) <= 2.0 + 1e-12)
    if measure == "uniform":
        assert np.all(np.abs(tau) <= 2.0)
    if sampling == "antithetic":
        np.testing.assert_allclose(tau[: S // 2], -tau[S // 2:])


def test_bad_measure_and_sampling_raise():
    with pytest.raises(ValueError, match="measure"):
        symmetrize.sample_symmetry_times(jax.random.key(0), 4, 1, measure="cauchy")
    with pytest.raises(ValueError, match="sampling"):
        symmetrize.sample_symmetry_times(jax.random.key(0), 4, 1, sampling="sobolev")
    with pytest.raises(ValueError, match="num_samples"):
        symmetrize.sample_symmetry_times(jax.random.key(0), 0, 1)


def test_exact_orbit_average_is_invariant():
    """Grid quadrature over the full SO(2) orbit (period 2π = 2·scale) makes Ĥ invariant."""
    weights = tiny_net(jax.random.key(0))
    # tanh is analytic, so the periodic midpoint rule converges geometrically in S
    act = nn.get_activation("tanh")
    tau = symmetrize.sample_symmetry_times(None, 64, 1, measure="uniform", scale=math.pi,
                                           sampling="grid", dtype=jnp.float64)
    Phis = symmetrize.group_elements(so2_generator(), tau)
    H = symmetrize.symmetrize(lambda y: nn.mlp(weights, y, act), Phis)
    x = jax.random.normal(jax.random.key(1), (50, 2), jnp.float64)
    angles = jax.random.uniform(jax.random.key(2), (50,), jnp.float64, 0, 2 * math.pi)
    rot = geometry.flow(so2_generator()[0], angles)  # (50, 3, 3)
    x_rot = geometry.apply_flow(rot, x)
    h = H(x)
    assert float(jnp.std(h)) > 1e-2  # not trivially constant
    np.testing.assert_allclose(H(x_rot), h, atol=1e-6)
    # ... and the hand-written symmetrised value and gradient agree with autodiff of H
    v, g = symmetrize.symmetrized_value_and_grad(weights, act, Phis, x)
    np.testing.assert_allclose(v, h, rtol=1e-12)
    np.testing.assert_allclose(g, jax.vmap(jax.grad(lambda y: H(y[None])[0]))(x), atol=1e-12)


def test_monte_carlo_symmetrisation_converges_as_inverse_sqrt_S():
    weights = tiny_net(jax.random.key(3))
    act = nn.get_activation("elu")
    f = lambda y: nn.mlp(weights, y, act)
    x = jnp.array([[0.7, -1.1]])
    grid = symmetrize.sample_symmetry_times(None, 256, 1, scale=math.pi, sampling="grid",
                                            dtype=jnp.float64)
    exact = symmetrize.symmetrize(f, symmetrize.group_elements(so2_generator(), grid))(x)[0]

    # One draw of 256 iid times per repeat: its first S are an iid draw of S, so every S's
    # estimate comes from the same compiled program (one per S would compile four).
    Ss = np.array([4, 16, 64, 256])
    keys = jax.random.split(jax.random.key(4), 400)

    def values(k):  # f at the 256 group elements of one draw, each a one-element average
        tau = symmetrize.sample_symmetry_times(k, int(Ss[-1]), 1, scale=math.pi,
                                               dtype=jnp.float64)
        Phis = symmetrize.group_elements(so2_generator(), tau)
        return jax.vmap(lambda P: symmetrize.symmetrize(f, P[None])(x)[0])(Phis)

    v = jax.vmap(values)(keys)  # (reps, 256)
    # the mean of the one-element averages is symmetrize's average over all 256 elements
    tau = symmetrize.sample_symmetry_times(keys[0], int(Ss[-1]), 1, scale=math.pi,
                                           dtype=jnp.float64)
    whole = symmetrize.symmetrize(f, symmetrize.group_elements(so2_generator(), tau))(x)[0]
    np.testing.assert_allclose(v[0].mean(), whole, rtol=1e-12)
    errs = np.array([float(jnp.sqrt(jnp.mean((v[:, :S].mean(axis=1) - exact) ** 2)))
                     for S in Ss])
    slope = np.polyfit(np.log(Ss), np.log(errs), 1)[0]
    assert -0.6 < slope < -0.4, (slope, errs)


def test_oracle_hamiltonian_commutes_with_its_conserved_quantity():
    """With an exact orbit average over the U(1) generated by C = H_0 + H_1 on R^4, {C, Ĥ} = 0,
    and an implicit-midpoint rollout of J∇Ĥ conserves C to the solver's tolerance."""
    M = 4
    weights = tiny_net(jax.random.key(5), M=M)
    act = nn.get_activation("tanh")
    A, b = jnp.eye(M), jnp.zeros(M)
    G = geometry.generator_from_quadratic(A, b)[None]
    tau = symmetrize.sample_symmetry_times(None, 48, 1, scale=math.pi, sampling="grid",
                                           dtype=jnp.float64)
    Phis = symmetrize.group_elements(G, tau)
    H = symmetrize.symmetrize(lambda y: nn.mlp(weights, y, act), Phis)
    C = lambda x: geometry.quadratic_observable(A, b, x)
    bracket = geometry.poisson_bracket(C, lambda x: H(x[None])[0])
    x = jax.random.normal(jax.random.key(6), (20, M), jnp.float64)
    grad_scale = jnp.linalg.norm(jax.vmap(jax.grad(lambda y: H(y[None])[0]))(x), axis=1)
    assert float(jnp.min(grad_scale)) > 1e-3
    np.testing.assert_allclose(jax.vmap(bracket)(x), 0.0, atol=1e-6)

    field = symmetrize.symmetrized_vector_field(weights, act, Phis)
    xs = rollout(field, x[:4], 0.1, 50, integrator="midpoint", substeps=1, tol=1e-13)
    drift = jnp.abs(C(xs) - C(x[:4])[None])
    moved = jnp.linalg.norm(xs[-1] - xs[0], axis=-1)
    assert float(jnp.min(moved)) > 1e-2  # the rollout actually moves
    assert float(jnp.max(drift)) < 1e-6
    # explicit Euler does not conserve it: the test could fail
    xs_euler = rollout(field, x[:4], 0.1, 50, integrator="euler", substeps=1)
    assert float(jnp.max(jnp.abs(C(xs_euler) - C(x[:4])[None]))) > 1e-4
