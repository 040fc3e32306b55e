"""The Hamiltonian system: any user Hamiltonian ``H(x)``, its ground-truth quadratic conserved
quantities (when known) and accurate float64 simulation (App. C).

Phase space ``x = (q, p)`` in ``R^M`` (Sec. 2.1). A system knows its Hamiltonian ``H(x)`` of one
point ``x (M,)``; :meth:`HamiltonianSystem.hamiltonian` and :meth:`~HamiltonianSystem.vector_field`
broadcast over leading axes. Ground-truth conserved quantities ``C(x) = ½ xᵀAx + bᵀx`` are given
by their generators ``G = [[JA, Jb], [0, 0]]`` on homogeneous coordinates (Eq. 4,
:func:`noether_ppl.geometry.generator_from_quadratic`); a system may know that it has none
(``L = 0``: known, and empty).

Simulation integrates ``dx/dt = J∇H(x)`` with an adaptive 8th-order Dormand–Prince solver
(diffrax ``Dopri8``, ``PIDController(rtol=atol=1e-12)``, steps clipped to land on every save
time so no interpolation error enters) in float64 whatever the global ``jax_enable_x64`` flag,
vmapped over initial conditions (energy drift checked in ``tests/test_systems.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import geometry
from ..data import Trajectories, check_int, check_key
from ..precision import float64

__all__ = ["UnknownSymmetryError", "HamiltonianSystem", "SPLITS"]

#: Names of the data splits of :meth:`HamiltonianSystem.simulate_split` (App. C, Table 3).
SPLITS = ("train", "test", "moved", "wider")


class UnknownSymmetryError(ValueError):
    """A system without known ground-truth generators was asked for them."""


def _check_real(name: str, value, *, allow_zero: bool = False) -> float:
    """A finite real number ``> 0`` (``>= 0`` with ``allow_zero``), else ``ValueError``."""
    arr = np.asarray(value)
    if isinstance(value, bool) or arr.shape != () or arr.dtype.kind not in "iuf":
        raise ValueError(f"Expected `{name}` to be a finite real number, got {value!r}.")
    v = float(arr)
    ok = math.isfinite(v) and (v > 0 or (allow_zero and v == 0))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Expected `{name}` to be a finite real number {bound}, got {value!r}.")
    return v


def quadratic_generators(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 ``G = [[JA, Jb], [0, 0]]`` for ``A (L, M, M)``, ``b (L, M)`` (Eq. 4)."""
    with float64():
        G = geometry.generator_from_quadratic(jnp.asarray(A, jnp.float64),
                                              jnp.asarray(b, jnp.float64))
        return np.asarray(G, dtype=np.float64)


