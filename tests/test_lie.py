"""The Lie-derivative toolkit (seed 000): discover, enforce, promote, and the basis-function
Hamiltonian model they act on. Float64 (conftest enables x64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from numpyro import handlers
from numpyro.infer.util import log_density

from noether_ppl import Trajectories, analysis, geometry, models, systems

DT = 0.1


def u2_quartic(x):
    """``H = ½|x|² + 0.1|x|⁴`` on ``R⁴``: a function of ``H_0 + H_1``, so U(2)-invariant."""
    r2 = x @ x
    return 0.5 * r2 + 0.1 * r2**2


def euler_pairs(H, n, noise, seed, M=4):
    """``x_t ~ N(0, I)``, ``x_{t+Δt} = x_t + Δt J∇H(x_t) + noise·ε``: the model's own likelihood."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, M))
    field = np.asarray(jax.vmap(geometry.hamiltonian_vector_field(H))(jnp.asarray(x)))
    return x, x + DT * field + noise * rng.normal(size=x.shape)


def true_weights(basis, H, rng):
    """Coefficients of a polynomial ``H`` in ``basis`` (exact interpolation on 500 points)."""
    X = rng.normal(size=(500, basis.phase_dim))
    w, *_ = np.linalg.lstsq(np.asarray(basis(X)), np.asarray(jax.vmap(H)(X)), rcond=None)
    return w


# ------------------------------------------------------------------------------- basis


def test_quadratic_basis_is_orthonormal_and_round_trips():
    M = 4
    qb = analysis.quadratic_basis(M)
    assert qb.size == M * (M + 1) // 2 + M
    flat = qb.generators.reshape(qb.size, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(qb.size), atol=1e-14)
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(3, M, M)), rng.normal(size=(3, M))
    A = W + np.swapaxes(W, 1, 2)
    G = np.asarray(geometry.generator_from_quadratic(jnp.asarray(A), jnp.asarray(b)))
    c = qb.from_generators(G)
    np.testing.assert_allclose(qb.to_generators(c), G, atol=1e-13)
    x = rng.normal(size=(5, M))
    expected = np.asarray(geometry.quadratic_observable(A[:, None], b[:, None], x[None])).T
    np.testing.assert_allclose(qb.observables(x) @ c.T, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="generators"):
        qb.from_generators(np.eye(M + 1))  # not [[JA, Jb], [0, 0]]


# ------------------------------------------------------------------------------- discover


@pytest.mark.parametrize("n", [2, 3])
def test_discover_coupled_oscillators_finds_u_n(n):
    system = systems.CoupledOscillators(n)
    points = np.random.default_rng(n).normal(size=(200, 2 * n))
    found = analysis.discover(system.hamiltonian, points, reference=system)
    assert found.dimension == n**2 == found.reference_dimension
    assert np.all(found.parallelness > 0.999), found.parallelness
    assert found.matches_reference(0.999)
    # The rule separates a clear gap: conserved at round-off, the rest far above the threshold.
    s = found.normalized_singular_values
    assert s[-n**2:].max() < 1e-12 and s[: -n**2].min() > 1e-2


def test_discover_nbody_finds_the_7_dim_span():
    system = systems.NBody(n_bodies=3, dim=2)
    points = system.sample_initial_conditions(jax.random.key(0), 300)
    found = analysis.discover(system.hamiltonian, points, reference=system)
    assert found.dimension == 7 == found.reference_dimension
    assert np.all(found.parallelness > 0.999), found.parallelness
    # the discovered conserved quantities are constant along a true trajectory
    traj = system.integrate(points[:2], n_steps=5, dt=0.3).states
    values = found.conserved_quantities(traj)
    np.testing.assert_allclose(values, np.broadcast_to(values[:, :1], values.shape), atol=1e-8)


def test_spectral_gaps_is_the_ratio_of_neighbouring_singular_values():
    s = np.array([1.0, 0.9, 0.5, 0.01, 0.005])
    # by hand: 0.5/0.01 = 50 above the 2 smallest, 0.9/0.5 = 1.8 above 3, 0.01/0.005 = 2 above 1
    gaps = analysis.spectral_gaps(s)
    assert [k for k, _ in gaps] == [2, 1, 3, 4]
    np.testing.assert_allclose([r for _, r in gaps], [50.0, 2.0, 1.8, 1.0 / 0.9], rtol=1e-12)
    # round-off values are floored at 1e-12 σ_max: one gap at the nullspace, none inside it
    gaps = analysis.spectral_gaps(np.array([1.0, 0.5, 3e-17, 1e-19, 0.0]))
    assert gaps[0] == (3, pytest.approx(0.5e12)) and [r for _, r in gaps[1:]] == [2.0, 1.0, 1.0]
    for bad in (np.array([0.1, 1.0]), np.array([1.0]), np.array([1.0, np.nan]),
                np.ones((2, 2))):
        with pytest.raises(ValueError, match="`singular_values`"):
            analysis.spectral_gaps(bad)


