"""A suite of Hamiltonian systems beyond the paper's three, each with its hand-derived span of
quadratic conserved quantities ``C(x) = ½ xᵀAx + bᵀx`` (Sec. 3.1) as ground-truth generators
``G = [[JA, Jb], [0, 0]]`` (Eq. 4): test cases for discovery (``analysis.lie.discover``) and
for Noether's razor where the answer is known by hand.

The span's dimension counts independent generators; constants do not count (their generator is
zero). For a quadratic ``H = ½ xᵀSx`` the conserved quadratics are the ``A`` with
``A(JS) + (JS)ᵀA = 0`` (the centraliser of the Hamiltonian matrix ``JS`` in ``sp(M)``) and the
conserved linear forms the ``b`` with ``(JS)ᵀb = 0``.

:data:`SUITE` names the suite's systems, :data:`~noether_ppl.systems.paper.PAPER` the paper's,
and :data:`DIMENSIONS` gives the hand-derived dimension of every name in either.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import scipy.linalg

from .. import geometry
from ..data import check_int
from .base import HamiltonianSystem, _check_real, quadratic_generators
from .paper import CoupledOscillators, NBody

__all__ = [
    "AnisotropicOscillator",
    "MagneticParticle",
    "CentralForce",
    "HenonHeiles",
    "QuarticOscillator",
    "SymplecticTransform",
    "random_symplectic",
    "SUITE",
    "DIMENSIONS",
]


def _sym(M: int, entries) -> np.ndarray:
    """``A (M, M)`` with ``½ xᵀAx = Σ c x_a x_b`` over the listed ``(a, b, c)`` (``a == b``
    allowed: then ``c x_a²``)."""
    A = np.zeros((M, M))
    for a, b, c in entries:
        A[a, b] += c
        A[b, a] += c
    return A


def _product(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``A`` with ``½ xᵀAx = (u·x)(v·x)``: ``uvᵀ + vuᵀ``."""
    return np.outer(u, v) + np.outer(v, u)


# -------------------------------------------------------------------------------------------
# Oscillators with several frequencies: U(k) per block of equal frequencies
# -------------------------------------------------------------------------------------------


class AnisotropicOscillator(HamiltonianSystem):
    """``H = Σ_i ½(p_i² + ω_i² q_i²)`` on ``R^{2n}``, ``x = (q_0..q_{n-1}, p_0..p_{n-1})``.

    Ground truth (by hand): ``H = ½ xᵀSx`` with ``JS`` semisimple, eigenvalues ``±iω_i``; its
    centraliser in ``sp(2n)`` is ``⊕ u(k)`` over the blocks of ``k`` equal frequencies, and no
    linear form is conserved (``S`` is invertible). Dimension ``Σ k²``: ``n`` for distinct
    frequencies, commensurate (1:2) or not (1:√2) alike — resonances add cubic and higher
    invariants, not quadratic ones; ``n²`` (``U(n)``) for equal ones. Generators, in this
    order: the mode energies ``E_i = ½(p_i² + ω_i² q_i²)``, then within each block of equal
    ``ω`` (``i < j``) ``R_ij = q_i p_j − q_j p_i`` and ``F_ij = ω² q_i q_j + p_i p_j``.
    Frequencies count as equal when equal as floats.
    """

    def __init__(self, frequencies: Sequence[float] = (1.0, 2.0)):
        try:
            w = np.asarray(frequencies, dtype=np.float64)
        except (TypeError, ValueError):
            w = np.zeros(0)
        if w.ndim != 1 or w.size < 1 or not np.all(np.isfinite(w) & (w > 0)):
            raise ValueError(f"Expected `frequencies` to be a non-empty sequence of positive "
                             f"finite numbers, got {frequencies!r}.")
        n, M = w.size, 2 * w.size
        w2 = w**2

        def energy(x):
            return 0.5 * jnp.sum(x[n:] ** 2 + jnp.asarray(w2, x.dtype) * x[:n] ** 2)

        A = [_sym(M, [(i, i, 0.5 * w2[i]), (n + i, n + i, 0.5)]) for i in range(n)]
        names = [f"E_{i}" for i in range(n)]
        pairs = [(i, j) for i, j in itertools.combinations(range(n), 2) if w[i] == w[j]]
        for i, j in pairs:
            A.append(_sym(M, [(i, n + j, 1.0), (j, n + i, -1.0)]))
            names.append(f"R_{i}{j}")
        for i, j in pairs:
            A.append(_sym(M, [(i, j, w2[i]), (n + i, n + j, 1.0)]))
            names.append(f"F_{i}{j}")
        G = quadratic_generators(np.stack(A), np.zeros((len(A), M)))
        label = "_".join(f"{v:g}" for v in w)
        super().__init__(energy, M, name=f"anisotropic_oscillator_{label}", generators=G,
                         generator_names=names)
        self._set(frequencies=tuple(w.tolist()))

    def __repr__(self) -> str:
        return f"AnisotropicOscillator(frequencies={self.frequencies})"


