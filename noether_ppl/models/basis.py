"""Basis-function Hamiltonians ``H_w(x) = Σ_j w_j φ_j(x)``: linear in ``w`` (seed 000, Sec.
"basis function regression"; DESIGN "Lie-derivative toolkit").

Likelihood: one explicit Euler step of Hamilton's equations (Sec. 4.1 of seed 002 with ``n = 1``
sub-step, which keeps the mean linear in ``w``):

``x_{t+Δt} ~ N(x_t + Δt J∇H_w(x_t), σ² I)``,  ``J∇H_w(x) = Σ_j w_j J∇φ_j(x)``.

So ``z = x_{t+Δt} − x_t`` is linear-Gaussian in ``w``: ``z = D w + ε`` with the design matrix
``D[(i, m), j] = Δt (J∇φ_j(x_i))_m`` of shape ``(N·M, F)``. Least squares minimises the
Euler-step residuals ``½‖z − D w‖² + ½ λ‖w‖²``; with the prior ``w ~ N(0, α I)`` the posterior
and the marginal likelihood ``z ~ N(0, α D Dᵀ + σ² I)`` are closed-form (the posterior mean is
the least-squares fit with ``λ = σ²/α``).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..data import Trajectories
from ..geometry import check_phase_dim
from ..precision import float64 as _x64

__all__ = [
    "FeatureBasis",
    "PolynomialBasis",
    "FunctionBasis",
    "BasisHamiltonian",
    "BasisFit",
]


def _coordinate_names(M: int) -> list[str]:
    d = M // 2
    return [f"q{i}" for i in range(d)] + [f"p{i}" for i in range(d)]


def _symplectic(grad: jax.Array) -> jax.Array:
    """``J g = (g_p, −g_q)`` along the last axis (Sec. 2.1) without forming ``J``."""
    d = grad.shape[-1] // 2
    return jnp.concatenate([grad[..., d:], -grad[..., :d]], axis=-1)


class FeatureBasis:
    """Features ``φ: R^M → R^F`` of a basis-function Hamiltonian.

    Subclasses set ``phase_dim``, ``n_features``, ``names`` and implement ``_one(x)`` for one
    point ``x (M,)`` returning ``(F,)`` (JAX-traceable). Calling the basis maps ``(..., M)`` to
    ``(..., F)``; :meth:`jacobian` gives ``∂φ_j/∂x_m`` as ``(..., F, M)`` by forward-mode autodiff.
    """

    phase_dim: int
    n_features: int
    names: tuple[str, ...]

    def _one(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError

    def _check_x(self, x) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim < 1 or x.shape[-1] != self.phase_dim:
            raise ValueError(f"Expected `x` of shape (..., {self.phase_dim}), got {x.shape}.")
        return x

    def _compiled(self, kind: str):
        """``jit(vmap(φ))`` or ``jit(vmap(jacfwd(φ)))``, built once per basis."""
        cache = self.__dict__.setdefault("_compiled_cache", {})
        if kind not in cache:
            fn = self._one if kind == "features" else jax.jacfwd(self._one)
            cache[kind] = jax.jit(jax.vmap(fn))
        return cache[kind]

    def __call__(self, x) -> jax.Array:
        x = self._check_x(x)
        flat = x.reshape((-1, self.phase_dim))
        return self._compiled("features")(flat).reshape(x.shape[:-1] + (self.n_features,))

    def jacobian(self, x) -> jax.Array:
        """``∂φ_j/∂x_m`` for ``x (..., M)``: ``(..., F, M)``."""
        x = self._check_x(x)
        flat = x.reshape((-1, self.phase_dim))
        jac = self._compiled("jacobian")(flat)
        return jac.reshape(x.shape[:-1] + (self.n_features, self.phase_dim))


class PolynomialBasis(FeatureBasis):
    """All monomials ``Π_m x_m^{e_m}`` of total degree ``1..degree`` on ``R^M``.

    The constant is excluded: it has no dynamics (``J∇1 = 0``) and no likelihood information.
    Order: by degree, then lexicographically in ``x = (q, p)``; ``exponents`` is ``(F, M)`` with
    ``F = C(M + degree, degree) − 1``. Names read like ``"q0^2*p1"``.
    """

    def __init__(self, phase_dim: int, degree: int):
        M = check_phase_dim(phase_dim)
        if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)) or degree < 1:
            raise ValueError(
                f"Expected `degree` to be an integer >= 1 (the constant has no dynamics), got "
                f"{degree!r}."
            )
        degree = int(degree)
        rows = []
        for k in range(1, degree + 1):
            for combo in itertools.combinations_with_replacement(range(M), k):
                e = np.zeros(M, dtype=np.int64)
                np.add.at(e, list(combo), 1)
                rows.append(e)
        E = np.stack(rows)
        E.flags.writeable = False
        coords = _coordinate_names(M)
        names = tuple(
            "*".join(coords[m] + (f"^{e[m]}" if e[m] > 1 else "") for m in range(M) if e[m])
            for e in E
        )
        self.phase_dim, self.degree, self.exponents = M, degree, E
        self.n_features, self.names = E.shape[0], names

    def _one(self, x: jax.Array) -> jax.Array:
        # powers[k, m] = x_m^k by repeated multiplication: exact derivatives, no 0^(-1).
        powers = [jnp.ones_like(x)]
        for _ in range(self.degree):
            powers.append(powers[-1] * x)
        powers = jnp.stack(powers)  # (degree + 1, M)
        out = jnp.ones((self.n_features,), x.dtype)
        for m in range(self.phase_dim):
            out = out * powers[self.exponents[:, m], m]
        return out

    def __repr__(self) -> str:
        return (f"PolynomialBasis(phase_dim={self.phase_dim}, degree={self.degree}, "
                f"n_features={self.n_features})")


class FunctionBasis(FeatureBasis):
    """A user basis: ``fn(x)`` of one point ``x (M,)`` returning ``(F,)`` features (JAX).

    ``F`` is read from ``jax.eval_shape``; ``names`` default to ``"phi_0", "phi_1", …``.
    """

    def __init__(self, fn: Callable[[jax.Array], jax.Array], phase_dim: int, *,
                 names: Sequence[str] | None = None):
        if not callable(fn):
            raise ValueError(f"Expected `fn` to be callable x (M,) -> (F,), got "
                             f"{type(fn).__name__}.")
        M = check_phase_dim(phase_dim)
        try:
            out = jax.eval_shape(fn, jax.ShapeDtypeStruct((M,), jnp.float32))
        except Exception as err:  # the user's function failed on a point of shape (M,)
            raise ValueError(f"`fn` failed on a point of shape ({M},): {err}") from err
        if not hasattr(out, "shape") or len(out.shape) != 1 or out.shape[0] < 1:
            raise ValueError(
                f"Expected `fn` to return a 1-D array (F,) with F >= 1 for x of shape ({M},), "
                f"got {getattr(out, 'shape', type(out).__name__)}."
            )
        F = int(out.shape[0])
        if names is None:
            names = tuple(f"phi_{j}" for j in range(F))
        else:
            names = tuple(names)
            if len(names) != F or not all(isinstance(n, str) for n in names):
                raise ValueError(f"Expected `names` to be {F} strings, got {names!r}.")
        self.fn, self.phase_dim, self.n_features, self.names = fn, M, F, names

    def _one(self, x: jax.Array) -> jax.Array:
        return jnp.asarray(self.fn(x), x.dtype)

    def __repr__(self) -> str:
        return f"FunctionBasis(phase_dim={self.phase_dim}, n_features={self.n_features})"


# ---------------------------------------------------------------------------- input checks


def _check_variance(name: str, value) -> float:
    arr = np.asarray(value)
    if isinstance(value, bool) or arr.shape != () or arr.dtype.kind not in "iuf":
        raise ValueError(f"Expected `{name}` to be a positive finite number, got {value!r}.")
    v = float(arr)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"Expected `{name}` to be a positive finite number, got {value!r}.")
    return v


def check_ridge(ridge) -> float:
    """``ridge`` as a float, or ``ValueError`` unless it is a finite number ``>= 0``."""
    arr = np.asarray(ridge)
    if isinstance(ridge, bool) or arr.shape != () or arr.dtype.kind not in "iuf" or not (
        math.isfinite(float(arr)) and float(arr) >= 0
    ):
        raise ValueError(f"Expected `ridge` to be a finite number >= 0, got {ridge!r}.")
    return float(arr)


def check_pairs(data, dt, M: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``data``: :class:`Trajectories` or ``(x_t, x_next)`` each ``(N, M)`` (then ``dt`` given)."""
    if isinstance(data, Trajectories):
        if dt is not None and float(dt) != data.dt:
            raise ValueError(f"`dt`={dt!r} disagrees with the data's dt={data.dt}; leave `dt` "
                             f"out for Trajectories.")
        x_t, x_next = data.pairs()
        dt = data.dt
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x_t, x_next = (np.asarray(a) for a in data)
        if dt is None:
            raise ValueError("Expected `dt` with `data` given as pairs (x_t, x_next).")
        dt = _check_variance("dt", dt)
    else:
        raise ValueError(f"Expected `data` to be Trajectories or a pair (x_t, x_next), got "
                         f"{type(data).__name__}.")
    x_t = np.asarray(x_t, dtype=np.float64)
    x_next = np.asarray(x_next, dtype=np.float64)
    if x_t.ndim != 2 or x_t.shape[1] != M or x_next.shape != x_t.shape or x_t.shape[0] < 1:
        raise ValueError(f"Expected `data` pairs of shape (N, {M}), got {x_t.shape} and "
                         f"{x_next.shape}.")
    if not (np.all(np.isfinite(x_t)) and np.all(np.isfinite(x_next))):
        raise ValueError("Expected finite values in `data`.")
    return x_t, x_next, float(dt)