def _check_generators(generators, phase_dim: int) -> np.ndarray:
    try:
        G = np.asarray(generators, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected `generators` to be a real array: {err}") from None
    M = phase_dim
    if G.ndim != 3 or G.shape[1:] != (M + 1, M + 1):
        raise ValueError(
            f"Expected `generators` of shape (L, {M + 1}, {M + 1}) (phase_dim={M}; L = 0 for a "
            f"system known to have no quadratic conserved quantity), got shape {G.shape}."
        )
    if G.shape[0] == 0:
        return G
    if not np.all(np.isfinite(G)):
        raise ValueError("Expected `generators` to be finite.")
    scale = max(float(np.max(np.abs(G))), 1e-300)
    if np.max(np.abs(G[:, M, :])) > 1e-12 * scale:
        raise ValueError("Expected `generators` to have a zero bottom row ([[JA, Jb], [0, 0]]).")
    with float64():
        A, _ = geometry.quadratic_from_generator(jnp.asarray(G))
        A = np.asarray(A)
    if np.max(np.abs(A - np.swapaxes(A, 1, 2))) > 1e-8 * scale:
        raise ValueError(
            "Expected `generators` of quadratic observables: G[:M, :M] = J A with A symmetric "
            "(see geometry.generator_from_quadratic)."
        )
    return G


class HamiltonianSystem:
    """A Hamiltonian system ``dx/dt = J∇H(x)`` on ``R^M`` for any user Hamiltonian.

    Parameters
    ----------
    hamiltonian : ``H(x)`` of one point ``x (M,)`` returning a scalar; JAX-traceable.
    phase_dim : ``M = 2d``, a positive even integer.
    name : a short name used in messages and reports.
    generators : optional ``(L, M+1, M+1)`` ground-truth generators of quadratic conserved
        quantities (``G = [[JA, Jb], [0, 0]]``, Eq. 4); stored as float64. ``L = 0`` states that
        there is none (:attr:`has_known_generators` is then true, and the stack empty).
    generator_names : optional names, one per generator (default ``"C_0", "C_1", …``).

    Instances are immutable. Subclasses: the paper's :class:`HarmonicOscillator`,
    :class:`CoupledOscillators`, :class:`NBody` (App. B) and the suite's systems
    (:mod:`noether_ppl.systems.suite`).
    """

    #: Settings of :meth:`simulate_split` per split (App. C.2 values for a generic system).
    _split_settings: Mapping[str, Mapping] = {
        "train": {"n_trajectories": 200, "n_steps": 49, "dt": 0.3},
        "test": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3},
        "moved": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "position_shift": 2.0},
        "wider": {"n_trajectories": 100, "n_steps": 20, "dt": 0.3, "position_scale": 3.0},
    }
    #: Default std of the per-trajectory position shift (App. C.3 uses 3 for the n-body data).
    _default_shift_scale: float = 0.0

    def __init__(
        self,
        hamiltonian: Callable[[jax.Array], jax.Array],
        phase_dim: int,
        name: str = "custom",
        generators=None,
        generator_names: Sequence[str] | None = None,
    ):
        if not callable(hamiltonian):
            raise ValueError(f"Expected `hamiltonian` to be callable H(x) -> scalar, got "
                             f"{type(hamiltonian).__name__}.")
        M = geometry.check_phase_dim(phase_dim)
        if not isinstance(name, str) or not name:
            raise ValueError(f"Expected `name` to be a non-empty string, got {name!r}.")
        G = None if generators is None else _check_generators(generators, M)
        if generator_names is not None:
            names = tuple(generator_names)
            if G is None:
                raise ValueError("`generator_names` given without `generators`.")
            if len(names) != G.shape[0] or not all(isinstance(n, str) for n in names):
                raise ValueError(
                    f"Expected `generator_names` to be {G.shape[0]} strings (one per generator), "
                    f"got {generator_names!r}."
                )
        else:
            names = None if G is None else tuple(f"C_{i}" for i in range(G.shape[0]))
        if G is not None:
            G.flags.writeable = False
        self._set(_energy=hamiltonian, _field=geometry.hamiltonian_vector_field(hamiltonian),
                  phase_dim=M, name=name, _generators=G, _names=names, _cache={})

    # -- immutability ------------------------------------------------------------------------
    def _set(self, **attrs):
        for k, v in attrs.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable; create a new system instead.")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable.")

    def __repr__(self) -> str:
        return f"HamiltonianSystem(name={self.name!r}, phase_dim={self.phase_dim})"

    # -- dynamics ----------------------------------------------------------------------------
    def _check_points(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.phase_dim:
            raise ValueError(
                f"Expected `x` of shape (..., {self.phase_dim}) for system {self.name!r}, got "
                f"{x.shape}."
            )
        return x

    def _batched(self, fn, x, out_tail: tuple):
        x = self._check_points(x)
        flat = x.reshape((-1, self.phase_dim))
        if fn not in self._cache:
            self._cache[fn] = jax.jit(jax.vmap(fn))
        out = self._cache[fn](flat)
        if out.shape[1:] != out_tail:
            raise ValueError(
                f"The Hamiltonian of {self.name!r} must return a scalar for one point x of shape "
                f"({self.phase_dim},); got shape {out.shape[1:]}."
            )
        return out.reshape(x.shape[:-1] + out_tail)

    def hamiltonian(self, x) -> jax.Array:
        """``H(x)`` for ``x (..., M)``; returns ``(...)``."""
        return self._batched(self._energy, x, ())

    def vector_field(self, x) -> jax.Array:
        """``J∇H(x)`` (Hamilton's equations, Sec. 2.1) for ``x (..., M)``; returns ``(..., M)``."""
        return self._batched(self._field, x, (self.phase_dim,))

    # -- ground truth --------------------------------------------------------------------------
    @property
    def has_known_generators(self) -> bool:
        """Whether ground-truth generators are known (App. B) or were given (possibly none:
        then :meth:`generators` is an empty ``(0, M+1, M+1)`` stack)."""
        return self._generators is not None

    def _require_generators(self) -> np.ndarray:
        if self._generators is None:
            raise UnknownSymmetryError(
                f"system {self.name!r} has no known generators; pass generators=... to "
                f"HamiltonianSystem, or use discover (the Lie-derivative nullspace, "
                f"noether_ppl.analysis) to find its quadratic conserved quantities."
            )
        return self._generators

    def generators(self, names=None) -> np.ndarray:
        """Ground-truth generators ``(L, M+1, M+1)`` float64, ``G = [[JA, Jb], [0, 0]]`` (Eq. 4,
        App. B). Raises :class:`UnknownSymmetryError` when none are known.

        ``names``: optional sequence of :meth:`generator_names` entries; returns those
        generators, in that order (e.g. SE(2)'s ``("T_x", "T_y", "R^ABS_xy")`` of the n-body
        system's seven)."""
        G = self._require_generators()
        if names is None:
            return G.copy()
        if isinstance(names, str) or not all(isinstance(n, str) for n in names) or not names:
            raise ValueError(f"Expected `names` to be a non-empty sequence of generator names, "
                             f"got {names!r}.")
        unknown = [n for n in names if n not in self._names]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"Expected `names` to be distinct names among {list(self._names)}, "
                             f"got {list(names)!r}.")
        return G[[self._names.index(n) for n in names]].copy()

    def generator_names(self) -> list[str]:
        """One name per generator, in the order of :meth:`generators`."""
        self._require_generators()
        return list(self._names)

    def conserved_quantities(self, x) -> jax.Array:
        """Values ``C_l(x) = ½ xᵀA_l x + b_lᵀx`` of the ground-truth observables, ``(..., L)``."""
        x = self._check_points(x)
        with float64():
            A, b = geometry.quadratic_from_generator(jnp.asarray(self._require_generators()))
            A, b = np.asarray(A), np.asarray(b)
        dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else None
        A, b = jnp.asarray(A, dtype), jnp.asarray(b, dtype)
        return geometry.quadratic_observable(A, b, x[..., None, :])

    # -- initial conditions ----------------------------------------------------------------------
    @property
    def _shift_dim(self) -> int:
        """Size of a position shift: one per position coordinate (one per axis for n-body)."""
        return self.phase_dim // 2

    def _expand_shift(self, shift: np.ndarray) -> np.ndarray:
        """``(n, shift_dim) -> (n, d)``: the shift of every position coordinate."""
        return shift

    def _ic_options(self, scale, position_scale, shift_scale, position_shift) -> tuple:
        scale = _check_real("scale", scale)
        position_scale = 1.0 if position_scale is None else _check_real(
            "position_scale", position_scale)
        shift_scale = self._default_shift_scale if shift_scale is None else _check_real(
            "shift_scale", shift_scale, allow_zero=True)
        shift = np.asarray(position_shift, dtype=np.float64)
        try:
            shift = np.broadcast_to(shift, (self._shift_dim,))
        except ValueError:
            raise ValueError(
                f"Expected `position_shift` to be a number or an array of shape "
                f"({self._shift_dim},), got shape {shift.shape}."
            ) from None
        if not np.all(np.isfinite(shift)):
            raise ValueError(f"Expected `position_shift` to be finite, got {position_shift!r}.")
        return scale, position_scale, shift_scale, shift

    def sample_initial_conditions(
        self,
        key: jax.Array,
        n: int,
        *,
        scale: float = 1.0,
        position_scale: float | None = None,
        shift_scale: float | None = None,
        position_shift=0.0,
    ) -> np.ndarray:
        """Random initial conditions ``(n, M)`` float64 (App. C).

        ``x ~ N(0, scale² I)``; then the positions ``q`` are multiplied by ``position_scale``
        (default 1; the "wider" test set uses 3) and shifted by a per-trajectory
        ``N(0, shift_scale² I)`` draw (default: the system's, 0 except for :class:`NBody`, where
        App. C.3 uses 3) plus the constant ``position_shift`` (a number or one value per shift
        coordinate; the "moved" test set). Same key, same draws whatever the global x64 flag.
        """
        check_key(key)
        n = check_int("n", n)
        scale, position_scale, shift_scale, shift = self._ic_options(
            scale, position_scale, shift_scale, position_shift)
        d = self.phase_dim // 2
        with float64():
            k_x, k_shift = jax.random.split(key)
            x = np.array(jax.random.normal(k_x, (n, self.phase_dim), jnp.float64))
            z = np.asarray(jax.random.normal(k_shift, (n, self._shift_dim), jnp.float64))
        x *= scale
        x[:, :d] = x[:, :d] * position_scale + self._expand_shift(shift_scale * z + shift)
        return self._bounded(x)

    def _bounded(self, x: np.ndarray) -> np.ndarray:
        """Map drawn initial conditions ``(n, M)`` into the region of bounded orbits; the
        identity here (systems with escaping orbits override it)."""
        return x

    # -- simulation ------------------------------------------------------------------------------
    def _solver(self, rtol: float, atol: float, max_steps: int):
        cache_key = ("solver", rtol, atol, max_steps)
        if cache_key not in self._cache:
            field = self._field
            term = diffrax.ODETerm(lambda t, y, args: field(y))

            def solve_one(x0, ts):
                # Steps land on every save time: no dense-output interpolation error.
                controller = diffrax.ClipStepSizeController(
                    diffrax.PIDController(rtol=rtol, atol=atol), step_ts=ts)
                sol = diffrax.diffeqsolve(
                    term, diffrax.Dopri8(), t0=ts[0], t1=ts[-1], dt0=None, y0=x0,
                    saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
                    max_steps=max_steps, throw=False,
                )
                return sol.ys, sol.result == diffrax.RESULTS.successful

            self._cache[cache_key] = jax.jit(jax.vmap(solve_one, in_axes=(0, None)))
        return self._cache[cache_key]

    def integrate(
        self,
        x0,
        n_steps: int,
        dt: float,
        *,
        rtol: float = 1e-12,
        atol: float = 1e-12,
        max_steps: int = 200_000,
    ) -> Trajectories:
        """Integrate ``dx/dt = J∇H(x)`` from ``x0 (N, M)`` (or ``(M,)``) in float64, saving
        ``n_steps + 1`` points ``Δt = dt`` apart. Returns float64 :class:`Trajectories`.

        Adaptive Dopri8 with ``PIDController(rtol, atol)``; ``max_steps`` bounds the solver
        steps per trajectory. Raises ``RuntimeError`` naming the trajectories whose solve
        failed (e.g. too few ``max_steps``).
        """
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.ndim == 1:
            x0 = x0[None]
        if x0.ndim != 2 or x0.shape[1] != self.phase_dim or x0.shape[0] < 1:
            raise ValueError(f"Expected `x0` of shape (N, {self.phase_dim}), got {x0.shape}.")
        if not np.all(np.isfinite(x0)):
            raise ValueError("Expected `x0` to be finite.")
        n_steps = check_int("n_steps", n_steps)
        dt = _check_real("dt", dt)
        rtol, atol = _check_real("rtol", rtol), _check_real("atol", atol)
        max_steps = check_int("max_steps", max_steps)
        ts = np.arange(n_steps + 1, dtype=np.float64) * dt
        solve = self._solver(rtol, atol, max_steps)
        try:
            with float64():
                ys, ok = solve(jnp.asarray(x0), jnp.asarray(ts))
                ys, ok = np.asarray(ys, dtype=np.float64), np.asarray(ok)
        except (TypeError, jax.errors.JaxRuntimeError) as err:
            if jax.config.jax_enable_x64:
                raise
            raise RuntimeError(
                f"float64 simulation of {self.name!r} failed: {err}\nIf the Hamiltonian "
                f"captures NumPy arrays, create them inside it with jnp.asarray(c, x.dtype), or "
                f"enable x64 globally (jax.config.update('jax_enable_x64', True))."
            ) from err
        if not ok.all() or not np.all(np.isfinite(ys)):
            bad = np.flatnonzero(~ok | ~np.isfinite(ys).all(axis=(1, 2)))
            raise RuntimeError(
                f"Simulation of {self.name!r} failed for trajectories {bad[:10].tolist()} "
                f"(of {len(ok)}); try increasing `max_steps` (now {max_steps}) or loosening "
                f"`rtol`/`atol`."
            )
        return Trajectories(states=ys, dt=dt)

    def simulate(
        self,
        key: jax.Array,
        n_trajectories: int,
        n_steps: int,
        dt: float,
        *,
        scale: float = 1.0,
        position_scale: float | None = None,
        shift_scale: float | None = None,
        position_shift=0.0,
        rtol: float = 1e-12,
        atol: float = 1e-12,
        max_steps: int = 200_000,
    ) -> Trajectories:
        """Simulate ``n_trajectories`` trajectories of ``n_steps`` Δt steps (``n_steps + 1``
        points) from random initial conditions (App. C).

        Initial conditions as in :meth:`sample_initial_conditions` (same keywords); integration
        as in :meth:`integrate`. All arguments are validated before any JAX tracing.
        """
        check_key(key)
        n_trajectories = check_int("n_trajectories", n_trajectories)
        n_steps = check_int("n_steps", n_steps)
        dt = _check_real("dt", dt)
        x0 = self.sample_initial_conditions(
            key, n_trajectories, scale=scale, position_scale=position_scale,
            shift_scale=shift_scale, position_shift=position_shift)
        return self.integrate(x0, n_steps, dt, rtol=rtol, atol=atol, max_steps=max_steps)

    def split_settings(self, split: str = "train") -> dict:
        """The :meth:`simulate` arguments of a data split (App. C; Table 3's test sets).

        ``"train"`` and ``"test"`` follow App. C (``n_steps = 49`` gives the paper's "50 data
        points"); ``"moved"`` and ``"wider"`` are the test set with a constant
        ``position_shift`` added, or positions multiplied by ``position_scale = 3`` (Table 3;
        the size of the shift is this package's choice, the paper does not state it).
        """
        if split not in SPLITS:
            raise ValueError(f"Unknown `split` {split!r}; expected one of {SPLITS}.")
        return dict(self._split_settings[split])

    def simulate_split(self, key: jax.Array, split: str = "train", **overrides) -> Trajectories:
        """:meth:`simulate` with the settings of :meth:`split_settings` (``overrides`` win)."""
        return self.simulate(key, **{**self.split_settings(split), **overrides})