# -------------------------------------------------------------------------------------------
# A charged particle in a uniform magnetic field: guiding centre
# -------------------------------------------------------------------------------------------


class MagneticParticle(HamiltonianSystem):
    """A unit charge of unit mass in the plane with a uniform magnetic field ``B`` (symmetric
    gauge): ``H = ½[(p_x + B q_y/2)² + (p_y − B q_x/2)²]``, ``x = (q_x, q_y, p_x, p_y)``.

    By hand: the kinetic momenta ``π_x = p_x + B q_y/2``, ``π_y = p_y − B q_x/2`` have
    ``{π_x, π_y} = B`` and rotate at the cyclotron frequency; the guiding centre
    ``X = q_x/2 + p_y/B``, ``Y = q_y/2 − p_x/B`` has ``{X, Y} = −1/B`` and Poisson-commutes
    with ``π``, so ``(X, Y, π_x, π_y)`` are two decoupled pairs and ``H = ½|π|²`` involves
    only the second. Conserved: every function of ``(X, Y)`` and, of ``π``, the rotation
    invariant ``|π|²``. Quadratic and linear ones: ``H, X, Y, X², XY, Y²`` — dimension 6 (the
    cross terms ``X π_x, …`` and the linear forms in ``π`` rotate). The canonical angular
    momentum ``L = q_x p_y − q_y p_x = (B/2)(X² + Y²) − H/B`` lies in this span.
    Generators in that order, named ``"H", "X", "Y", "X^2", "XY", "Y^2"``. The data settings
    suit ``|B|`` near 1 (cyclotron period ``2π/|B|``).
    """

    def __init__(self, field: float = 1.0):
        B = np.asarray(field)
        if isinstance(field, bool) or B.shape != () or B.dtype.kind not in "iuf" or not (
                np.isfinite(B) and B != 0):
            raise ValueError(f"Expected `field` to be a finite non-zero real number, got "
                             f"{field!r}.")
        B = float(B)

        def energy(x):
            return 0.5 * ((x[2] + 0.5 * B * x[1]) ** 2 + (x[3] - 0.5 * B * x[0]) ** 2)

        e = np.eye(4)
        pi_x, pi_y = e[2] + 0.5 * B * e[1], e[3] - 0.5 * B * e[0]
        X, Y = 0.5 * e[0] + e[3] / B, 0.5 * e[1] - e[2] / B
        zero = np.zeros((4, 4))
        A = [0.5 * (_product(pi_x, pi_x) + _product(pi_y, pi_y)), zero, zero,
             _product(X, X), _product(X, Y), _product(Y, Y)]
        b = [np.zeros(4), X, Y, np.zeros(4), np.zeros(4), np.zeros(4)]
        G = quadratic_generators(np.stack(A), np.stack(b))
        super().__init__(energy, 4, name="magnetic_particle", generators=G,
                         generator_names=["H", "X", "Y", "X^2", "XY", "Y^2"])
        self._set(field=B)

    def __repr__(self) -> str:
        return f"MagneticParticle(field={self.field})"


# -------------------------------------------------------------------------------------------
# Non-quadratic potentials: central force, Hénon–Heiles, the quartic oscillator
# -------------------------------------------------------------------------------------------

CENTRAL_POTENTIALS = ("quartic", "softened-kepler")
"""Potentials of :class:`CentralForce`: ``V = r⁴/4`` and ``V = −1/sqrt(r² + ε²)``."""

_ANGULAR_MOMENTUM = _sym(4, [(0, 3, 1.0), (1, 2, -1.0)])  # L = q_x p_y − q_y p_x


