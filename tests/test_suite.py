"""The suite of systems with hand-derived conserved spans (systems/suite.py): brackets, discovery
on the true Hamiltonian, conservation along simulations, argument checks, symplectic maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import analysis, geometry, systems
from noether_ppl.analysis.lie import discover
from noether_ppl.models import ModelSpec, NoetherRazor

REGISTRY = {**systems.PAPER, **systems.SUITE}
BUILT = {name: make() for name, make in REGISTRY.items()}
NAMES = list(BUILT)


def J(M):
    return np.asarray(geometry.symplectic_form(M, jnp.float64))


def quadratics(G):
    """``A (L, M, M)``, ``b (L, M)`` of generators ``G = [[JA, Jb], [0, 0]]`` (A = −J(JA))."""
    M = G.shape[-1] - 1
    return (-np.einsum("ij,ljk->lik", J(M), G[:, :M, :M]),
            -np.einsum("ij,lj->li", J(M), G[:, :M, M]))


def random_points(M, n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, M))


def span_projector_residual(G, target):
    """Relative distance of ``target (M+1, M+1)`` from the span of ``G``."""
    basis = geometry.span_basis(G)
    t = target.reshape(-1)
    return np.linalg.norm(t - basis.T @ (basis @ t)) / np.linalg.norm(t)


def test_registry():
    assert set(systems.DIMENSIONS) == set(systems.PAPER) | set(systems.SUITE)
    assert not set(systems.PAPER) & set(systems.SUITE)
    assert set(systems.PAPER) == {"sho", "oscillators3", "nbody2d3"}
    for name, s in BUILT.items():
        assert isinstance(s, systems.HamiltonianSystem) and s.has_known_generators, name
        G, L = s.generators(), systems.DIMENSIONS[name]
        assert G.shape == (L, s.phase_dim + 1, s.phase_dim + 1), name
        assert geometry.span_basis(G).shape[0] == L, name  # a basis: independent generators
        assert len(set(s.generator_names())) == L, name


@pytest.mark.parametrize("name", NAMES)
def test_ground_truth_poisson_commutes_with_h(name):
    """(a) ``{C, H}(x) = (Ax + b) · J∇H(x) = 0`` for every ground-truth ``C``, relative to
    ``|∇C| |∇H|``, at random points (float64)."""
    s = BUILT[name]
    A, b = quadratics(s.generators())
    x = 1.5 * random_points(s.phase_dim, 64, seed=1)
    field = np.asarray(s.vector_field(x))  # J∇H
    grad_C = np.einsum("lij,nj->nli", A, x) + b  # (n, L, M)
    bracket = np.einsum("nli,ni->nl", grad_C, field)
    scale = np.linalg.norm(grad_C, axis=-1) * np.linalg.norm(field, axis=-1)[:, None]
    assert np.all(np.abs(bracket) <= 1e-10 * scale), name
    # the spans are Lie algebras (closed under the bracket of generators)
    if len(A) > 1:
        assert geometry.closure_residual(s.generators()) < 1e-10


@pytest.mark.parametrize("name", NAMES)
def test_discover_on_true_hamiltonian_finds_the_hand_span(name):
    """(b) The Lie-derivative nullspace of the true H has exactly the hand-derived dimension,
    and spans the ground truth (principal-angle cosines and parallelness 1 − 1e-8)."""
    s = BUILT[name]
    M, L = s.phase_dim, systems.DIMENSIONS[name]
    P = M * (M + 1) // 2 + M
    found = discover(s.hamiltonian, random_points(M, 3 * P), reference=s)
    assert found.dimension == L and found.reference_dimension == L
    s_rel = found.normalized_singular_values
    if L:
        cos = analysis.subspace_cosines(found.generators.reshape(L, -1), s.generators())
        assert cos.shape == (L,) and cos.min() > 1 - 1e-8
        assert found.parallelness.min() > 1 - 1e-8
        assert found.matches_reference(1 - 1e-8)
        assert s_rel[P - L] < 1e-12  # conserved directions at round-off
        gap = discover(s.hamiltonian, random_points(M, 3 * P), dimension="gap")
        assert gap.dimension == L
    else:
        assert found.matches_reference()  # 0 == 0
    assert s_rel[P - L - 1] > 1e-3  # every other direction clearly broken


def _relative_drift(values):
    """``max |v_t − v_0| / max |v_0|`` over trajectories and times, per last-axis entry."""
    v = np.asarray(values)
    return np.max(np.abs(v - v[:, :1]), axis=(0, 1)) / np.max(np.abs(v[:, :1]), axis=(0, 1))


def _check_conservation(name):
    s = BUILT[name]
    traj = s.simulate_split(jax.random.key(3), "test", n_trajectories=6, n_steps=10)
    assert np.all(np.isfinite(traj.states))
    assert _relative_drift(np.asarray(s.hamiltonian(traj.states))[..., None])[0] < 1e-9
    C = np.asarray(s.conserved_quantities(traj.states))
    assert C.shape == traj.states.shape[:2] + (systems.DIMENSIONS[name],)
    if C.shape[-1]:
        assert np.all(_relative_drift(C) < 1e-9), name


DEFAULT_SIMULATED = ["magnetic"]  # affine generators (b ≠ 0); the rest under -m slow


@pytest.mark.parametrize("name", DEFAULT_SIMULATED)
def test_simulation_conserves_ground_truth(name):
    """(c) Energy and every ground-truth quantity stay constant along simulated trajectories."""
    _check_conservation(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(REGISTRY) - set(DEFAULT_SIMULATED)))
def test_simulation_conserves_ground_truth_all(name):
    _check_conservation(name)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: systems.AnisotropicOscillator(()), "`frequencies`"),
        (lambda: systems.AnisotropicOscillator((1.0, -2.0)), "`frequencies`"),
        (lambda: systems.AnisotropicOscillator((1.0, float("inf"))), "`frequencies`"),
        (lambda: systems.AnisotropicOscillator([[1.0, 2.0]]), "`frequencies`"),
        (lambda: systems.AnisotropicOscillator("ab"), "`frequencies`"),
        (lambda: systems.MagneticParticle(0.0), "`field`"),
        (lambda: systems.MagneticParticle(float("nan")), "`field`"),
        (lambda: systems.MagneticParticle(True), "`field`"),
        (lambda: systems.MagneticParticle([1.0, 2.0]), "`field`"),
        (lambda: systems.CentralForce("harmonic"), "`potential`"),
        (lambda: systems.CentralForce("softened-kepler", softening=0.0), "`softening`"),
        (lambda: systems.SymplecticTransform("sho", np.eye(2)), "`system`"),
        (lambda: systems.SymplecticTransform(systems.HarmonicOscillator(), np.eye(4)), "`S`"),
        (lambda: systems.SymplecticTransform(systems.HarmonicOscillator(), 2 * np.eye(2)),
         "`S`"),
        (lambda: systems.SymplecticTransform(systems.HarmonicOscillator(),
                                             [[1.0, np.nan], [0.0, 1.0]]), "`S`"),
        (lambda: systems.random_symplectic(3), "`phase_dim`"),
        (lambda: systems.random_symplectic(4, seed=-1), "`seed`"),
        (lambda: systems.random_symplectic(4, scale=0.0), "`scale`"),
    ],
)
def test_bad_arguments(make, match):
    """(d)"""
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("M, seed", [(2, 0), (4, 0), (6, 3), (8, 1)])
def test_random_symplectic_is_symplectic(M, seed):
    """(e) ``SᵀJS = J`` to 1e-12, and the transform's exact inverse ``S⁻¹ = −JSᵀJ``."""
    S = systems.random_symplectic(M, seed=seed)
    np.testing.assert_allclose(S.T @ J(M) @ S, J(M), rtol=0, atol=1e-12)
    assert np.linalg.norm(S - np.eye(M)) > 0.1  # not the identity
    base = systems.CoupledOscillators(M // 2)
    T = systems.SymplecticTransform(base, S)
    np.testing.assert_allclose(T.S_inv @ S, np.eye(M), rtol=0, atol=1e-12)


def test_symplectic_transform_maps_h_field_and_generators():
    """``H'(Sx) = H(x)``, ``f'(Sx) = S f(x)`` (canonical form kept), ``G' = T G T⁻¹`` with
    ``T = diag(S, 1)`` — computed here from the conjugation, in the suite from ``S⁻ᵀAS⁻¹``."""
    base = systems.NBody(n_bodies=2, dim=2, masses=[1.0, 2.0])
    S = systems.random_symplectic(base.phase_dim, seed=5, scale=0.3)
    T = systems.SymplecticTransform(base, S)
    x = random_points(base.phase_dim, 16, seed=2)
    np.testing.assert_allclose(T.hamiltonian(x @ S.T), base.hamiltonian(x), rtol=1e-12)
    np.testing.assert_allclose(T.vector_field(x @ S.T), np.asarray(base.vector_field(x)) @ S.T,
                               rtol=1e-10, atol=1e-10)
    M = base.phase_dim
    Tm = np.eye(M + 1)
    Tm[:M, :M] = S
    expected = Tm @ base.generators() @ np.linalg.inv(Tm)
    np.testing.assert_allclose(T.generators(), expected, rtol=0, atol=1e-11)
    assert T.generator_names() == base.generator_names()
    np.testing.assert_allclose(T.conserved_quantities(x @ S.T), base.conserved_quantities(x),
                               rtol=1e-10, atol=1e-12)
    key = jax.random.key(4)
    np.testing.assert_array_equal(T.sample_initial_conditions(key, 5),
                                  base.sample_initial_conditions(key, 5) @ S.T)
    assert T.split_settings("moved") == base.split_settings("moved")
    custom = systems.HamiltonianSystem(lambda z: jnp.sum(z**4), 2)
    assert not systems.SymplecticTransform(custom, np.eye(2)).has_known_generators


@pytest.mark.parametrize(
    "frequencies, dimension",
    [((1.0, 2.0, 1.0), 5), ((2.0, 2.0, 2.0), 9), ((1.0, 3.0**0.5, 1.0, 3.0**0.5), 8),
     ((0.5,), 1)],
)
def test_anisotropic_dimension_is_sum_of_block_squares(frequencies, dimension):
    """U(k) per block of k equal frequencies: dimension Σ k² (blocks need not be adjacent)."""
    s = systems.AnisotropicOscillator(frequencies)
    assert len(s.generators()) == dimension
    M = s.phase_dim
    found = discover(s.hamiltonian, random_points(M, 2 * (M * (M + 1) // 2 + M)), reference=s)
    assert found.dimension == dimension and found.matches_reference(1 - 1e-8)


def test_anisotropic_with_equal_frequencies_is_u_n():
    """Unit frequencies: the same span as App. B.2's U(n) generators."""
    a, u = systems.AnisotropicOscillator((1.0, 1.0, 1.0)), systems.CoupledOscillators(3)
    cos = analysis.subspace_cosines(a.generators().reshape(9, -1), u.generators())
    assert cos.shape == (9,) and cos.min() > 1 - 1e-12


def test_magnetic_guiding_centre_and_angular_momentum():
    """``{X, Y} = −1/B``; ``L = q_x p_y − q_y p_x = (B/2)(X² + Y²) − H/B`` lies in the span."""
    for B in (1.0, -0.7, 2.5):
        s = systems.MagneticParticle(B)
        A, b = quadratics(s.generators(["X", "Y"]))
        X, Y = b  # linear: C = b·x, ∇C = b
        np.testing.assert_allclose(X @ J(4) @ Y, -1.0 / B, rtol=1e-14)
        x = random_points(4, 10, seed=7)
        C = np.asarray(s.conserved_quantities(x))
        L = x[:, 0] * x[:, 3] - x[:, 1] * x[:, 2]
        H, XX, YY = C[:, 0], C[:, 3], C[:, 5]
        np.testing.assert_allclose(L, 0.5 * B * (XX + YY) - H / B, rtol=1e-12, atol=1e-12)
        A_L = np.zeros((4, 4))
        A_L[0, 3] = A_L[3, 0] = 1.0
        A_L[1, 2] = A_L[2, 1] = -1.0
        G_L = np.asarray(geometry.generator_from_quadratic(A_L, np.zeros(4)))
        assert span_projector_residual(s.generators(), G_L) < 1e-12


def test_no_conserved_quadratic_is_known_and_empty():
    """Dimension 0: known, and empty; consumers accept the empty reference."""
    hh = BUILT["henon-heiles"]
    assert hh.has_known_generators and hh.generators().shape == (0, 5, 5)
    assert hh.generator_names() == []
    x = random_points(4, 50)
    assert hh.conserved_quantities(x).shape == (50, 0)
    forced = discover(hh.hamiltonian, x, reference=hh, dimension=2)
    assert forced.reference_dimension == 0 and np.all(forced.parallelness == 0)
    assert not forced.matches_reference()
    report = analysis.symmetry_report(BUILT["magnetic"].generators()[:2], reference=hh)
    assert report.reference_dimension == 0 and not report.matches_reference()
    with pytest.raises(ValueError, match="at least one generator"):
        NoetherRazor(ModelSpec(hidden=(4,), n_conserved=1, sym_samples=2), phase_dim=4,
                     generators=hh.generators())
    user = systems.HamiltonianSystem(lambda z: jnp.sum(z**4), 2, generators=np.zeros((0, 3, 3)))
    assert user.has_known_generators and user.generators().shape == (0, 3, 3)


@pytest.mark.parametrize("fraction", [0.25, 0.99])
def test_henon_heiles_shell_initial_conditions_lie_on_the_shell_in_the_bound_well(fraction):
    """``energy_fraction=f``: H = f/6 to round-off, every point of the segment from the origin
    below it (the bound well), the drawn directions kept (those of the default squash from the
    same key), and the energy kept along the simulated trajectories."""
    key = jax.random.key(3)
    shell, plain = systems.HenonHeiles(energy_fraction=fraction), systems.HenonHeiles()
    E = fraction / 6
    for opts in ({"scale": 0.2}, {"scale": 5.0, "position_shift": 0.1}):
        x = shell.sample_initial_conditions(key, 300, **opts)
        np.testing.assert_allclose(shell.energy_np(x), E, rtol=0, atol=1e-13)
        np.testing.assert_allclose(np.asarray(shell.hamiltonian(x)), E, rtol=0, atol=1e-12)
        t = np.linspace(0.0, 1.0, 101)[:-1]
        assert np.all(shell.energy_np(t[None, :, None] * x[:, None, :]) < E)
        y = plain.sample_initial_conditions(key, 300, **opts)
        np.testing.assert_allclose(x / np.linalg.norm(x, axis=1, keepdims=True),
                                   y / np.linalg.norm(y, axis=1, keepdims=True), rtol=1e-12)
    traj = shell.simulate(key, n_trajectories=4, n_steps=5, dt=0.3, scale=0.2)
    np.testing.assert_allclose(shell.energy_np(np.asarray(traj.states)), E, rtol=0, atol=1e-10)
    assert systems.SUITE["henon-heiles-escape"]().energy_fraction == 0.99
    assert repr(shell) == f"HenonHeiles(energy_fraction={fraction!r})"


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5, True, "0.5", float("nan")])
def test_henon_heiles_refuses_an_energy_fraction_outside_the_bound_range(bad):
    with pytest.raises(ValueError, match="energy_fraction"):
        systems.HenonHeiles(energy_fraction=bad)


@pytest.mark.parametrize("energy", [0.0, 1.0 / 6.0, 0.2, -0.1])
def test_on_energy_shell_refuses_an_unbound_shell_and_the_origin(energy):
    with pytest.raises(ValueError, match="energy"):
        systems.HenonHeiles.on_energy_shell(np.ones((2, 4)), energy)
    with pytest.raises(ValueError, match="origin"):
        systems.HenonHeiles.on_energy_shell(np.zeros((1, 4)), 0.1)


def test_initial_conditions_are_bound():
    """Hénon–Heiles: |x| < 0.48 and E < 1/6, directions kept; softened Kepler: E < 0 — even for
    wide draws."""
    key = jax.random.key(0)
    hh = BUILT["henon-heiles"]
    x = hh.sample_initial_conditions(key, 500, scale=5.0, position_shift=1.0)
    assert np.all(np.linalg.norm(x, axis=1) < 0.48)
    assert np.all(np.asarray(hh.hamiltonian(x)) < 1 / 6)
    # x ↦ x / sqrt(1 + |x|²/ρ²) keeps directions and is the identity to O(|x|²) near 0
    a, b = (hh.sample_initial_conditions(key, 100, scale=c) for c in (1e-4, 1.0))
    na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(a / na, b / nb, rtol=1e-12)
    raw = 1e-4 * nb / np.sqrt(1 - nb**2 / 0.48**2)  # the undone squash of b, scaled
    np.testing.assert_allclose(na, raw / np.sqrt(1 + raw**2 / 0.48**2), rtol=1e-12)
    kepler = BUILT["central-softened-kepler"]
    for split in ("train", "moved", "wider"):
        opts = {k: v for k, v in kepler.split_settings(split).items()
                if k in ("scale", "position_scale", "position_shift")}
        x = kepler.sample_initial_conditions(key, 500, **opts)
        assert np.all(np.asarray(kepler.hamiltonian(x)) < 0), split