@pytest.mark.parametrize("name", ["oscillators2", "oscillators3", "nbody"])
def test_gap_rule_agrees_with_the_threshold_on_exact_hamiltonians(name):
    system = {"oscillators2": systems.CoupledOscillators(2),
              "oscillators3": systems.CoupledOscillators(3),
              "nbody": systems.NBody(n_bodies=3, dim=2)}[name]
    points = system.sample_initial_conditions(jax.random.key(1), 300)
    by_threshold = analysis.discover(system.hamiltonian, points, reference=system)
    by_gap = analysis.discover(system.hamiltonian, points, dimension="gap", reference=system)
    assert by_gap.dimension == by_threshold.dimension == by_gap.reference_dimension
    assert by_gap.rule.startswith("largest gap") and by_gap.threshold is None
    assert np.all(by_gap.parallelness > 0.999)
    assert by_gap.to_dict()["gaps"][0][0] == by_gap.dimension


def test_discover_so2_from_a_fitted_basis_model_of_the_oscillator():
    """Noisy oscillator data, degree-4 polynomial fit, then discover on the fitted H_w.

    Measured: sigma/sigma_max 0.024 for the conserved direction, 0.55 for the next one; the
    rule 0.1 sits between. Parallelness 0.99994."""
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(20, 2))
    t = np.arange(11) * DT  # exact flow of H = (q² + p²)/2: a rotation
    c, s = np.cos(t)[None, :, None], np.sin(t)[None, :, None]
    q0, p0 = x0[:, None, :1], x0[:, None, 1:]
    states = np.concatenate([q0 * c + p0 * s, -q0 * s + p0 * c], axis=-1)
    data = Trajectories(states + 0.01 * rng.normal(size=states.shape), dt=DT)
    model = models.BasisHamiltonian(models.PolynomialBasis(2, degree=4))
    fit = model.fit(data)
    found = analysis.discover(fit.hamiltonian, rng.normal(size=(200, 2)), threshold=0.1,
                              reference=systems.HarmonicOscillator())
    assert found.dimension == 1, found.normalized_singular_values
    assert found.parallelness[0] > 0.999
    # the gap rule needs no threshold: the conserved direction sits under the largest gap
    by_gap = analysis.discover(fit.hamiltonian, rng.normal(size=(200, 2)), dimension="gap",
                               reference=systems.HarmonicOscillator())
    assert by_gap.dimension == 1 and by_gap.parallelness[0] > 0.999


# ------------------------------------------------------------------------------- enforce


def test_enforce_makes_lie_derivatives_vanish():
    rng = np.random.default_rng(1)
    basis = models.PolynomialBasis(4, degree=4)
    model = models.BasisHamiltonian(basis)
    data = euler_pairs(u2_quartic, n=40, noise=0.01, seed=1)
    u2 = systems.CoupledOscillators(2).generators()
    fit = analysis.enforce(model, u2, data, dt=DT, points=rng.normal(size=(200, 4)))
    plain = model.fit(data, dt=DT)

    # Independent check: {H_w, C_k} by autodiff Poisson brackets at fresh points.
    A, b = geometry.quadratic_from_generator(jnp.asarray(u2))
    fresh = jnp.asarray(rng.normal(size=(50, 4)))

    def brackets(f):
        return np.stack([
            np.asarray(jax.vmap(geometry.poisson_bracket(
                f.hamiltonian, lambda x, k=k: geometry.quadratic_observable(A[k], b[k], x)))(fresh))
            for k in range(4)
        ])

    assert np.abs(brackets(fit)).max() < 1e-8
    assert np.abs(brackets(plain)).max() > 1e-3  # the unconstrained fit breaks the symmetry
    w_true = true_weights(basis, u2_quartic, rng)
    assert np.linalg.norm(fit.weights - w_true) < 0.5 * np.linalg.norm(plain.weights - w_true)


# ------------------------------------------------------------------------------- promote