class CentralForce(HamiltonianSystem):
    """A particle in the plane in a central potential: ``H = |p|²/2 + V(r)``, ``r = |q|``,
    ``x = (q_x, q_y, p_x, p_y)``, with ``V = r⁴/4`` (``"quartic"``) or the softened Kepler
    ``V = −1/sqrt(r² + ε²)`` (``"softened-kepler"``, ``ε = softening``).

    By hand: with ``f = V'(r)/r`` (not constant: ``V`` is not quadratic),
    ``{C, H} = ∇_q C · p − f ∇_p C · q``. Sorted by degree in ``p``, it vanishes for all ``x``
    only if the ``qq`` and ``pp`` blocks of ``A`` and ``b`` vanish and the ``qp`` block is
    antisymmetric: ``C ∝ L = q_x p_y − q_y p_x`` — dimension 1. For the softened Kepler
    potential, initial momenta are capped at ``|p| <= 0.9 sqrt(|V(q)|)``, so
    ``E <= 0.595 V(q) < 0`` and every orbit is bound.
    """

    def __init__(self, potential: str = "quartic", softening: float = 0.5):
        if potential not in CENTRAL_POTENTIALS:
            raise ValueError(f"Expected `potential` in {CENTRAL_POTENTIALS}, got {potential!r}.")
        eps = _check_real("softening", softening)

        def energy(x):
            r2 = x[0] ** 2 + x[1] ** 2
            V = 0.25 * r2**2 if potential == "quartic" else -1.0 / jnp.sqrt(r2 + eps**2)
            return 0.5 * (x[2] ** 2 + x[3] ** 2) + V

        G = quadratic_generators(_ANGULAR_MOMENTUM[None], np.zeros((1, 4)))
        super().__init__(energy, 4, name=f"central_{potential}", generators=G,
                         generator_names=["L"])
        self._set(potential=potential, softening=eps)

    def _bounded(self, x: np.ndarray) -> np.ndarray:
        if self.potential == "quartic":
            return x
        depth = 1.0 / np.sqrt(np.sum(x[:, :2] ** 2, axis=1) + self.softening**2)  # |V(q)|
        speed = np.linalg.norm(x[:, 2:], axis=1)
        cap = 0.9 * np.sqrt(depth)
        x = x.copy()
        x[:, 2:] *= np.minimum(1.0, cap / np.maximum(speed, 1e-300))[:, None]
        return x

    def __repr__(self) -> str:
        return f"CentralForce(potential={self.potential!r}, softening={self.softening})"


def _no_generators(M: int) -> np.ndarray:
    return np.zeros((0, M + 1, M + 1))


