"""Identities of the phase-space geometry (Sec. 2–3.1, Eq. 4), checked in float64."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import geometry, systems

M = 4


def random_polynomial(rng, degree, m=M):
    """A dense random polynomial of the given degree in x (m,), as a JAX callable."""
    coeffs = [rng.normal(size=(m,) * k) for k in range(degree + 1)]

    def f(x):
        out, power = coeffs[0], jnp.ones(())
        for c in coeffs[1:]:
            power = jnp.multiply.outer(power, x)
            out = out + jnp.sum(c * power)
        return out

    return f


def random_quadratic(rng, m=M):
    W = rng.normal(size=(m, m))
    return W + W.T, rng.normal(size=m)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def points(rng):
    return jnp.asarray(rng.normal(size=(16, M)))


def test_symplectic_form():
    J = np.asarray(geometry.symplectic_form(M))
    np.testing.assert_array_equal(J.T, -J)
    np.testing.assert_array_equal(J @ J, -np.eye(M))
    np.testing.assert_array_equal(J[:2, 2:], np.eye(2))  # dq/dt = ∂H/∂p


def test_vector_field_is_hamiltons_equations():
    H = lambda x: 0.5 * (x[2] ** 2 + x[3] ** 2) + x[0] ** 3 + x[0] * x[1]
    x = jnp.array([0.3, -1.2, 0.7, 2.0])
    q1, q2, p1, p2 = np.asarray(x)
    expected = [p1, p2, -(3 * q1**2 + q2), -q1]  # (∂H/∂p, −∂H/∂q)
    np.testing.assert_allclose(geometry.hamiltonian_vector_field(H)(x), expected, rtol=1e-14)


@pytest.mark.parametrize("degrees", [(3, 4, 3)])
def test_poisson_bracket_is_a_lie_bracket(rng, points, degrees):
    f, g, h = (random_polynomial(rng, d) for d in degrees)
    pb = geometry.poisson_bracket
    at = lambda obs: np.asarray(jax.jit(jax.vmap(obs))(points))
    fg, gf = at(pb(f, g)), at(pb(g, f))
    scale = np.abs(fg).max()
    np.testing.assert_allclose(fg, -gf, atol=1e-12 * scale)
    assert scale > 1.0  # non-trivial brackets
    # Leibniz: {f, g h} = {f, g} h + g {f, h}
    gh = lambda x: g(x) * h(x)
    lhs = at(pb(f, gh))
    rhs = at(pb(f, g)) * at(h) + at(g) * at(pb(f, h))
    np.testing.assert_allclose(lhs, rhs, atol=1e-11 * np.abs(lhs).max())
    # Jacobi: {f, {g, h}} + {g, {h, f}} + {h, {f, g}} = 0
    terms = [at(pb(f, pb(g, h))), at(pb(g, pb(h, f))), at(pb(h, pb(f, g)))]
    size = max(np.abs(t).max() for t in terms)
    np.testing.assert_allclose(sum(terms), 0.0, atol=1e-11 * size)


def test_quadratic_is_conserved_by_its_own_flow(rng, points):
    A, b = random_quadratic(rng)
    G = geometry.generator_from_quadratic(A, b)
    C = lambda x: geometry.quadratic_observable(A, b, x)
    for tau in (0.3, -1.1):
        moved = geometry.apply_flow(geometry.flow(G, tau), points)
        assert np.abs(np.asarray(moved - points)).max() > 1e-2
        np.testing.assert_allclose(C(moved), C(points), rtol=1e-10, atol=1e-10)
    # and {C, C} = 0 pointwise
    bracket = jax.vmap(geometry.poisson_bracket(C, C))(points)
    np.testing.assert_allclose(bracket, 0.0, atol=1e-12)


def test_expm_flow_matches_numerical_integration(rng, points):
    A, b = random_quadratic(rng)
    A, b = 0.3 * A, 0.3 * b
    tau = 0.7
    term = diffrax.ODETerm(lambda t, y, args: geometry.quadratic_vector_field(A, b, y))
    sol = diffrax.diffeqsolve(
        term, diffrax.Dopri8(), t0=0.0, t1=tau, dt0=None, y0=points,
        stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12), max_steps=100_000)
    exact = geometry.apply_flow(geometry.flow(geometry.generator_from_quadratic(A, b), tau), points)
    np.testing.assert_allclose(exact, sol.ys[-1], rtol=1e-8, atol=1e-8)


def test_vector_field_of_quadratic_matches_autodiff(rng, points):
    A, b = random_quadratic(rng)
    C = lambda x: geometry.quadratic_observable(A, b, x)
    auto = jax.vmap(geometry.hamiltonian_vector_field(C))(points)
    np.testing.assert_allclose(geometry.quadratic_vector_field(A, b, points), auto, rtol=1e-12)
    # G acting on homogeneous coordinates (x, 1) gives the same affine field (Eq. 4)
    G = np.asarray(geometry.generator_from_quadratic(A, b))
    homog = np.concatenate([np.asarray(points), np.ones((len(points), 1))], axis=1)
    np.testing.assert_allclose((homog @ G.T)[:, :M], auto, rtol=1e-12)
    np.testing.assert_array_equal(G[M], 0.0)


def test_generator_round_trip(rng):
    A, b = random_quadratic(rng)
    G = geometry.generator_from_quadratic(A, b)
    A2, b2 = geometry.quadratic_from_generator(G)
    np.testing.assert_allclose(A2, A, rtol=1e-14)
    np.testing.assert_allclose(b2, b, rtol=1e-14)
    np.testing.assert_allclose(geometry.generator_from_quadratic(A2, b2), G, rtol=1e-14)
    W = rng.normal(size=(M, M))
    np.testing.assert_array_equal(geometry.symmetric_from_unconstrained(W), W + W.T)


def test_commutator_of_generators_is_generator_of_poisson_bracket(rng):
    (A1, b1), (A2, b2) = random_quadratic(rng), random_quadratic(rng)
    C1 = lambda x: geometry.quadratic_observable(A1, b1, x)
    C2 = lambda x: geometry.quadratic_observable(A2, b2, x)
    C3 = geometry.poisson_bracket(C1, C2)  # quadratic again (plus a constant)
    zero = jnp.zeros(M)
    A3, b3 = jax.jit(jax.hessian(C3))(zero), jax.jit(jax.grad(C3))(zero)
    lhs = geometry.lie_bracket(geometry.generator_from_quadratic(A1, b1),
                               geometry.generator_from_quadratic(A2, b2))
    np.testing.assert_allclose(lhs, geometry.generator_from_quadratic(A3, b3), atol=1e-12)
    assert np.abs(np.asarray(lhs)).max() > 1.0


@pytest.mark.parametrize("n", [2, 3])
def test_closure_of_u_n(n):
    G = systems.CoupledOscillators(n).generators()
    assert geometry.closure_residual(G) < 1e-12
    assert geometry.is_closed(G)


def test_closure_of_symplectic_algebra_and_random_sets(rng):
    m = 4
    basis = []  # all quadratic forms: sp(4), dimension 10
    for i in range(m):
        for j in range(i, m):
            A = np.zeros((m, m))
            A[i, j] = A[j, i] = 1.0
            basis.append(A)
    G = geometry.generator_from_quadratic(np.stack(basis), np.zeros((len(basis), m)))
    assert geometry.span_basis(G).shape == (10, (m + 1) ** 2)
    assert geometry.is_closed(G)
    A = np.stack([random_quadratic(rng)[0] for _ in range(3)])
    G_random = geometry.generator_from_quadratic(A, np.zeros((3, m)))
    assert geometry.closure_residual(G_random) > 1e-2
    assert not geometry.is_closed(G_random)


def test_batched_vmap_and_jit(rng, points):
    K, S = 3, 5
    A = np.stack([random_quadratic(rng)[0] for _ in range(K)])
    b = rng.normal(size=(K, M))
    G = geometry.generator_from_quadratic(A, b)
    assert G.shape == (K, M + 1, M + 1)
    for k in range(K):
        np.testing.assert_allclose(G[k], geometry.generator_from_quadratic(A[k], b[k]))
    vals = geometry.quadratic_observable(A[:, None], b[:, None], points[None])
    assert vals.shape == (K, len(points))
    for k in range(K):
        x = np.asarray(points)
        direct = 0.5 * np.einsum("ni,ij,nj->n", x, A[k], x) + x @ b[k]
        np.testing.assert_allclose(vals[k], direct, rtol=1e-13)
    taus = jnp.linspace(-1.0, 1.0, S)
    Phis = geometry.flow(G[0], taus)
    assert Phis.shape == (S, M + 1, M + 1)
    for s in range(S):
        np.testing.assert_allclose(Phis[s], jax.scipy.linalg.expm(taus[s] * G[0]), rtol=1e-12)
    np.testing.assert_allclose(geometry.flow(G, 0.0), np.broadcast_to(np.eye(M + 1), G.shape))
    jitted = jax.jit(lambda G, t, x: geometry.apply_flow(geometry.flow(G, t), x))
    np.testing.assert_allclose(jitted(G[1], 0.4, points),
                               geometry.apply_flow(geometry.flow(G[1], 0.4), points), rtol=1e-12)
    f, g = random_polynomial(rng, 3), random_polynomial(rng, 2)
    single = jax.jit(geometry.poisson_bracket(f, g))
    batched = jax.jit(jax.vmap(geometry.poisson_bracket(f, g)))(points)
    looped = [single(x) for x in points]
    np.testing.assert_allclose(batched, looped, rtol=1e-12)


def test_bad_inputs_raise_value_error():
    for bad in (3, 0, -2, 2.0, True):
        with pytest.raises(ValueError, match="phase_dim"):
            geometry.symplectic_form(bad)
    with pytest.raises(ValueError, match="even"):
        geometry.generator_from_quadratic(np.eye(3), np.zeros(3))
    with pytest.raises(ValueError, match="`A`"):
        geometry.generator_from_quadratic(np.eye(4), np.zeros(3))
    with pytest.raises(ValueError, match="`G`"):
        geometry.quadratic_from_generator(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="even"):
        geometry.quadratic_from_generator(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="generators"):
        geometry.span_basis(np.zeros((5, 5)))


@pytest.mark.parametrize("scale", [1e-6, 0.3, 3.0])  # ‖A‖∞ up to ~15: 5 squarings
def test_expm_matches_scipy_and_its_gradient_matches_jax(rng, scale):
    import scipy.linalg

    A = rng.normal(size=(6, 5, 5)) * scale
    ref = np.stack([scipy.linalg.expm(a) for a in A])
    got = np.asarray(geometry.expm(jnp.asarray(A)))
    err = np.abs(got - ref) / np.abs(ref).max(axis=(1, 2), keepdims=True)
    assert err.max() < 1e-12
    C = jnp.asarray(rng.normal(size=(5, 5)))
    a = jnp.asarray(A[0])
    g = jax.grad(lambda m: jnp.sum(geometry.expm(m) * C))(a)
    g_ref = jax.grad(lambda m: jnp.sum(jax.scipy.linalg.expm(m) * C))(a)
    np.testing.assert_allclose(g, g_ref, rtol=0, atol=1e-12 * float(jnp.max(jnp.abs(g_ref))))


def test_expm_gradient_is_the_adjoint_frechet_derivative_for_mixed_batches(rng):
    # one batch whose members need 0, 0, 2, 5 and 7 squarings (‖A‖∞ from 0 to 38); the custom
    # VJP (exp of the 2n block) against reverse mode through JAX's own expm, member by member
    import scipy.linalg

    scales = np.array([0.0, 1e-6, 0.3, 3.0, 8.0])
    A = rng.normal(size=(5, 4, 4)) * scales[:, None, None]
    C = rng.normal(size=(5, 4, 4))
    got = jax.jit(jax.grad(lambda m: jnp.sum(geometry.expm(m) * C)))(jnp.asarray(A))
    for a, c, g in zip(A, C, np.asarray(got), strict=True):
        ref = jax.grad(lambda m, c=c: jnp.sum(jax.scipy.linalg.expm(m) * c))(jnp.asarray(a))
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-12 * float(np.abs(ref).max()))
    # L(0, C) = C, and a zero cotangent gives a zero gradient (no 0/0)
    np.testing.assert_allclose(got[0], C[0], atol=1e-14)
    zero = jax.grad(lambda m: jnp.sum(geometry.expm(m) * 0.0))(jnp.asarray(A[3]))
    np.testing.assert_array_equal(np.asarray(zero), 0.0)
    # the value under vmap is the batched value
    ref = np.stack([scipy.linalg.expm(a) for a in A])
    err = np.abs(np.asarray(jax.vmap(geometry.expm)(jnp.asarray(A))) - ref)
    assert (err / np.abs(ref).max(axis=(1, 2), keepdims=True)).max() < 1e-12


def test_check_quadratic_generators_accepts_quadratics_and_names_what_is_wrong(rng):
    """Generators of quadratic observables (Eq. 4) pass, including float32-rounded ones and the
    zero generator; a non-symmetric A or a non-zero bottom row is refused with the argument's
    name, the generator's index and the defect, as in symmetry_report's ``reference``."""
    from noether_ppl.analysis import symmetry_report

    quads = [random_quadratic(rng) for _ in range(3)]
    G = np.asarray(geometry.generator_from_quadratic(np.stack([A for A, _ in quads]),
                                                     np.stack([b for _, b in quads])))
    G = np.concatenate([G, np.zeros((1, M + 1, M + 1))])
    out = geometry.check_quadratic_generators(G, phase_dim=M)
    assert out.dtype == np.float64 and out.shape == (4, M + 1, M + 1)
    np.testing.assert_array_equal(out, G)
    assert geometry.check_quadratic_generators(G[0]).shape == (1, M + 1, M + 1)
    geometry.check_quadratic_generators(G.astype(np.float32))
    # A = -J G[:M, :M]: perturb one off-diagonal entry of A by 1e-3 of the largest entry.
    A, b = quads[1]
    A_bad = A.copy()
    A_bad[0, 3] += 1e-3 * np.abs(G[1]).max()
    bad = G.copy()
    bad[1] = np.asarray(geometry.generator_from_quadratic(A_bad, b))
    with pytest.raises(ValueError, match=r"`reference`.*generator 1 has A = -J G\[:M, :M\] "
                                         r"not symmetric"):
        geometry.check_quadratic_generators(bad, name="reference")
    geometry.check_quadratic_generators(bad, rtol=2e-3)           # within a looser tolerance
    bad = G.copy()
    bad[2, M, 0] = 0.1
    with pytest.raises(ValueError, match="`generators`.*generator 2 has a non-zero bottom row"):
        geometry.check_quadratic_generators(bad)
    with pytest.raises(ValueError, match="M even"):
        geometry.check_quadratic_generators(np.zeros((2, 4, 4)))
    for wrong, match in ((np.zeros((1, 3, 3)), "phase_dim=4"),
                         (np.full((1, 5, 5), np.nan), "finite")):
        with pytest.raises(ValueError, match=match):
            geometry.check_quadratic_generators(wrong, phase_dim=M)
    with pytest.raises(ValueError, match="reference.*bottom row"):
        symmetry_report(G[:3], reference=bad)