def test_promote_beats_least_squares_on_few_noisy_samples():
    """30 noisy pairs, 69 coefficients: promote (u(2) candidates, weight 0.1) against least
    squares. Measured (seed 0): coefficient error 0.045 vs 0.201; the test asks for half."""
    rng = np.random.default_rng(0)
    basis = models.PolynomialBasis(4, degree=4)
    model = models.BasisHamiltonian(basis)
    w_true = true_weights(basis, u2_quartic, rng)
    points = rng.normal(size=(200, 4))
    data = euler_pairs(u2_quartic, n=30, noise=0.01, seed=0)
    candidates = systems.CoupledOscillators(2)
    promoted = analysis.promote(model, candidates, data, 0.1, dt=DT, points=points)
    plain = model.fit(data, dt=DT)
    err_promoted = np.linalg.norm(promoted.weights - w_true)
    err_plain = np.linalg.norm(plain.weights - w_true)
    assert err_promoted < 0.5 * err_plain, (err_promoted, err_plain)
    report = promoted.promotion
    assert report.n_kept == 4  # all of u(2) kept: H_w invariant under the whole group
    assert np.all(report.parallelness(candidates) > 0.999)


# ------------------------------------------------------------------------------- model


def test_marginal_likelihood_closed_form_matches_direct_computation():
    rng = np.random.default_rng(2)
    model = models.BasisHamiltonian(models.PolynomialBasis(2, degree=2), prior_variance=0.7,
                                    noise_variance=0.05)
    H = lambda x: 0.5 * x @ x + 0.3 * x[0] * x[1]
    x_t, x_next = euler_pairs(H, n=15, noise=0.2, seed=2, M=2)
    data = (x_t, x_next)
    F, a, s2 = model.n_features, model.prior_variance, model.noise_variance

    # Direct: the NumPyro model's mean is linear in w; its Jacobian is the design.
    mean = lambda w: handlers.substitute(handlers.seed(model, 0), {"w": w})(x_t, dt=DT)
    D = np.asarray(jax.jacfwd(mean)(jnp.zeros(F))).reshape(-1, F)
    z = (x_next - x_t).reshape(-1)
    direct = scipy.stats.multivariate_normal(np.zeros(z.size), a * D @ D.T + s2 * np.eye(z.size))
    np.testing.assert_allclose(model.log_marginal_likelihood(data, dt=DT), direct.logpdf(z),
                               rtol=1e-10)

    Q = np.linalg.qr(rng.normal(size=(F, 2)))[0]  # a restricted prior w = Q u
    direct_q = scipy.stats.multivariate_normal(np.zeros(z.size),
                                               a * D @ Q @ Q.T @ D.T + s2 * np.eye(z.size))
    np.testing.assert_allclose(model.log_marginal_likelihood(data, dt=DT, subspace=Q),
                               direct_q.logpdf(z), rtol=1e-10)

    # Bayes: log p(y) = log p(y, w) − log p(w | y) for any w, with the NumPyro joint density.
    m, S = model.posterior(data, dt=DT)
    for w in (m, m + rng.normal(size=F)):
        joint, _ = log_density(model, (x_t, x_next), {"dt": DT}, {"w": jnp.asarray(w)})
        post = scipy.stats.multivariate_normal(m, S).logpdf(w)
        np.testing.assert_allclose(float(joint) - post, direct.logpdf(z), rtol=1e-10)
    # The posterior mean is the ridge fit with λ = σ²/α.
    np.testing.assert_allclose(model.fit(data, dt=DT, ridge=s2 / a).weights, m, rtol=1e-9)


# ------------------------------------------------------------------------------- bad input


def _setup():
    model = models.BasisHamiltonian(models.PolynomialBasis(4, degree=2))
    data = euler_pairs(u2_quartic, n=20, noise=0.01, seed=3)
    return model, data, systems.CoupledOscillators(2).generators()


BAD = {
    "degree": lambda m, d, G: models.PolynomialBasis(4, degree=0),
    "generators": lambda m, d, G: analysis.enforce(m, np.zeros((1, 4, 4)), d, dt=DT),
    "candidates": lambda m, d, G: analysis.promote(m, G[:, :4, :4], d, 0.1, dt=DT),
    "points": lambda m, d, G: analysis.discover(u2_quartic, np.full((20, 4), np.nan)),
    "dimension": lambda m, d, G: analysis.discover(u2_quartic, np.ones((20, 4)),
                                                   dimension="largest"),
    "reference": lambda m, d, G: analysis.discover(
        u2_quartic, np.ones((20, 4)), reference=np.zeros((2, 3, 3))),
    "weight": lambda m, d, G: analysis.promote(m, G, d, -1.0, dt=DT),
}


@pytest.mark.parametrize("argument", list(BAD))
def test_bad_inputs_raise_value_error_naming_the_argument(argument):
    model, data, G = _setup()
    with pytest.raises(ValueError, match=f"`{argument}`"):
        BAD[argument](model, data, G)
    if argument == "points":  # non-finite constraint points in enforce too
        with pytest.raises(ValueError, match="`points`"):
            analysis.enforce(model, G, data, dt=DT, points=np.full((5, 4), np.inf))