def _check_subspace(subspace, F: int) -> np.ndarray | None:
    if subspace is None:
        return None
    Q = np.asarray(subspace, dtype=np.float64)
    if Q.ndim != 2 or Q.shape[0] != F or Q.shape[1] < 1 or not np.all(np.isfinite(Q)):
        raise ValueError(f"Expected `subspace` to be a finite ({F}, r) matrix with r >= 1, got "
                         f"shape {Q.shape}.")
    return Q


# ---------------------------------------------------------------------------- the model


class BasisHamiltonian:
    """``H_w(x) = Σ_j w_j φ_j(x)`` with ``w ~ N(0, α I)`` and an Euler-step Gaussian likelihood.

    Parameters
    ----------
    basis : a :class:`FeatureBasis` (e.g. ``PolynomialBasis(M, 4)``).
    prior_variance : ``α`` of the prior ``w ~ N(0, α I_F)``.
    noise_variance : ``σ²`` of ``x_{t+Δt} ~ N(x_t + Δt J∇H_w(x_t), σ² I)`` (module docstring).

    As a NumPyro model: ``model(x_t, x_next=None, *, dt)`` with ``x_t, x_next (B, M)``; sites
    ``"w"`` ``(F,)`` and ``"x_next"``. Closed forms: :meth:`posterior`,
    :meth:`log_marginal_likelihood`; least squares: :meth:`fit`.
    """

    def __init__(self, basis: FeatureBasis, *, prior_variance: float = 1.0,
                 noise_variance: float = 1e-3):
        if not isinstance(basis, FeatureBasis):
            raise ValueError(f"Expected `basis` to be a FeatureBasis (PolynomialBasis, "
                             f"FunctionBasis), got {type(basis).__name__}.")
        self.basis = basis
        self.prior_variance = _check_variance("prior_variance", prior_variance)
        self.noise_variance = _check_variance("noise_variance", noise_variance)

    @property
    def phase_dim(self) -> int:
        return self.basis.phase_dim

    @property
    def n_features(self) -> int:
        return self.basis.n_features

    def __repr__(self) -> str:
        return (f"BasisHamiltonian({self.basis!r}, prior_variance={self.prior_variance:g}, "
                f"noise_variance={self.noise_variance:g})")

    # -------------------------------------------------------------- pure evaluations
    def hamiltonian(self, w, x) -> jax.Array:
        """``H_w(x) = φ(x)·w`` for ``w (F,)``, ``x (..., M)``; returns ``(...)``."""
        x = jnp.asarray(x)
        return self.basis(x) @ jnp.asarray(w, x.dtype)

    def vector_field(self, w, x) -> jax.Array:
        """``J∇H_w(x) = Σ_j w_j J∇φ_j(x)`` (Sec. 2.1) for ``x (..., M)``; returns ``(..., M)``."""
        x = jnp.asarray(x)
        grad = jnp.einsum("...fm,f->...m", self.basis.jacobian(x), jnp.asarray(w, x.dtype))
        return _symplectic(grad)

    def design(self, x_t, dt: float) -> np.ndarray:
        """Float64 design ``D (N·M, F)``: ``D[(i, m), j] = Δt (J∇φ_j(x_i))_m`` (Euler step)."""
        with _x64():
            x = jnp.asarray(x_t, jnp.float64)
            fields = _symplectic(self.basis.jacobian(x))  # (N, F, M)
            D = dt * jnp.swapaxes(fields, 1, 2).reshape(-1, self.n_features)
            return np.asarray(D, dtype=np.float64)

    def _linear_system(self, data, dt, subspace):
        x_t, x_next, dt = check_pairs(data, dt, self.phase_dim)
        Q = _check_subspace(subspace, self.n_features)
        D = self.design(x_t, dt)
        if Q is not None:
            D = D @ Q
        return D, (x_next - x_t).reshape(-1), Q

    # -------------------------------------------------------------- least squares
    def fit(self, data, *, dt: float | None = None, ridge: float = 0.0,
            subspace=None) -> BasisFit:
        """Least squares on the Euler-step residuals: ``argmin ½‖z − D w‖² + ½ ridge ‖w‖²``.

        ``data``: :class:`Trajectories` or ``(x_t, x_next)`` with ``dt``. ``ridge = 0`` gives the
        minimum-norm solution. ``subspace`` ``(F, r)``: fit ``w = Q u`` (ridge on ``u``).
        """
        ridge = check_ridge(ridge)
        D, z, Q = self._linear_system(data, dt, subspace)
        r = D.shape[1]
        if ridge > 0:
            D = np.concatenate([D, math.sqrt(ridge) * np.eye(r)])
            z = np.concatenate([z, np.zeros(r)])
        u = np.linalg.lstsq(D, z, rcond=None)[0]
        w = u if Q is None else Q @ u
        return BasisFit(self, w, "least_squares", ridge=ridge, subspace=Q)

    # -------------------------------------------------------------- closed-form Bayes
    def _precision(self, D):
        """Posterior precision ``S⁻¹ = DᵀD/σ² + I/α`` and its Cholesky factor."""
        prec = D.T @ D / self.noise_variance + np.eye(D.shape[1]) / self.prior_variance
        return prec, np.linalg.cholesky(prec)

    def posterior(self, data, *, dt: float | None = None, subspace=None):
        """Gaussian posterior of ``w``: mean ``(F,)`` and covariance ``(F, F)`` (conjugate
        linear-Gaussian model). With ``subspace`` ``Q (F, r)`` the prior is ``w = Q u``,
        ``u ~ N(0, α I_r)`` and the covariance is ``Q S Qᵀ``."""
        D, z, Q = self._linear_system(data, dt, subspace)
        prec, L = self._precision(D)
        S = np.linalg.solve(prec, np.eye(prec.shape[0]))
        m = S @ (D.T @ z) / self.noise_variance
        if Q is None:
            return m, S
        return Q @ m, Q @ S @ Q.T

    def log_marginal_likelihood(self, data, *, dt: float | None = None, subspace=None) -> float:
        """``log N(z | 0, α D Dᵀ + σ² I)`` in closed form via Woodbury and the determinant lemma:

        ``−½ [zᵀz/σ² − mᵀS⁻¹m + n log(2πσ²) + r log α + log det S⁻¹]``, with ``n = N·M``,
        ``S⁻¹ = DᵀD/σ² + I/α``, ``m = S Dᵀz/σ²`` and ``r`` columns of ``D`` (``D Q`` with a
        ``subspace``). This is ``log p(x_{t+Δt} | x_t)`` of all pairs, ``w`` integrated out.
        """
        D, z, _ = self._linear_system(data, dt, subspace)
        prec, L = self._precision(D)
        rhs = D.T @ z / self.noise_variance
        y = np.linalg.solve(L, rhs)  # mᵀS⁻¹m = ‖L⁻¹ Dᵀz/σ²‖²
        n, r = z.size, D.shape[1]
        logdet = 2.0 * np.sum(np.log(np.diag(L)))
        quad = z @ z / self.noise_variance - y @ y
        return float(-0.5 * (quad + n * math.log(2 * math.pi * self.noise_variance)
                             + r * math.log(self.prior_variance) + logdet))

    # -------------------------------------------------------------- NumPyro model
    def __call__(self, x_t, x_next=None, *, dt):
        x_t = jnp.asarray(x_t)
        if x_t.ndim != 2 or x_t.shape[1] != self.phase_dim:
            raise ValueError(f"Expected `x_t` of shape (B, {self.phase_dim}), got {x_t.shape}.")
        if x_next is not None and jnp.shape(x_next) != x_t.shape:
            raise ValueError(f"Expected `x_next` of shape {x_t.shape}, got {jnp.shape(x_next)}.")
        dtype = x_t.dtype
        prior = dist.Normal(jnp.zeros((), dtype), jnp.sqrt(jnp.asarray(self.prior_variance, dtype)))
        w = numpyro.sample("w", prior.expand([self.n_features]).to_event(1))
        mean = x_t + dt * self.vector_field(w, x_t)
        scale = jnp.sqrt(jnp.asarray(self.noise_variance, dtype))
        with numpyro.plate("pairs", x_t.shape[0]):
            numpyro.sample("x_next", dist.Normal(mean, scale).to_event(1), obs=x_next)
        return mean


