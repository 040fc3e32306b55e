"""What a fitted Hamiltonian conserves: Poisson brackets of quadratic quantities with Ĥ.

Noether's theorem (Theorem 1): a quadratic quantity ``C`` (Eq. 4: ``C(x) = ½xᵀAx + bᵀx``,
generator ``G = [[JA, Jb], [0, 0]]``) generates a symmetry of ``Ĥ`` iff ``{C, Ĥ} = ∇C·J∇Ĥ``
vanishes. On states ``x_i`` this module measures it in one scale-free unit, the relative
bracket :func:`conservation_residuals`, for single quantities, for every direction of a span
(:func:`conservation_eigen`, a generalised eigenproblem) and for the whole quadratic space
(:func:`conservation_spectrum`, seed 000's Lie-derivative nullspace in these units), and reads
a dimension off such a spectrum (:func:`spectrum_dimension`). ``Ĥ`` is a fit's posterior-mean
Hamiltonian or any ``H(x) -> scalar``. Used by
:func:`~noether_ppl.inference.select_conserved`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..data import check_key
from ..geometry import (
    generator_from_quadratic,
    quadratic_from_generator,
    span_basis,
    symplectic_form,
)
from ..precision import float64
from .result import FitResult

__all__ = ["principal_generators", "conservation_residuals", "conservation_eigen",
           "conservation_spectrum", "deflate", "spectrum_cuts", "spectrum_dimension",
           "built_in_parts", "bracket_parts", "span_shares", "BUILT_IN_MIN_PART"]


def principal_generators(generators) -> tuple[np.ndarray, np.ndarray]:
    """``(σ (L,), G̃ (L, M+1, M+1))``: the stacked generators ``(K, M+1, M+1)`` in principal
    form, ``G̃_k = σ_k v_k`` from the SVD ``Ĝ = U Σ Vᵀ`` (Sec. 5.1), largest first, each ``v_k``
    signed so its largest entry is positive; ``L = min(K, (M+1)²)``.

    For a rotation-invariant measure over the symmetry times (``"normal"``, ``"ball"``),
    ``Σ_k τ_k G_k = (Uᵀτ)ᵀ Σ Vᵀ`` with ``Uᵀτ ~ μ``, so the principal generators give the
    same distribution of group elements (Eq. 4, Eq. 14) as the original ones."""
    G = np.asarray(generators, dtype=np.float64)
    if G.ndim != 3 or G.shape[1] != G.shape[2]:
        raise ValueError(f"Expected `generators` of shape (K, M+1, M+1), got {G.shape}.")
    K, D = G.shape[0], G.shape[1]
    if K == 0:
        return np.zeros(0), np.zeros((0, D, D))
    _, s, vt = np.linalg.svd(G.reshape(K, -1), full_matrices=False)
    idx = np.argmax(np.abs(vt), axis=1)
    signs = np.sign(vt[np.arange(vt.shape[0]), idx])
    signs[signs == 0] = 1.0
    vt = vt * signs[:, None]
    return s, (s[:, None] * vt).reshape(-1, D, D)


def _field(result, x: np.ndarray, key) -> np.ndarray:
    """``J∇Ĥ(x_i) (N, M)`` of a fit (posterior-mean weights, group elements from ``key``) or
    of a Hamiltonian ``H(x (M,)) -> scalar``."""
    M = x.shape[1]
    if isinstance(result, FitResult):
        check_key(key)
        if result.model.phase_dim != M:
            raise ValueError(f"Expected states `x` of shape (N, {result.model.phase_dim}), got "
                             f"{x.shape}.")
        model = result.model
        weights = [jnp.asarray(w, model.dtype) for w in result.weights_mean()]
        field = model.vector_field(weights, result.group_elements(key))
        return np.asarray(field(jnp.asarray(x, model.dtype)), dtype=np.float64)
    if not callable(result):
        raise ValueError(f"Expected `result` to be a FitResult or a Hamiltonian H(x), got "
                         f"{type(result).__name__}.")
    with float64():
        grad = np.asarray(jax.vmap(jax.grad(result))(jnp.asarray(x, jnp.float64)), np.float64)
        J = np.asarray(symplectic_form(M, dtype=jnp.float64), np.float64)
    return grad @ J.T


def _brackets(result, generators, x, key) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``({C_k, Ĥ}(x_i) (N, L), ∇C_k(x_i) (N, L, M), J∇Ĥ(x_i) (N, M))`` for checked inputs."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"Expected finite states `x` of shape (N, M), got shape {x.shape}.")
    M = x.shape[1]
    f = _field(result, x, key)  # (N, M) = J∇Ĥ
    G = np.asarray(generators, dtype=np.float64)
    if G.ndim != 3 or G.shape[1:] != (M + 1, M + 1):
        raise ValueError(f"Expected `generators` of shape (L, {M + 1}, {M + 1}), got "
                         f"{G.shape}.")
    if G.shape[0] == 0:
        return np.zeros((x.shape[0], 0)), np.zeros((x.shape[0], 0, M)), f
    A, b = (np.asarray(a, np.float64) for a in quadratic_from_generator(jnp.asarray(G)))
    grad_c = np.einsum("kij,nj->nki", A, x) + b[None]  # (N, L, M)
    return np.einsum("nki,ni->nk", grad_c, f), grad_c, f


def conservation_residuals(result, generators, x, *, key: jax.Array | None = None
                           ) -> np.ndarray:
    """``(L,)`` relative Poisson brackets of the quantities with generators ``(L, M+1, M+1)``
    under the fitted Ĥ at the states ``x (N, M)``:

    ``r_k = rms_i {C_k, Ĥ}(x_i) / (rms_i ‖∇C_k(x_i)‖ · rms_i ‖J∇Ĥ(x_i)‖)``

    with ``{C_k, Ĥ} = ∇C_k · J∇Ĥ`` and ``∇C_k = A_k x + b_k`` (Sec. 3.1; Noether, Theorem 1:
    C_k is conserved by Ĥ's flow iff the bracket vanishes). ``result``: a fit (posterior-mean
    weights, one set of group elements from ``key``) or a Hamiltonian ``H(x (M,)) -> scalar``
    (``key`` unused). 0 for a quantity Ĥ conserves exactly; by Cauchy–Schwarz per point at
    most ``sqrt(mean_i a_i² b_i² / (mean_i a_i² · mean_i b_i²))`` with ``a = ‖∇C_k‖``,
    ``b = ‖J∇Ĥ‖`` (1 when the two are uncorrelated over the states)."""
    bracket, grad_c, f = _brackets(result, generators, x, key)
    rms = lambda a: np.sqrt(np.mean(a ** 2, axis=0))  # noqa: E731
    denom = np.sqrt(np.mean(np.sum(grad_c ** 2, -1), 0)) * np.sqrt(np.mean(np.sum(f ** 2, -1)))
    return rms(bracket) / np.maximum(denom, np.finfo(np.float64).tiny)


def conservation_eigen(result, generators, x, *, key: jax.Array | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The directions of the span of ``generators (L, M+1, M+1)`` ordered by how well the
    fitted Ĥ conserves them: ``(r (L,), V (L, L))``, ascending residuals ``r`` and coefficient
    vectors (columns of ``V``), so that ``C = Σ_k V_kj C_k`` has the relative bracket ``r_j``
    of :func:`conservation_residuals`.

    The residual of a combination ``C_v = Σ_k v_k C_k`` is a Rayleigh quotient,
    ``r(v)² = vᵀPv / vᵀQv`` with ``P = mean_i b_i b_iᵀ``, ``b_ik = {C_k, Ĥ}(x_i)``, and
    ``Q_kl = mean_i ∇C_k(x_i)·∇C_l(x_i) · mean_i ‖J∇Ĥ(x_i)‖²``; its stationary points are the
    generalised eigenvectors ``P v = r² Q v`` (normalised ``VᵀQV = I``). A principal direction
    of the generators (:func:`principal_generators`) can mix a conserved direction with one
    that is not; the eigenvectors separate them, the first ``j`` spanning the ``j``-dimensional
    subspace Ĥ conserves best. ``r_1 ≤ min_k r_k`` and ``r_L ≥ max_k r_k`` (Courant–Fischer).
    """
    bracket, grad_c, f = _brackets(result, generators, x, key)
    L = bracket.shape[1]
    if L == 0:
        return np.zeros(0), np.zeros((0, 0))
    n = bracket.shape[0]
    P = bracket.T @ bracket / n
    Q = np.einsum("nki,nli->kl", grad_c, grad_c) / n * np.mean(np.sum(f ** 2, -1))
    # Whiten by Q (a Gram matrix: positive definite for linearly independent ∇C_k).
    w, U = np.linalg.eigh(Q)
    if w[0] <= 1e-12 * max(w[-1], np.finfo(np.float64).tiny):
        raise ValueError("Expected linearly independent conserved quantities: their gradients "
                         "on the states `x` are (numerically) dependent.")
    W = U / np.sqrt(w)  # WᵀQW = I
    lam, Z = np.linalg.eigh(W.T @ P @ W)
    return np.sqrt(np.clip(lam, 0.0, None)), W @ Z


