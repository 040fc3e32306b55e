"""promote: least squares with a convex penalty on symmetry breaking (seed 000, "promoting
symmetry": nuclear norm of the Lie-derivative map; DESIGN "Lie-derivative toolkit").

For a basis-function Hamiltonian ``H_w`` and candidate generators ``C_1..C_K``, the matrix
``L(w)[i, k] = {H_w, C_k}(x_i) / √N`` (``N`` points, ``(N, K)``, linear in ``w``) has a right
nullspace made of the candidate combinations under which ``H_w`` is invariant. Its nuclear norm
``‖L(w)‖_*`` is the convex relaxation of its rank, so penalising it favours a large symmetry
group inside the candidates without fixing one:

``minimise  ½‖z − D w‖² + ½ λ‖w‖² + weight · ‖L(w)‖_*``

(``z, D``: Euler-step residuals of :class:`~noether_ppl.models.BasisHamiltonian`). Solved by
ADMM on the split ``Z = L(w)`` (Boyd et al. 2011, scaled form, with residual balancing of ρ):
a linear solve for ``w``, singular-value soft-thresholding for ``Z``, a dual step for ``U``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ...models.basis import BasisFit, BasisHamiltonian, check_pairs, check_ridge
from ...precision import float64 as _x64
from ..symmetry import parallelness as _parallelness
from .derivative import basis_lie_derivatives, check_generators, check_points
from .enforce import _check_model

__all__ = ["ADMMState", "PromotionReport", "promote"]


class ADMMState(NamedTuple):
    """ADMM iterate: ``w (F,)``, ``Z, U (N, K)``, penalty ``rho``, the last primal residual
    ``‖L(w) − Z‖``, dual residual ``ρ‖Lᵀ(Z − Z_prev)‖``, ``rank(Z)`` and the iteration count."""

    w: jax.Array
    Z: jax.Array
    U: jax.Array
    rho: jax.Array
    primal: jax.Array
    dual: jax.Array
    rank: jax.Array
    iteration: jax.Array


def _svt(V: jax.Array, tau) -> tuple[jax.Array, jax.Array]:
    """Prox of ``tau ‖·‖_*`` (singular-value thresholding, Cai, Candès & Shen 2010): shrink the
    singular values of ``V`` by ``tau``; returns ``(Z, rank Z)``."""
    u, s, vt = jnp.linalg.svd(V, full_matrices=False)
    s = jnp.maximum(s - tau, 0.0)
    return (u * s) @ vt, jnp.sum(s > 0).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("shape",))
def _admm(H0, g, Tm, weight, tol, max_iter, rho0, w0, *, shape):
    """ADMM for :func:`promote` until its stopping rule holds; ``Tm (N·K, F)``, ``shape = (N, K)``.

    Returns the final :class:`ADMMState` and whether the rule holds.
    """
    TtT = Tm.T @ Tm
    L = lambda w: (Tm @ w).reshape(shape)
    Lt = lambda Z: Tm.T @ Z.reshape(-1)
    p_floor = jnp.linalg.norm(L(w0))
    d_floor = jnp.linalg.norm(g)

    def step(state: ADMMState) -> ADMMState:
        w, Z, U, rho = state.w, state.Z, state.U, state.rho
        w = jnp.linalg.solve(H0 + rho * TtT, g + rho * Lt(Z - U))
        Lw = L(w)
        Z_new, rank = _svt(Lw + U, weight / rho)
        U = U + Lw - Z_new
        primal = jnp.linalg.norm(Lw - Z_new)
        dual = rho * jnp.linalg.norm(Lt(Z_new - Z))
        # Residual balancing (Boyd et al. 2011, Sec. 3.4.1) every 10 steps in the first half.
        it = state.iteration + jnp.int32(1)
        adapt = (it % 10 == 0) & (it < max_iter // 2)
        factor = jnp.where(primal > 10 * dual, 2.0, jnp.where(dual > 10 * primal, 0.5, 1.0))
        factor = jnp.where(adapt, factor, 1.0)
        return ADMMState(w, Z_new, U / factor, rho * factor, primal, dual, rank, it)

    def done(state: ADMMState):
        Lw = L(state.w)
        eps_p = tol * jnp.maximum(jnp.maximum(jnp.linalg.norm(Lw), jnp.linalg.norm(state.Z)),
                                  p_floor)
        eps_d = tol * jnp.maximum(state.rho * jnp.linalg.norm(Lt(state.U)), d_floor)
        return (state.primal <= eps_p) & (state.dual <= eps_d)

    Z0 = L(w0)
    inf = jnp.asarray(jnp.inf, H0.dtype)
    init = ADMMState(w0, Z0, jnp.zeros_like(Z0), rho0, inf, inf,
                     jnp.asarray(min(shape), jnp.int32), jnp.asarray(0, jnp.int32))
    final = jax.lax.while_loop(lambda s: (s.iteration < max_iter) & ~done(s), step, init)
    return final, done(final)


@dataclasses.dataclass(frozen=True, eq=False)
class PromotionReport:
    """Which candidate symmetries a promoted fit kept.

    Attributes
    ----------
    weight : the penalty weight.
    candidates : ``(K, M+1, M+1)`` candidate generators as given.
    singular_values : ``(K,)`` singular values of ``L(w)`` at the solution, descending.
    least_squares_singular_values : ``(K,)`` the same at the unpenalised least-squares fit.
    rank : rank of the ADMM split variable ``Z`` (exact: soft-thresholded singular values).
    kept_coefficients : ``(K − rank, K)`` unit right singular vectors of ``L(w)`` with the
        smallest singular values: candidate combinations under which ``H_w`` is invariant.
    kept_generators : ``(K − rank, M+1, M+1)`` those combinations, unit Frobenius norm.
    objective : the penalised objective at the solution.
    iterations, primal_residual, dual_residual, tol, rho : ADMM diagnostics (see ``promote``).
    """

    weight: float
    candidates: np.ndarray
    singular_values: np.ndarray
    least_squares_singular_values: np.ndarray
    rank: int
    kept_coefficients: np.ndarray
    kept_generators: np.ndarray
    objective: float
    iterations: int
    primal_residual: float
    dual_residual: float
    tol: float
    rho: float

    @property
    def n_kept(self) -> int:
        """Dimension of the kept symmetry inside the candidates, ``K − rank``."""
        return self.kept_coefficients.shape[0]

    def parallelness(self, reference) -> np.ndarray:
        """``‖P v_i‖`` of each kept generator against a reference span (system or stack)."""
        if hasattr(reference, "generators") and callable(reference.generators):
            reference = reference.generators()
        if self.n_kept == 0:
            return np.zeros(0)
        return _parallelness(self.kept_generators.reshape(self.n_kept, -1), reference)

    def __str__(self) -> str:
        K = self.candidates.shape[0]
        s = self.singular_values
        s0 = self.least_squares_singular_values
        lines = [
            f"Promoted symmetry: kept {self.n_kept} of {K} candidate directions (weight "
            f"{self.weight:g}; rank of the split Z = L(w) is {self.rank}); ADMM converged in "
            f"{self.iterations} iterations to tol {self.tol:g}",
            "  i   sigma_i(L(w))   least squares",
        ]
        for i in range(K):
            tag = "  (kept)" if i >= self.rank else ""
            lines.append(f"{i:3d}   {s[i]:13.3e}   {s0[i]:13.3e}{tag}")
        return "\n".join(lines)


def _check_nonneg(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"Expected `{name}` to be a finite number >= 0, got {value!r}.")
    return float(value)


def promote(
    model: BasisHamiltonian,
    candidates,
    data,
    weight: float,
    *,
    dt: float | None = None,
    points=None,
    ridge: float = 0.0,
    tol: float = 1e-8,
    max_iter: int = 100_000,
) -> BasisFit:
    """Fit ``w`` with the nuclear-norm symmetry penalty (module docstring) by ADMM.

    Parameters
    ----------
    model : a :class:`~noether_ppl.models.BasisHamiltonian`.
    candidates : ``(K, M+1, M+1)`` candidate quadratic generators (or a system); e.g. the whole
        quadratic algebra ``quadratic_basis(M).generators``.
    data : :class:`~noether_ppl.Trajectories` or ``(x_t, x_next)`` with ``dt``.
    weight : penalty weight ``>= 0`` (0 gives least squares), in units of the squared Euler
        residual (the loss is a sum over pairs, not a mean).
    points : ``(N, M)`` points of ``L(w)``, ``N >= K``; default: the data's ``x_t``.
    ridge : ``λ >= 0``.
    tol : stopping rule: ``‖L(w) − Z‖ <= tol · max(‖L(w)‖, ‖Z‖, ‖L(w_LS)‖)`` and
        ``ρ‖Lᵀ(Z − Z_prev)‖ <= tol · max(ρ‖LᵀU‖, ‖Dᵀz‖)`` (relative residuals, Boyd Sec. 3.3).
    max_iter : ADMM iterations; ``RuntimeError`` if the rule is not met by then.

    Returns a :class:`~noether_ppl.models.BasisFit` (``method="promote"``) whose ``promotion``
    is a :class:`PromotionReport`.
    """
    model = _check_model(model)
    M, F = model.phase_dim, model.n_features
    C = check_generators(candidates, M, name="candidates")
    weight = _check_nonneg("weight", weight)
    ridge = check_ridge(ridge)
    if not (isinstance(tol, (float, int)) and not isinstance(tol, bool) and 0 < tol < 1):
        raise ValueError(f"Expected 0 < `tol` < 1, got {tol!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"Expected `max_iter` to be an integer >= 1, got {max_iter!r}.")
    x_t, x_next, dt = check_pairs(data, dt, M)
    x = x_t if points is None else check_points(points, M)
    N, K = x.shape[0], C.shape[0]
    if N < K:
        raise ValueError(f"Expected `points` to hold at least K = {K} points (one per "
                         f"candidate), got {N}.")

    D = model.design(x_t, dt)
    z = (x_next - x_t).reshape(-1)
    H0 = D.T @ D + ridge * np.eye(F)
    g = D.T @ z
    T = basis_lie_derivatives(model.basis, x, C) / math.sqrt(N)  # (N, K, F)
    Tm = T.reshape(N * K, F)
    w_ls = np.linalg.lstsq(np.concatenate([D, math.sqrt(ridge) * np.eye(F)]),
                           np.concatenate([z, np.zeros(F)]), rcond=None)[0]
    rho0 = np.trace(H0) / max(np.trace(Tm.T @ Tm), 1e-300)
    with _x64():
        f64 = lambda a: jnp.asarray(a, jnp.float64)
        state, ok = _admm(f64(H0), f64(g), f64(Tm), f64(weight), f64(tol),
                          jnp.asarray(max_iter), f64(rho0), f64(w_ls), shape=(N, K))
        state = jax.tree_util.tree_map(np.asarray, state)
        ok = bool(ok)
    if not ok:
        raise RuntimeError(
            f"promote: ADMM did not reach tol={tol:g} in max_iter={max_iter} iterations (primal "
            f"residual {float(state.primal):.3e}, dual {float(state.dual):.3e}); increase "
            f"`max_iter` or loosen `tol`."
        )
    w = np.asarray(state.w, dtype=np.float64)
    Lw = (Tm @ w).reshape(N, K)
    _, s, vt = np.linalg.svd(Lw, full_matrices=False)
    s_ls = np.linalg.svd((Tm @ w_ls).reshape(N, K), compute_uv=False)
    rank = int(state.rank)
    kept = vt[rank:][::-1]  # most invariant first
    kept_G = np.einsum("rk,kij->rij", kept, C)
    norms = np.linalg.norm(kept_G, axis=(1, 2))
    kept_G = kept_G / np.where(norms > 0, norms, 1.0)[:, None, None]
    objective = (0.5 * np.sum((z - D @ w) ** 2) + 0.5 * ridge * w @ w + weight * np.sum(s))
    report = PromotionReport(weight, C, s, s_ls, rank, kept, kept_G, float(objective),
                             int(state.iteration), float(state.primal), float(state.dual),
                             float(tol), float(state.rho))
    return BasisFit(model, w, "promote", ridge=ridge, promotion=report)