@dataclasses.dataclass(frozen=True, eq=False)
class BasisFit:
    """Fitted coefficients ``w (F,)`` of a :class:`BasisHamiltonian`.

    Attributes
    ----------
    model : the model.
    weights : ``(F,)`` float64 coefficients in the model's basis.
    method : ``"least_squares"``, ``"enforce"`` or ``"promote"``.
    ridge : the ridge ``λ`` used.
    subspace : ``(F, r)`` the subspace ``w`` was restricted to (``enforce``), else None.
    promotion : the promote report (``noether_ppl.analysis.PromotionReport``), else None.
    """

    model: BasisHamiltonian
    weights: np.ndarray
    method: str
    ridge: float = 0.0
    subspace: np.ndarray | None = None
    promotion: Any = None

    def __post_init__(self):
        w = np.array(self.weights, dtype=np.float64)
        w.flags.writeable = False
        object.__setattr__(self, "weights", w)

    def hamiltonian(self, x) -> jax.Array:
        """``H_w(x)`` for ``x (..., M)`` (a scalar for one point): usable by ``discover``."""
        return self.model.hamiltonian(self.weights, x)

    def vector_field(self, x) -> jax.Array:
        """``J∇H_w(x)`` for ``x (..., M)``."""
        return self.model.vector_field(self.weights, x)

    def predict(self, x_t, dt: float) -> jax.Array:
        """The likelihood mean ``x_t + Δt J∇H_w(x_t)`` (one Euler step)."""
        x_t = jnp.asarray(x_t)
        return x_t + dt * self.vector_field(x_t)

    def coefficients(self) -> dict[str, float]:
        """``{feature name: w_j}``."""
        return dict(zip(self.model.basis.names, self.weights.tolist(), strict=True))