class HenonHeiles(HamiltonianSystem):
    """The Hénon–Heiles system ``H = ½(p_x² + p_y²) + ½(q_x² + q_y²) + q_x² q_y − q_y³/3``.

    By hand: sort ``{C, H}`` by degree. Degree 1 forces ``b = 0``; degree 2, ``C ∈ u(2)`` (the
    isotropic oscillator's algebra: ``A_qq = A_pp``, antisymmetric ``A_qp``); degree 3,
    ``∇_p C · ∇V_3(q) = 0`` with ``V_3 = q_x² q_y − q_y³/3``, so ``A_pp = 0`` and ``C ∝
    q_x p_y − q_y p_x``, whose rotations change ``V_3 = r³ sin 3θ / 3``: no quadratic conserved
    quantity, dimension 0 (:meth:`generators` is empty). Orbits are bound for ``E < 1/6`` inside the
    triangle of saddles at distance 1.

    Initial conditions, by default: squashed radially, ``x ↦ x / sqrt(1 + |x|²/ρ²)`` with
    ``ρ = 0.48``, so that ``|x| < ρ`` and ``E < ρ²/2 + ρ³/3 < 1/6``. There the cubic term breaks
    U(2) so little that the evidence prefers the U(2)-symmetric model even between converged
    fits (``benchmarks/records/henon-heiles-evidence/``).

    ``energy_fraction=f`` (``0 < f < 1``) puts every initial condition on the energy shell
    ``H = f/6`` instead: each drawn ``x ≠ 0`` is moved along its ray to ``s x/|x|``, ``s`` the
    smallest root of ``H(s x/|x|) = f/6`` (bisection to float64 round-off), so the segment from
    the origin stays below the shell and the orbit in the bound well. The directions are those
    drawn (isotropic for the ``"train"`` and ``"test"`` splits; ``"moved"`` and ``"wider"`` tilt
    them towards their shifted or scaled positions on the same shell). Near the escape energy
    the cubic term breaks U(2) enough for the evidence to prefer the plain HNN between
    converged fits (``benchmarks/records/henon-heiles-evidence-shell/``, f = 0.99).
    """

    _split_settings = {
        "train": {"n_trajectories": 200, "n_steps": 49, "dt": 0.3, "scale": 0.2},
        "test": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "scale": 0.2},
        "moved": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "scale": 0.2,
                  "position_shift": 0.1},
        "wider": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "scale": 0.2,
                  "position_scale": 2.0},
    }
    _radius = 0.48
    SADDLE_ENERGY = 1.0 / 6.0
    """The energy of the three saddles: orbits below it are bound."""

    def __init__(self, energy_fraction: float | None = None):
        if energy_fraction is not None:
            if (isinstance(energy_fraction, bool)
                    or not isinstance(energy_fraction, (int, float, np.floating))
                    or not 0.0 < float(energy_fraction) < 1.0):
                raise ValueError(f"Expected `energy_fraction` in (0, 1) (bound orbits below the "
                                 f"saddle energy 1/6) or None, got {energy_fraction!r}.")
            energy_fraction = float(energy_fraction)

        def energy(x):
            qx, qy = x[0], x[1]
            return (0.5 * (x[2] ** 2 + x[3] ** 2 + qx**2 + qy**2) + qx**2 * qy - qy**3 / 3.0)

        name = ("henon_heiles" if energy_fraction is None
                else f"henon_heiles_shell_{energy_fraction:g}")
        super().__init__(energy, 4, name=name, generators=_no_generators(4))
        self._set(energy_fraction=energy_fraction)

    @staticmethod
    def energy_np(x: np.ndarray) -> np.ndarray:
        """``H`` of ``x (..., 4)`` in NumPy float64 (the formula above)."""
        qx, qy, px, py = np.moveaxis(x, -1, 0)
        return 0.5 * (px**2 + py**2 + qx**2 + qy**2) + qx**2 * qy - qy**3 / 3.0

    def _bounded(self, x: np.ndarray) -> np.ndarray:
        if self.energy_fraction is None:
            r2 = np.sum(x**2, axis=1, keepdims=True)
            return x / np.sqrt(1.0 + r2 / self._radius**2)
        return self.on_energy_shell(x, self.energy_fraction * self.SADDLE_ENERGY)

    @classmethod
    def on_energy_shell(cls, x: np.ndarray, energy: float) -> np.ndarray:
        """Each row of ``x (n, 4)`` moved along its ray to the first crossing of
        ``H = energy``, ``0 < energy < 1/6``: a point of the bound well on that shell.

        Along a unit ray ``u``, ``H(s u) = s²/2 + c s³`` with ``c`` the cubic part at ``u``,
        ``|c| ≤ 1/3``: it rises from 0 and, for ``energy < 1/6``, reaches it before ``s = 1``
        (the worst ray, ``c = −1/3``, peaks at ``s = 1`` with ``H = 1/6``). So a grid on
        ``[0, 1]`` brackets the first root and bisection refines it to float64 round-off.
        """
        if not 0.0 < energy < cls.SADDLE_ENERGY:
            raise ValueError(f"Expected 0 < `energy` < 1/6 (bound orbits), got {energy!r}.")
        x = np.asarray(x, np.float64)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise ValueError("A state at the origin has no ray to the energy shell.")
        u = x / norm
        s = np.linspace(0.0, 1.0, 1001)
        h = cls.energy_np(s[None, :, None] * u[:, None, :])
        first = np.argmax(h >= energy, axis=1)  # first grid point at or above the shell
        if np.any(first == 0):  # cannot happen for 0 < energy < 1/6 (above)
            raise ValueError(f"A ray does not reach the shell H = {energy!r} in the well.")
        lo, hi = s[first - 1], s[first]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = cls.energy_np(mid[:, None] * u) < energy
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)[:, None] * u

    def __repr__(self) -> str:
        return ("HenonHeiles()" if self.energy_fraction is None
                else f"HenonHeiles(energy_fraction={self.energy_fraction!r})")


