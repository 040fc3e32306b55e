"""The paper's three systems (App. B) with their ground-truth quadratic conserved quantities and
data settings (App. C): the 1-D harmonic oscillator, ``n`` coupled oscillators, ``n`` bodies.

:data:`PAPER` names them as the paper's experiments do (``"sho"``, ``"oscillators3"``,
``"nbody2d3"``); :func:`~noether_ppl.systems.registry.build_system` builds one from the
``[system]`` table of an experiment file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from ..data import check_int
from .base import HamiltonianSystem, _check_real, quadratic_generators

__all__ = ["HarmonicOscillator", "CoupledOscillators", "NBody", "PAPER"]

# -------------------------------------------------------------------------------------------
# App. B.1: the simple harmonic oscillator
# -------------------------------------------------------------------------------------------


class HarmonicOscillator(HamiltonianSystem):
    """``H(q, p) = p²/(2m) + k q²/2`` on ``R²`` (App. B.1; the paper uses ``m = k = 1``).

    Ground truth: ``SO(2)``, one generator, ``H`` itself (App. B.1). Data (App. C.1): 7
    initial conditions ``~ N(0, I)``, 4 points ``Δt = 0.2`` apart; test 100 × 20 steps.
    """

    _split_settings = {
        "train": {"n_trajectories": 7, "n_steps": 3, "dt": 0.2},
        "test": {"n_trajectories": 100, "n_steps": 20, "dt": 0.2},
        "moved": {"n_trajectories": 100, "n_steps": 20, "dt": 0.2, "position_shift": 2.0},
        "wider": {"n_trajectories": 100, "n_steps": 20, "dt": 0.2, "position_scale": 3.0},
    }

    def __init__(self, mass: float = 1.0, stiffness: float = 1.0):
        m = _check_real("mass", mass)
        k = _check_real("stiffness", stiffness)

        def energy(x):
            return 0.5 * (x[1] ** 2 / m + k * x[0] ** 2)

        A = np.diag([k, 1.0 / m])[None]
        G = quadratic_generators(A, np.zeros((1, 2)))
        super().__init__(energy, 2, name="harmonic_oscillator", generators=G,
                         generator_names=["H"])
        self._set(mass=m, stiffness=k)

    def __repr__(self) -> str:
        return f"HarmonicOscillator(mass={self.mass}, stiffness={self.stiffness})"


# -------------------------------------------------------------------------------------------
# App. B.2: n coupled (isotropic) harmonic oscillators
# -------------------------------------------------------------------------------------------


class CoupledOscillators(HamiltonianSystem):
    """``n`` oscillators ``H = ‖p‖²/2 + ‖q‖²/2`` on ``R^{2n}`` (App. B.2), with
    ``x = (q_0..q_{n-1}, p_0..p_{n-1})``.

    Ground truth (App. B.2): ``U(n)``, ``n²`` generators, in this order:
    ``H_i = (q_i² + p_i²)/2``, then ``R_ij = q_i p_j − q_j p_i`` and ``F_ij = q_i q_j + p_i p_j``
    for ``i < j``. Data (App. C.2): 200 initial conditions ``~ N(0, I)``, 50 points ``Δt = 0.3``.
    """

    def __init__(self, n: int = 3):
        n = check_int("n", n)
        M = 2 * n

        def energy(x):
            return 0.5 * jnp.sum(x**2)

        A, names = [], []

        def quad(entries):  # C = Σ c x_a x_b over the listed (a, b, c), a != b or a == b
            Ai = np.zeros((M, M))
            for a, b, c in entries:
                Ai[a, b] += c
                Ai[b, a] += c
            return Ai

        for i in range(n):  # H_i = (q_i² + p_i²)/2  ⇒  A = e_qi e_qiᵀ + e_pi e_piᵀ
            A.append(quad([(i, i, 0.5), (n + i, n + i, 0.5)]))
            names.append(f"H_{i}")
        pairs = list(itertools.combinations(range(n), 2))
        for i, j in pairs:  # R_ij = q_i p_j − q_j p_i
            A.append(quad([(i, n + j, 1.0), (j, n + i, -1.0)]))
            names.append(f"R_{i}{j}")
        for i, j in pairs:  # F_ij = q_i q_j + p_i p_j
            A.append(quad([(i, j, 1.0), (n + i, n + j, 1.0)]))
            names.append(f"F_{i}{j}")
        G = quadratic_generators(np.stack(A), np.zeros((len(A), M)))
        super().__init__(energy, M, name=f"coupled_oscillators_{n}", generators=G,
                         generator_names=names)
        self._set(n=n)

    def __repr__(self) -> str:
        return f"CoupledOscillators(n={self.n})"


# -------------------------------------------------------------------------------------------
# App. B.3: n bodies with softened gravity
# -------------------------------------------------------------------------------------------


def _axis_label(d: int, dim: int) -> str:
    return "xyz"[d] if dim <= 3 else str(d)


class NBody(HamiltonianSystem):
    """``n`` bodies in ``D`` dimensions with softened gravity (App. B.3):

    ``H = Σ_i ‖p_i‖²/(2m_i) − Σ_{i<j} G m_i m_j / sqrt(‖q_i − q_j‖² + ε²)``.

    ``x = (q, p)``, ``q`` body-major (``q_{i,d}`` at index ``i·D + d``), ``p`` likewise.
    (The paper prints the pair sum over ``i ≠ j`` with a ``+``; we use the attractive sign and
    count each pair once.)

    Parameters
    ----------
    n_bodies, dim : ``n`` and ``D``.
    masses : a positive number or one per body.
    gravity : ``G >= 0``.
    softening : ``ε > 0`` (default 0.1: smooth, and accurate float64 simulation at App. C's
        settings).

    Ground truth (App. B.3), in this order: translations ``T_d = Σ_i p_{i,d}`` (linear),
    ``R^ABS_dd' = Σ_i (q_i ∧ p_i)_dd'``, ``R^COM_dd' = (q_COM ∧ P)_dd'`` (``d < d'``), then
    ``P_d = T_d²`` and ``Q_dd' = T_d T_d'`` (``d < d'``); for ``D = 2``: 7 generators. Here
    ``q_COM = Σ m_i q_i / Σ m_i`` and ``P = Σ_i p_i`` is the total momentum, so that ``R^COM`` is
    conserved for any masses (the paper's ``p_COM = Σ m_i p_i / Σ m_i`` agrees up to a factor
    for equal masses). Data (App. C.3): positions ``N(0, I)`` shifted per trajectory by
    ``N(0, 3² I)`` (one shift for all bodies), momenta ``N(0, I)``; 200 × 50 points,
    ``Δt = 0.3``.
    """

    _default_shift_scale = 3.0
    _split_settings = {
        **HamiltonianSystem._split_settings,
        "moved": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "position_shift": 10.0},
    }

    def __init__(self, n_bodies: int = 3, dim: int = 2, masses=1.0, gravity: float = 1.0,
                 softening: float = 0.1):
        n = check_int("n_bodies", n_bodies)
        D = check_int("dim", dim)
        m = np.asarray(masses, dtype=np.float64)
        try:
            m = np.broadcast_to(m, (n,)).copy()
        except ValueError:
            raise ValueError(f"Expected `masses` to be a number or an array of shape ({n},), "
                             f"got shape {m.shape}.") from None
        if not np.all(np.isfinite(m) & (m > 0)):
            raise ValueError(f"Expected `masses` to be positive and finite, got {masses!r}.")
        g = _check_real("gravity", gravity, allow_zero=True)
        eps = _check_real("softening", softening)
        M = 2 * n * D
        iu, ju = np.triu_indices(n, k=1)
        mm = m[iu] * m[ju]
        pair_diff = np.zeros((len(iu), n))  # (pair_diff @ q)[k] = q_i − q_j for pair k = (i, j)
        pair_diff[np.arange(len(iu)), iu] = 1.0
        pair_diff[np.arange(len(iu)), ju] = -1.0

        def energy(x):
            # Constants enter as jnp arrays of x's dtype (NumPy constants captured by a
            # function traced both with and without x64 trip a JAX constant cache).
            m_, mm_, diff_ = (jnp.asarray(a, x.dtype) for a in (m, mm, pair_diff))
            q = x[: n * D].reshape(n, D)
            p = x[n * D:].reshape(n, D)
            kinetic = 0.5 * jnp.sum(jnp.sum(p**2, axis=-1) / m_)
            r2 = jnp.sum((diff_ @ q) ** 2, axis=-1)
            return kinetic - g * jnp.sum(mm_ / jnp.sqrt(r2 + eps**2))

        A, b, names = self._ground_truth(n, D, m)
        G = quadratic_generators(A, b)
        super().__init__(energy, M, name=f"nbody_{n}x{D}d", generators=G, generator_names=names)
        self._set(n_bodies=n, dim=D, masses=tuple(m.tolist()), gravity=g, softening=eps)

    @staticmethod
    def _ground_truth(n: int, D: int, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
        """``A (L, M, M)``, ``b (L, M)`` and names of the App. B.3 conserved quantities."""
        M = 2 * n * D
        q_idx = lambda i, d: i * D + d
        p_idx = lambda i, d: n * D + i * D + d
        # Linear forms: T_d = Σ_i p_{i,d} (total momentum), c_d = q_COM,d = Σ m_i q_{i,d} / Σ m.
        T = np.zeros((D, M))
        c = np.zeros((D, M))
        for d in range(D):
            for i in range(n):
                T[d, p_idx(i, d)] = 1.0
                c[d, q_idx(i, d)] = m[i] / m.sum()

        def product(u, v):  # u·x · v·x = ½ xᵀ(uvᵀ + vuᵀ)x
            return np.outer(u, v) + np.outer(v, u)

        lab = lambda d: _axis_label(d, D)
        sep = "" if D <= 3 else ","
        A, b, names = [], [], []
        for d in range(D):
            A.append(np.zeros((M, M)))
            b.append(T[d])
            names.append(f"T_{lab(d)}")
        planes = list(itertools.combinations(range(D), 2))
        for d, e in planes:  # R^ABS_de = Σ_i q_{i,d} p_{i,e} − q_{i,e} p_{i,d}
            Ai = np.zeros((M, M))
            for i in range(n):
                for a, bb, s in ((q_idx(i, d), p_idx(i, e), 1.0), (q_idx(i, e), p_idx(i, d), -1.0)):
                    Ai[a, bb] += s
                    Ai[bb, a] += s
            A.append(Ai)
            b.append(np.zeros(M))
            names.append(f"R^ABS_{lab(d)}{sep}{lab(e)}")
        for d, e in planes:  # R^COM_de = q_COM,d P_e − q_COM,e P_d
            A.append(product(c[d], T[e]) - product(c[e], T[d]))
            b.append(np.zeros(M))
            names.append(f"R^COM_{lab(d)}{sep}{lab(e)}")
        for d in range(D):  # P_d = T_d²
            A.append(product(T[d], T[d]))
            b.append(np.zeros(M))
            names.append(f"P_{lab(d)}")
        for d, e in planes:  # Q_de = T_d T_e
            A.append(product(T[d], T[e]))
            b.append(np.zeros(M))
            names.append(f"Q_{lab(d)}{sep}{lab(e)}")
        return np.stack(A), np.stack(b), names

    @property
    def _shift_dim(self) -> int:
        return self.dim

    def _expand_shift(self, shift: np.ndarray) -> np.ndarray:
        return np.tile(shift, (1, self.n_bodies))  # the same D-vector for every body

    def __repr__(self) -> str:
        return (f"NBody(n_bodies={self.n_bodies}, dim={self.dim}, masses={self.masses}, "
                f"gravity={self.gravity}, softening={self.softening})")


PAPER: dict[str, Callable[[], HamiltonianSystem]] = {
    "sho": HarmonicOscillator,
    "oscillators3": lambda: CoupledOscillators(n=3),
    "nbody2d3": lambda: NBody(n_bodies=3, dim=2),
}
"""The paper's experiments (Tables 1–3) by name: constructors of their systems. Ground-truth
dimensions (App. B): 1 (``SO(2)``), 9 (``U(3)``), 7 (translations, rotations, ``P``, ``Q``)."""
