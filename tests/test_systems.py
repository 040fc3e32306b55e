"""Ground-truth systems (App. B) and their float64 simulation (App. C)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from noether_ppl import geometry, systems
from noether_ppl.data import Trajectories

SHO = systems.HarmonicOscillator()
OSC3 = systems.CoupledOscillators(3)
NBODY = systems.NBody(n_bodies=3, dim=2)

ALL_SYSTEMS = [
    SHO,
    systems.HarmonicOscillator(mass=2.0, stiffness=0.5),
    systems.CoupledOscillators(1),
    systems.CoupledOscillators(2),
    OSC3,
    NBODY,
    systems.NBody(n_bodies=3, dim=2, masses=[1.0, 2.5, 0.4], gravity=1.7, softening=0.3),
    systems.NBody(n_bodies=4, dim=3, masses=[1.0, 2.0, 0.5, 1.5]),
]


def random_points(system, n=32, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, system.phase_dim))
    return jnp.asarray(2.0 * x)


def rank(G, rtol=1e-10):
    s = np.linalg.svd(G.reshape(len(G), -1), compute_uv=False)
    return int(np.sum(s > rtol * s[0]))


def relative_energy_drift(system, traj):
    H = np.asarray(system.hamiltonian(traj.states))
    return np.max(np.abs(H - H[:, :1]) / np.abs(H[:, :1]))


@pytest.mark.parametrize("system", ALL_SYSTEMS, ids=repr)
def test_generators_poisson_commute_with_h(system):
    G = system.generators()
    A, b = (np.asarray(a) for a in geometry.quadratic_from_generator(G))
    x = random_points(system)
    grad_H = np.asarray(jax.vmap(jax.grad(system._energy))(x))
    field_H = np.asarray(system.vector_field(x))
    for l, name in enumerate(system.generator_names()):
        grad_C = np.asarray(x) @ A[l].T + b[l]
        bracket = np.sum(grad_C * field_H, axis=-1)  # {C, H} = ∇C · J∇H
        scale = np.linalg.norm(grad_C, axis=-1) * np.linalg.norm(grad_H, axis=-1)
        assert np.all(np.abs(bracket) < 1e-9 * scale), (name, np.abs(bracket / scale).max())


@pytest.mark.parametrize("system", ALL_SYSTEMS, ids=repr)
def test_generators_are_valid_and_closed(system):
    G = system.generators()
    M = system.phase_dim
    assert G.dtype == np.float64 and G.shape[1:] == (M + 1, M + 1)
    np.testing.assert_array_equal(G[:, M], 0.0)
    A, _ = geometry.quadratic_from_generator(G)
    np.testing.assert_allclose(A, np.swapaxes(A, 1, 2), atol=1e-15)
    names = system.generator_names()
    assert len(names) == len(G) == len(set(names))
    assert geometry.closure_residual(G) < 1e-10
    G[0] += 1.0  # a copy: the system's ground truth is untouched
    assert not np.any(system.generators()[0, M] == 1.0)


@pytest.mark.parametrize(
    "system, dimension",
    [(SHO, 1), (systems.CoupledOscillators(1), 1), (systems.CoupledOscillators(2), 4),
     (OSC3, 9), (NBODY, 7), (systems.NBody(n_bodies=4, dim=3), 15)],
    ids=repr,
)
def test_generator_span_dimension(system, dimension):
    assert rank(system.generators()) == dimension
    assert len(system.generators()) == dimension


def test_paper_shapes_and_names():
    assert systems.NBody(n_bodies=3, dim=2).generators().shape == (7, 13, 13)
    assert NBODY.generator_names() == ["T_x", "T_y", "R^ABS_xy", "R^COM_xy", "P_x", "P_y", "Q_xy"]
    assert OSC3.generator_names() == ["H_0", "H_1", "H_2", "R_01", "R_02", "R_12",
                                      "F_01", "F_02", "F_12"]
    assert SHO.generators().shape == (1, 3, 3) and SHO.generator_names() == ["H"]
    # The oscillator's generator is H's own: G = [[J diag(k, 1/m), 0], [0, 0]] (App. B.1).
    sho = systems.HarmonicOscillator(mass=2.0, stiffness=0.5)
    np.testing.assert_allclose(sho.generators()[0], [[0, 0.5, 0], [-0.5, 0, 0], [0, 0, 0]])


def test_generators_by_name_select_a_closed_subalgebra():
    # SE(2) = the translations and the rotation about the origin (the paper's Table 3 oracle):
    # the rows of those names, in the order asked, and closed under commutators on their own
    # ([R, T_x] ∝ T_y, [R, T_y] ∝ T_x, [T_x, T_y] = 0), i.e. a 3-dim Lie subalgebra of the 7.
    G = NBODY.generators()
    se2 = NBODY.generators(("T_x", "T_y", "R^ABS_xy"))
    np.testing.assert_array_equal(se2, G[[0, 1, 2]])
    np.testing.assert_array_equal(NBODY.generators(["R^ABS_xy", "T_x"]), G[[2, 0]])
    assert geometry.closure_residual(se2) < 1e-12
    # ... which R^COM and T_x are not: [R^COM, T_x] ∝ T_y, outside their span.
    assert geometry.closure_residual(NBODY.generators(("T_x", "R^COM_xy"))) > 1e-3
    for bad in ("T_x", [], ["T_x", "T_x"], ["T_z"], [0]):
        with pytest.raises(ValueError, match="`names`"):
            NBODY.generators(bad)


def test_conserved_quantities_match_formulas():
    x = random_points(NBODY, n=5)
    C = np.asarray(NBODY.conserved_quantities(x))
    assert C.shape == (5, 7)
    q = np.asarray(x[:, :6]).reshape(5, 3, 2)
    p = np.asarray(x[:, 6:]).reshape(5, 3, 2)
    T = p.sum(axis=1)
    q_com = q.mean(axis=1)
    r_abs = np.sum(q[..., 0] * p[..., 1] - q[..., 1] * p[..., 0], axis=1)
    r_com = q_com[:, 0] * T[:, 1] - q_com[:, 1] * T[:, 0]
    expected = np.stack([T[:, 0], T[:, 1], r_abs, r_com, T[:, 0] ** 2, T[:, 1] ** 2,
                         T[:, 0] * T[:, 1]], axis=1)
    np.testing.assert_allclose(C, expected, rtol=1e-12, atol=1e-12)
    y = random_points(OSC3, n=4)
    H = np.asarray(OSC3.conserved_quantities(y))[:, :3].sum(axis=1)
    np.testing.assert_allclose(H, OSC3.hamiltonian(y), rtol=1e-13)


def test_nbody_hamiltonian_is_invariant_under_rototranslations():
    rng = np.random.default_rng(1)
    for system in (NBODY, systems.NBody(n_bodies=4, dim=3, masses=[1.0, 2.0, 0.5, 1.5])):
        n, D = system.n_bodies, system.dim
        x = np.asarray(random_points(system, n=8))
        q, p = x[:, : n * D].reshape(8, n, D), x[:, n * D:].reshape(8, n, D)
        R, _ = np.linalg.qr(rng.normal(size=(D, D)))
        shift = rng.normal(size=D) * 5
        moved = np.concatenate([(q @ R.T + shift).reshape(8, -1), (p @ R.T).reshape(8, -1)], 1)
        np.testing.assert_allclose(system.hamiltonian(moved), system.hamiltonian(x), rtol=1e-12)
        # a non-symmetry changes H: moving one body only
        one = x.copy()
        one[:, 0] += 1.0
        assert np.abs(np.asarray(system.hamiltonian(one) - system.hamiltonian(x))).min() > 1e-6


def test_hamiltonian_and_vector_field_batching():
    x = random_points(NBODY, n=6).reshape(2, 3, -1)
    H = NBODY.hamiltonian(x)
    F = NBODY.vector_field(x)
    assert H.shape == (2, 3) and F.shape == (2, 3, 12)
    np.testing.assert_allclose(H[1, 2], NBODY.hamiltonian(x[1, 2]), rtol=1e-14)
    np.testing.assert_allclose(F[0, 1], geometry.hamiltonian_vector_field(NBODY._energy)(x[0, 1]),
                               rtol=1e-14)
    # Kinetic part by hand: dq/dt = p / m
    np.testing.assert_allclose(F[..., :6], x[..., 6:], rtol=1e-14)


@pytest.mark.parametrize("system, n, n_steps, dt", [(SHO, 7, 3, 0.2), (OSC3, 20, 49, 0.3),
                                                     (NBODY, 20, 49, 0.3)], ids=repr)
def test_simulation_energy_drift(system, n, n_steps, dt):
    traj = system.simulate(jax.random.key(3), n_trajectories=n, n_steps=n_steps, dt=dt)
    assert isinstance(traj, Trajectories)
    assert traj.states.shape == (n, n_steps + 1, system.phase_dim)
    assert traj.states.dtype == np.float64 and traj.dt == dt
    assert relative_energy_drift(system, traj) < 1e-8
    # every ground-truth quantity is conserved too
    C = np.asarray(system.conserved_quantities(traj.states))
    scale = np.abs(C[:, :1]).max(axis=0) + 1.0
    assert np.all(np.abs(C - C[:, :1]) < 1e-7 * scale)
    # the trajectory moves
    assert np.abs(traj.states[:, -1] - traj.states[:, 0]).max() > 0.1


def test_simulation_matches_exact_oscillator_solution():
    sho = systems.HarmonicOscillator(mass=2.0, stiffness=0.5)
    x0 = np.array([[1.0, 0.0], [0.3, -1.2]])
    traj = sho.integrate(x0, n_steps=30, dt=0.25)
    t = traj.times[None, :]
    w = np.sqrt(0.5 / 2.0)
    q = x0[:, :1] * np.cos(w * t) + x0[:, 1:] / (2.0 * w) * np.sin(w * t)
    p = -x0[:, :1] * 2.0 * w * np.sin(w * t) + x0[:, 1:] * np.cos(w * t)
    np.testing.assert_allclose(traj.states, np.stack([q, p], -1), rtol=0, atol=1e-10)


def test_simulation_is_float64_and_reproducible_without_global_x64():
    key = jax.random.key(11)
    ref = SHO.simulate(key, n_trajectories=7, n_steps=3, dt=0.2)
    with jax.enable_x64(False):
        again = SHO.simulate(key, n_trajectories=7, n_steps=3, dt=0.2)
    assert again.states.dtype == np.float64
    np.testing.assert_array_equal(again.states, ref.states)
    np.testing.assert_array_equal(ref.states[:, 0], SHO.sample_initial_conditions(key, 7))
    other = SHO.simulate(jax.random.key(12), n_trajectories=7, n_steps=3, dt=0.2)
    assert not np.allclose(other.states, ref.states)


def test_initial_condition_options():
    key = jax.random.key(5)
    n = 4000
    x = NBODY.sample_initial_conditions(key, n)  # App. C.3: N(0, 1) + per-trajectory N(0, 3²)
    q = x[:, :6].reshape(n, 3, 2)
    rel = q[:, 0] - q[:, 1]
    assert abs(rel.std() - np.sqrt(2.0)) < 0.1  # the shift is common to all bodies
    assert abs(q.mean(axis=1).std() - np.sqrt(9 + 1 / 3)) < 0.2
    assert abs(x[:, 6:].std() - 1.0) < 0.05
    plain = NBODY.sample_initial_conditions(key, n, shift_scale=0.0)
    assert abs(plain[:, :6].std() - 1.0) < 0.05
    np.testing.assert_array_equal(plain[:, 6:], x[:, 6:])
    moved = NBODY.sample_initial_conditions(key, n, position_shift=[10.0, -4.0])
    np.testing.assert_allclose(moved[:, :6] - x[:, :6], np.tile([10.0, -4.0], (n, 3)))
    wider = OSC3.sample_initial_conditions(key, n, position_scale=3.0)
    base = OSC3.sample_initial_conditions(key, n)
    np.testing.assert_allclose(wider[:, :3], 3.0 * base[:, :3])
    np.testing.assert_array_equal(wider[:, 3:], base[:, 3:])
    scaled = OSC3.sample_initial_conditions(key, n, scale=0.5)
    np.testing.assert_allclose(scaled, 0.5 * base)


def test_splits_follow_the_paper():
    assert SHO.split_settings("train") == {"n_trajectories": 7, "n_steps": 3, "dt": 0.2}
    assert SHO.split_settings("test") == {"n_trajectories": 100, "n_steps": 20, "dt": 0.2}
    for system in (OSC3, NBODY):
        assert system.split_settings("train") == {"n_trajectories": 200, "n_steps": 49,
                                                  "dt": 0.3}
        assert system.split_settings("wider")["position_scale"] == 3.0
        assert system.split_settings("moved")["position_shift"] > 0
    train = SHO.simulate_split(jax.random.key(0), "train")
    assert train.states.shape == (7, 4, 2) and train.dt == 0.2
    wider = SHO.simulate_split(jax.random.key(0), "wider", n_trajectories=7, n_steps=3)
    np.testing.assert_allclose(wider.states[:, 0, 0], 3 * train.states[:, 0, 0])
    with pytest.raises(ValueError, match="split"):
        SHO.split_settings("validation")


def test_custom_system():
    def H(x):
        return 0.5 * jnp.sum(x**2) + 0.1 * x[0] ** 4

    custom = systems.HamiltonianSystem(H, phase_dim=4, name="quartic")
    assert custom.phase_dim == 4 and custom.name == "quartic"
    assert not custom.has_known_generators
    with pytest.raises(systems.UnknownSymmetryError, match="'quartic' has no known generators"):
        custom.generators()
    with pytest.raises(ValueError, match="generators="):
        custom.conserved_quantities(jnp.zeros(4))
    traj = custom.simulate(jax.random.key(0), n_trajectories=3, n_steps=5, dt=0.1)
    assert relative_energy_drift(custom, traj) < 1e-8
    # with a known generator: the rotation of the second pair (q_1, p_1)
    A = np.zeros((1, 4, 4))
    A[0, 1, 1] = A[0, 3, 3] = 1.0
    G = np.asarray(geometry.generator_from_quadratic(A, np.zeros((1, 4))))
    known = systems.HamiltonianSystem(H, phase_dim=4, generators=G, generator_names=["L"])
    assert known.has_known_generators and known.generator_names() == ["L"]
    np.testing.assert_allclose(known.conserved_quantities(traj.states)[..., 0],
                               0.5 * (traj.states[..., 1] ** 2 + traj.states[..., 3] ** 2))
    with pytest.raises(AttributeError, match="immutable"):
        known.phase_dim = 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"hamiltonian": 3.0, "phase_dim": 2}, "`hamiltonian`"),
        ({"phase_dim": 3}, "`phase_dim`"),
        ({"phase_dim": 0}, "`phase_dim`"),
        ({"phase_dim": 2.0}, "`phase_dim`"),
        ({"phase_dim": 2, "generators": np.zeros((1, 2, 2))}, "`generators`"),
        ({"phase_dim": 2, "generators": np.ones((1, 3, 3))}, "`generators`"),
        ({"phase_dim": 2, "generators": SHO.generators(), "generator_names": ["a", "b"]},
         "`generator_names`"),
        ({"phase_dim": 2, "name": ""}, "`name`"),
    ],
)
def test_bad_system_arguments(kwargs, match):
    kwargs = {"hamiltonian": lambda x: jnp.sum(x**2), **kwargs}
    with pytest.raises(ValueError, match=match):
        systems.HamiltonianSystem(**kwargs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: systems.NBody(n_bodies=0), "`n_bodies`"),
        (lambda: systems.NBody(dim=1.5), "`dim`"),
        (lambda: systems.NBody(masses=[1.0, 2.0]), "`masses`"),
        (lambda: systems.NBody(masses=[1.0, -2.0, 1.0]), "`masses`"),
        (lambda: systems.NBody(softening=0.0), "`softening`"),
        (lambda: systems.NBody(gravity=float("nan")), "`gravity`"),
        (lambda: systems.CoupledOscillators(0), "`n`"),
        (lambda: systems.HarmonicOscillator(mass=0.0), "`mass`"),
        (lambda: systems.HarmonicOscillator(stiffness=-1.0), "`stiffness`"),
    ],
)
def test_bad_paper_system_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"key": 0}, "`key`"),
        ({"key": np.zeros(2, np.uint32)}, "`key`"),
        ({"n_trajectories": 0}, "`n_trajectories`"),
        ({"n_trajectories": 2.0}, "`n_trajectories`"),
        ({"n_trajectories": True}, "`n_trajectories`"),
        ({"n_steps": 0}, "`n_steps`"),
        ({"dt": 0.0}, "`dt`"),
        ({"dt": -0.1}, "`dt`"),
        ({"dt": float("nan")}, "`dt`"),
        ({"dt": float("inf")}, "`dt`"),
        ({"dt": "0.1"}, "`dt`"),
        ({"scale": 0.0}, "`scale`"),
        ({"position_scale": -1.0}, "`position_scale`"),
        ({"shift_scale": -1.0}, "`shift_scale`"),
        ({"position_shift": [1.0, 2.0, 3.0]}, "`position_shift`"),
        ({"rtol": 0.0}, "`rtol`"),
        ({"max_steps": 0}, "`max_steps`"),
    ],
)
def test_bad_simulation_arguments(kwargs, match):
    args = {"key": jax.random.key(0), "n_trajectories": 2, "n_steps": 3, "dt": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        NBODY.simulate(**args)


def test_bad_points_and_failed_solves():
    with pytest.raises(ValueError, match="`x`"):
        NBODY.hamiltonian(jnp.zeros((3, 5)))
    with pytest.raises(ValueError, match="`x0`"):
        SHO.integrate(np.zeros((2, 3)), n_steps=2, dt=0.1)
    with pytest.raises(ValueError, match="scalar"):
        systems.HamiltonianSystem(lambda x: x, phase_dim=2).hamiltonian(jnp.ones((3, 2)))
    with pytest.raises(RuntimeError, match="max_steps"):
        SHO.integrate(np.ones((2, 2)), n_steps=2, dt=5.0, max_steps=3)