class QuarticOscillator(HamiltonianSystem):
    """``H = p²/2 + q⁴/4`` on ``R²``. By hand: ``{C, H} = (aq + bp + d)p − (bq + cp + e)q³``
    for ``C = ½(aq² + 2bqp + cp²) + dq + ep`` vanishes only for ``C = 0`` — dimension 0."""

    def __init__(self):
        super().__init__(lambda x: 0.5 * x[1] ** 2 + 0.25 * x[0] ** 4, 2,
                         name="quartic_oscillator", generators=_no_generators(2))

    def __repr__(self) -> str:
        return "QuarticOscillator()"


# -------------------------------------------------------------------------------------------
# A system seen in non-canonical (but symplectic) coordinates
# -------------------------------------------------------------------------------------------


def _J(M: int) -> np.ndarray:
    """``J = [[0, I], [-I, 0]]`` ``(M, M)`` float64 (NumPy, whatever JAX's x64 flag)."""
    d = M // 2
    return np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])


def _symplectic_residual(S: np.ndarray) -> float:
    """``‖SᵀJS − J‖_max / max(1, ‖S‖_max²)``."""
    J = _J(S.shape[0])
    return float(np.max(np.abs(S.T @ J @ S - J)) / max(1.0, float(np.max(np.abs(S))) ** 2))


def random_symplectic(phase_dim: int, *, seed: int = 0, scale: float = 0.5) -> np.ndarray:
    """A random symplectic matrix ``S = expm(J Σ)`` ``(M, M)`` float64: ``Σ = scale (W + Wᵀ)/2``
    with ``W`` standard normal from ``numpy.random.default_rng(seed)``. ``JΣ`` is a Hamiltonian
    matrix, so ``SᵀJS = J`` (up to round-off)."""
    M = geometry.check_phase_dim(phase_dim)
    seed = check_int("seed", seed, minimum=0)
    scale = _check_real("scale", scale)
    W = np.random.default_rng(seed).normal(size=(M, M))
    J = _J(M)
    return scipy.linalg.expm(J @ (0.5 * scale * (W + W.T)))


class SymplecticTransform(HamiltonianSystem):
    """``system`` in the coordinates ``x' = S x`` for a symplectic ``S`` (``SᵀJS = J``):
    ``H'(x') = H(S⁻¹x')``, which keeps Hamilton's equations, ``dx'/dt = J∇H'(x')``.

    Conserved quantities map along: ``C'(x') = C(S⁻¹x')``, so ``A' = S⁻ᵀAS⁻¹`` and
    ``b' = S⁻ᵀb``; on generators this is the conjugation ``G' = T G T⁻¹``, ``T = diag(S, 1)``
    (``JS⁻ᵀ = SJ``). Same dimension and names as ``system``'s. ``S⁻¹ = −J Sᵀ J`` exactly.
    Initial conditions are ``system``'s, mapped by ``S``; data settings are ``system``'s.

    Parameters
    ----------
    system : a :class:`HamiltonianSystem`.
    S : ``(M, M)`` symplectic matrix (e.g. :func:`random_symplectic`); ``ValueError`` unless
        ``SᵀJS = J`` to ``1e-10`` relative.
    """

    def __init__(self, system: HamiltonianSystem, S):
        if not isinstance(system, HamiltonianSystem):
            raise ValueError(f"Expected `system` to be a HamiltonianSystem, got "
                             f"{type(system).__name__}.")
        M = system.phase_dim
        try:
            S = np.array(S, dtype=np.float64)
        except (TypeError, ValueError):
            S = np.zeros(0)
        if S.shape != (M, M) or not np.all(np.isfinite(S)):
            raise ValueError(f"Expected `S` to be a finite ({M}, {M}) matrix, got shape "
                             f"{S.shape}.")
        if _symplectic_residual(S) > 1e-10:
            raise ValueError("Expected `S` to be symplectic (SᵀJS = J), e.g. "
                             "random_symplectic(phase_dim).")
        J = _J(M)
        S_inv = -J @ S.T @ J
        base_energy = system._energy

        def energy(x):
            return base_energy(jnp.asarray(S_inv, x.dtype) @ x)

        G = names = None
        if system.has_known_generators:
            G0 = system.generators()
            A = -np.einsum("ij,ljk->lik", J, G0[:, :M, :M])  # A = J⁻¹(JA), J⁻¹ = −J
            b = -G0[:, :M, M] @ J.T
            A = np.einsum("ji,ljk,km->lim", S_inv, A, S_inv)  # S⁻ᵀ A S⁻¹
            G = quadratic_generators(0.5 * (A + np.swapaxes(A, 1, 2)), b @ S_inv)
            names = system.generator_names()
        super().__init__(energy, M, name=f"{system.name}_transformed", generators=G,
                         generator_names=names)
        for a in (S, S_inv):
            a.flags.writeable = False
        self._set(system=system, S=S, S_inv=S_inv, _split_settings=system._split_settings)

    def sample_initial_conditions(self, key, n, **options) -> np.ndarray:
        """``system``'s initial conditions (same keywords) mapped by ``S``: ``(n, M)``."""
        return self.system.sample_initial_conditions(key, n, **options) @ self.S.T

    def __repr__(self) -> str:
        return f"SymplecticTransform({self.system!r}, S=<{self.phase_dim}x{self.phase_dim}>)"


