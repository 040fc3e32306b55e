"""enforce: fit a basis-function Hamiltonian inside the subspace of coefficients whose ``H_w`` is
invariant under given flows (seed 000, "enforcing symmetry"; DESIGN "Lie-derivative toolkit").

``{H_w, C_k}(x_i) = Σ_j T[i, k, j] w_j`` is linear in ``w``; stacking ``T`` into
``(N·K, F)`` the constraint ``{H_w, C_k}(x_i) = 0`` for all ``i, k`` is ``T w = 0``, and its
solutions are ``w = Q u`` with ``Q (F, r)`` an orthonormal basis of the nullspace of ``T``.
For a polynomial basis of degree ``d`` the brackets are polynomials of degree ``<= d``, so
constraint points in general position at least as many as the monomials of degree ``<= d`` make
the invariance exact everywhere.
"""

from __future__ import annotations

import numpy as np

from ...models.basis import BasisFit, BasisHamiltonian, check_pairs, check_ridge
from .derivative import basis_lie_derivatives, check_generators, check_points

__all__ = ["invariant_subspace", "enforce"]


def _check_model(model) -> BasisHamiltonian:
    if not isinstance(model, BasisHamiltonian):
        raise ValueError(f"Expected `model` to be a BasisHamiltonian (models.BasisHamiltonian), "
                         f"got {type(model).__name__}.")
    return model


def _check_rtol(rtol) -> float:
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.floating)) or not (
        0 < rtol < 1
    ):
        raise ValueError(f"Expected 0 < `rtol` < 1, got {rtol!r}.")
    return float(rtol)


def invariant_subspace(basis, generators, points, *, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal ``Q (F, r)``: coefficients ``w`` with ``{H_w, C_k}(x_i) = 0`` at every point.

    Nullspace of ``T (N·K, F)`` (module docstring): right singular vectors with singular value
    ``<= rtol · σ_max``. ``generators (K, M+1, M+1)`` or a system; ``points (N, M)``.
    """
    rtol = _check_rtol(rtol)
    G = check_generators(generators, basis.phase_dim)
    x = check_points(points, basis.phase_dim)
    F = basis.n_features
    T = basis_lie_derivatives(basis, x, G).reshape(-1, F)
    if T.shape[0] < F:  # zero rows keep the nullspace and give a square V
        T = np.concatenate([T, np.zeros((F - T.shape[0], F))])
    _, s, vt = np.linalg.svd(T, full_matrices=False)
    keep = s <= rtol * s[0] if s[0] > 0 else np.ones(F, bool)
    if not keep.any():
        raise ValueError("No non-zero H_w in the span of the basis is invariant under "
                         "`generators` at the `points`; enlarge the basis.")
    return vt[keep].T


def enforce(
    model: BasisHamiltonian,
    generators,
    data,
    *,
    dt: float | None = None,
    points=None,
    ridge: float = 0.0,
    rtol: float = 1e-10,
) -> BasisFit:
    """Least squares (as :meth:`BasisHamiltonian.fit`) restricted to ``w = Q u`` with
    ``Q = invariant_subspace(model.basis, generators, points)`` (seed 000; module docstring).

    Parameters
    ----------
    model : a :class:`~noether_ppl.models.BasisHamiltonian`.
    generators : ``(K, M+1, M+1)`` quadratic generators to enforce, or a system.
    data : :class:`~noether_ppl.Trajectories` or ``(x_t, x_next)`` with ``dt``.
    points : ``(N, M)`` constraint points; default: the data's ``x_t``. The symmetry is
        known, so points cost no data: pass many (see module docstring) to make it exact.
    ridge, rtol : ridge of the fit; relative nullspace threshold.

    Returns a :class:`~noether_ppl.models.BasisFit` with ``method="enforce"`` and ``subspace=Q``.
    """
    model = _check_model(model)
    M = model.phase_dim
    G = check_generators(generators, M)
    x_t = check_pairs(data, dt, M)[0]
    check_ridge(ridge)
    x = x_t if points is None else check_points(points, M)
    Q = invariant_subspace(model.basis, G, x, rtol=rtol)
    fit = model.fit(data, dt=dt, ridge=ridge, subspace=Q)
    return BasisFit(model, fit.weights, "enforce", ridge=fit.ridge, subspace=Q)