def deflate(generators, V, j: int) -> np.ndarray:
    """``(L−1, M+1, M+1)``: the generators ``(L, M+1, M+1)`` without the direction
    ``d = Σ_k V_kj G_k`` (column ``j`` of the coefficient matrix ``V (L, L)`` of
    :func:`conservation_eigen`), in principal form.

    In the eigenbasis ``G_k = Σ_i (V⁻¹)_ik d_i``; ``G'_k = G_k − (V⁻¹)_jk d_j`` removes the
    ``j``-th coordinate and keeps the others, so the span becomes that of the remaining
    eigen-directions and each ``G_k`` changes only along ``d_j``."""
    G = np.asarray(generators, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    L = G.shape[0]
    if G.ndim != 3 or V.shape != (L, L) or not 0 <= j < L:
        raise ValueError(f"Expected generators (L, D, D), V (L, L) and 0 <= j < L, got "
                         f"{G.shape}, {V.shape} and j={j}.")
    d = np.tensordot(V[:, j], G, axes=1)
    Gp = G - np.linalg.inv(V)[j][:, None, None] * d[None]
    _, P = principal_generators(Gp)
    return P[: L - 1]


def _quadratic_space(M: int) -> np.ndarray:
    """``(P, M+1, M+1)``, ``P = M(M+1)/2 + M``: generators of a basis of the quadratic and
    linear quantities on ``R^M`` (``x_i x_j`` for ``i <= j``, then ``x_i``; Eq. 4)."""
    A, b = [], []
    for i in range(M):
        for j in range(i, M):
            a = np.zeros((M, M))
            a[i, j] = a[j, i] = 1.0
            A.append(a)
            b.append(np.zeros(M))
    for i in range(M):
        A.append(np.zeros((M, M)))
        b.append(np.eye(M)[i])
    return np.asarray(generator_from_quadratic(jnp.asarray(np.stack(A)),
                                               jnp.asarray(np.stack(b))))


def conservation_spectrum(result, x, *, key: jax.Array | None = None
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Every quadratic quantity on ``R^M``, ordered by how well the fitted Ĥ conserves it:
    ``(r (P,), G (P, M+1, M+1))``, the ascending residuals of :func:`conservation_eigen` over
    the whole quadratic space (``P = M(M+1)/2 + M``, constants excluded) and the generators of
    those directions, each of unit Frobenius norm.

    A Rayleigh quotient does not depend on the basis, so this is the spectrum of seed 000's
    Lie-derivative nullspace (:func:`~noether_ppl.analysis.lie.discover`) measured in the
    units of :func:`conservation_residuals`: the first ``j`` directions span the
    ``j``-dimensional quadratic subspace Ĥ conserves best on the states ``x``, whether or not
    the fit learned them as η."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"Expected states `x` of shape (N, M), got shape {x.shape}.")
    basis = _quadratic_space(x.shape[1])
    r, V = conservation_eigen(result, basis, x, key=key)
    G = np.einsum("kj,kab->jab", V, basis)
    return r, G / np.linalg.norm(G.reshape(G.shape[0], -1), axis=1)[:, None, None]


def spectrum_cuts(residuals, max_residual: float, n: int = 1
                  ) -> list[tuple[int, float | None]]:
    """The ``n`` (or fewer) cuts of an ascending spectrum of residuals ``(P,)``
    (:func:`conservation_spectrum`) with the largest ratios ``r_{D+1} / r_D``, among the cuts
    whose last kept residual is at most ``max_residual`` (residuals below ``1e-12 r_max``
    count as that floor): ``[(D, ratio), ...]``, the largest ratio first. ``[(0, None)]`` when
    even the best-conserved direction is above ``max_residual``, ``[(P, None)]`` when every
    direction is below it."""
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or np.any(np.diff(r) < 0) or not np.all(np.isfinite(r)):
        raise ValueError("Expected a non-empty ascending finite spectrum of residuals.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"Expected `n` to be a positive int, got {n!r}.")
    if r[0] > max_residual:
        return [(0, None)]
    if r[-1] <= max_residual:
        return [(int(r.size), None)]
    floor = max(1e-12 * r[-1], np.finfo(np.float64).tiny)
    ratios = r[1:] / np.maximum(r[:-1], floor)  # ratios[j - 1]: the cut after j directions
    eligible = np.flatnonzero(r[:-1] <= max_residual)
    # the largest ratios first; equal ratios: the smaller dimension first (np.argmax's choice)
    order = eligible[np.lexsort((eligible, -ratios[eligible]))]
    return [(int(j) + 1, float(ratios[j])) for j in order[:n]]


def spectrum_dimension(residuals, max_residual: float) -> tuple[int, float | None]:
    """``(D, ratio)``: the dimension read off an ascending spectrum of residuals ``(P,)``
    (:func:`conservation_spectrum`): the cut ``D`` at the largest ratio
    ``r_{D+1} / r_D`` among the cuts whose last kept residual is at most ``max_residual``
    (residuals below ``1e-12 r_max`` count as that floor), and that ratio; ``(0, None)`` when
    even the best-conserved direction is above ``max_residual``, ``(P, None)`` when every
    direction is below it. The first of :func:`spectrum_cuts`."""
    return spectrum_cuts(residuals, max_residual, 1)[0]


BUILT_IN_MIN_PART = 0.3
"""``built_in``: the smallest norm of a unit built-in generator's part outside the spectrum's
span that counts as a further direction."""


def built_in_parts(generators: np.ndarray, basis: np.ndarray,
                   min_part: float = BUILT_IN_MIN_PART) -> np.ndarray:
    """The directions of ``generators (K, M+1, M+1)`` outside the span of the orthonormal rows
    ``basis (D, (M+1)²)``: the components of the unit generators orthogonal to that span,
    orthonormalised (SVD), kept where their singular value exceeds ``min_part``. Returns
    ``(E, (M+1)²)`` orthonormal rows, also orthogonal to ``basis``."""
    G = np.asarray(generators, np.float64).reshape(len(generators), -1)
    G = G / np.linalg.norm(G, axis=1, keepdims=True)
    outside = G - (G @ basis.T) @ basis if basis.shape[0] else G
    U, sig, _ = np.linalg.svd(outside.T, full_matrices=False)
    return U[:, sig > min_part].T


def bracket_parts(basis: np.ndarray, min_part: float = BUILT_IN_MIN_PART
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The directions the Lie brackets of a span add to it: ``(parts (E, (M+1)²), σ (R,))``.

    Poisson's theorem: the bracket ``{C_i, C_j}`` of two quantities a Hamiltonian conserves is
    conserved too, and for quadratic quantities it is quadratic, with generator the commutator
    ``[G_i, G_j]`` (:func:`~noether_ppl.geometry.lie_bracket`; Sec. 3.1, Eq. 4). So the
    quadratic quantities an Ĥ conserves form a Lie algebra, and a span that is not closed
    under the bracket misses directions Ĥ conserves whenever it conserves the span.

    For the orthonormal rows ``basis (D, (M+1)²)`` (unit generators ``B_i``): the commutators
    ``[B_i, B_j]`` (``i < j``, each of Frobenius norm at most √2), their components
    orthogonal to the span, stacked and orthonormalised by an SVD with singular values ``σ``
    (descending, ``R = min(D(D−1)/2, (M+1)²)``); the right singular vectors whose ``σ``
    exceeds ``min_part`` are ``parts``, orthonormal and orthogonal to ``basis``. ``σ`` is 0
    (to round-off) for a Lie subalgebra (:func:`~noether_ppl.geometry.closure_residual`)."""
    B = np.asarray(basis, np.float64)
    if B.ndim != 2 or B.shape[0] and not np.allclose(B @ B.T, np.eye(B.shape[0]), atol=1e-8):
        raise ValueError(f"Expected `basis` to be orthonormal rows (D, (M+1)^2), got shape "
                         f"{B.shape}.")
    n = int(round(np.sqrt(B.shape[1])))
    if n * n != B.shape[1]:
        raise ValueError(f"Expected rows of length (M+1)^2, got {B.shape[1]}.")
    if B.shape[0] < 2:
        return np.zeros((0, B.shape[1])), np.zeros(0)
    G = B.reshape(-1, n, n)
    i, j = np.triu_indices(G.shape[0], k=1)
    c = (np.matmul(G[i], G[j]) - np.matmul(G[j], G[i])).reshape(i.size, -1)
    outside = c - (c @ B.T) @ B
    _, sig, vt = np.linalg.svd(outside, full_matrices=False)
    return vt[sig > min_part], sig


def span_shares(generators: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """``(K,)`` the share of each unit generator of ``generators (K, M+1, M+1)`` in the span of
    ``selected (L, M+1, M+1)``: the norm of its projection on that span (Frobenius inner
    product), 1 inside it, 0 orthogonal to it (and for an empty ``selected``)."""
    G = np.asarray(generators, np.float64).reshape(len(generators), -1)
    G = G / np.linalg.norm(G, axis=1, keepdims=True)
    basis = span_basis(np.asarray(selected, np.float64).reshape(
        len(selected), *np.shape(generators)[1:]))
    return np.linalg.norm(G @ basis.T, axis=1) if basis.shape[0] else np.zeros(len(G))