# -------------------------------------------------------------------------------------------
# The registry
# -------------------------------------------------------------------------------------------

SUITE: dict[str, Callable[[], HamiltonianSystem]] = {
    "anisotropic-1-2": lambda: AnisotropicOscillator((1.0, 2.0)),
    "anisotropic-1-sqrt2": lambda: AnisotropicOscillator((1.0, float(np.sqrt(2.0)))),
    "anisotropic-1-1-2": lambda: AnisotropicOscillator((1.0, 1.0, 2.0)),
    "isotropic-3d": lambda: CoupledOscillators(n=3),
    "magnetic": MagneticParticle,
    "central-quartic": lambda: CentralForce("quartic"),
    "central-softened-kepler": lambda: CentralForce("softened-kepler"),
    "two-body-2d": lambda: NBody(n_bodies=2, dim=2),
    "u2-noncanonical": lambda: SymplecticTransform(CoupledOscillators(n=2),
                                                   random_symplectic(4, seed=0)),
    "henon-heiles": HenonHeiles,
    "henon-heiles-escape": lambda: HenonHeiles(energy_fraction=0.99),
    "quartic-1d": QuarticOscillator,
}
"""The suite by name: constructors of its systems (the paper's are in
:data:`~noether_ppl.systems.paper.PAPER`). ``"isotropic-3d"`` is the paper's 3 coupled
oscillators (``U(3)``) under the suite's name. ``"henon-heiles-escape"`` is Hénon–Heiles with
its data on the energy shell at 0.99 of the escape energy (:class:`HenonHeiles`)."""

DIMENSIONS: dict[str, int] = {
    "sho": 1,  # SO(2): H (App. B.1)
    "oscillators3": 9,  # U(3) (App. B.2)
    "nbody2d3": 7,  # T_x, T_y, R^ABS, R^COM, P_x, P_y, Q_xy (App. B.3)
    "anisotropic-1-2": 2,  # u(1) ⊕ u(1): the two mode energies
    "anisotropic-1-sqrt2": 2,  # the same: resonance adds no quadratic invariant
    "anisotropic-1-1-2": 5,  # u(2) ⊕ u(1)
    "isotropic-3d": 9,  # u(3)
    "magnetic": 6,  # H, X, Y, X², XY, Y²
    "central-quartic": 1,  # L
    "central-softened-kepler": 1,  # L
    # centre of mass (Q, P) free, relative motion central: P_x, P_y, P_x², P_xP_y, P_y²,
    # Q ∧ P (= R^COM), r ∧ p_r (= R^ABS − R^COM); all 7 of App. B.3 independent for n = 2
    "two-body-2d": 7,
    "u2-noncanonical": 4,  # u(2), conjugated by S
    "henon-heiles": 0,
    "henon-heiles-escape": 0,
    "quartic-1d": 0,
}
"""Hand-derived dimension of the span of conserved quadratic (and linear) quantities for every
name in :data:`~noether_ppl.systems.paper.PAPER` and :data:`SUITE` (derivations in the
systems' docstrings)."""
