"""Starting η at given conserved quantities: the parameters ``conserved_W, conserved_b`` of
Noether's razor whose generators are given ones (Sec. 3.1, Eq. 4), e.g. what
:func:`~noether_ppl.analysis.discover` found in a plain HNN's fitted Hamiltonian.

A generator is ``G = [[JA, Jb], [0, 0]]`` with ``A`` symmetric, and the razor parameterises
``A = W + Wᵀ`` (:func:`~noether_ppl.geometry.symmetric_from_unconstrained`). Since
``J⁻¹ = −J``: ``A = −J G[:M, :M]``, ``b = −J G[:M, M]`` and ``W = A/2``.
"""

from __future__ import annotations

import jax
import numpy as np

from ..geometry import symplectic_form

__all__ = ["conserved_params_from_generators", "quadratic_from_generators"]


def quadratic_from_generators(generators) -> tuple[np.ndarray, np.ndarray]:
    """``(A (L, M, M), b (L, M))`` of generators ``(L, M+1, M+1)`` (Eq. 4 inverted).

    Raises ``ValueError`` for generators that are not of the form ``[[JA, Jb], [0, 0]]`` with
    symmetric ``A`` (no quadratic conserved quantity has them)."""
    G = np.asarray(generators, dtype=np.float64)
    if G.ndim == 2:
        G = G[None]
    if G.ndim != 3 or G.shape[1] != G.shape[2] or G.shape[1] < 3 or (G.shape[1] - 1) % 2:
        raise ValueError(f"Expected `generators` of shape (L, M+1, M+1) with M even, got "
                         f"{G.shape}.")
    if not np.all(np.isfinite(G)):
        raise ValueError("Expected finite `generators`.")
    M = G.shape[1] - 1
    J = np.asarray(symplectic_form(M), dtype=np.float64)
    A = -np.einsum("ij,ljk->lik", J, G[:, :M, :M])
    b = -np.einsum("ij,lj->li", J, G[:, :M, M])
    tol = 1e-6 * max(1.0, float(np.abs(G).max()))
    if np.abs(G[:, M, :]).max() > tol or np.abs(A - np.swapaxes(A, 1, 2)).max() > tol:
        raise ValueError("Expected `generators` of the form [[JA, Jb], [0, 0]] with A "
                         "symmetric (the generators of quadratic observables, Eq. 4).")
    return 0.5 * (A + np.swapaxes(A, 1, 2)), b


def conserved_params_from_generators(generators, n_conserved: int, *, key: jax.Array,
                                     scale: float, dtype=np.float32) -> dict:
    """``{"conserved_W": (K, M, M), "conserved_b": (K, M)}`` whose first ``L`` generators are
    ``generators (L, M+1, M+1)`` (``L <= K = n_conserved``); the other ``K − L`` start as the
    razor's own do, entries ``N(0, scale²)`` (drawn from ``key``). For ``fit(...,
    init_params=...)`` or ``fit_in_folder(..., init_params=...)``.

    Raises ``ValueError`` as :func:`quadratic_from_generators` does, or for more than ``K``.
    """
    A, b = quadratic_from_generators(generators)
    L, M = b.shape
    if isinstance(n_conserved, bool) or not isinstance(n_conserved, (int, np.integer)) or \
            not L <= n_conserved:
        raise ValueError(f"Expected `n_conserved` to be an integer >= {L} (the number of "
                         f"`generators`), got {n_conserved!r}.")
    k_W, k_b = jax.random.split(key)
    W = scale * np.asarray(jax.random.normal(k_W, (n_conserved, M, M)), np.float64)
    B = scale * np.asarray(jax.random.normal(k_b, (n_conserved, M)), np.float64)
    W[:L] = A / 2  # A = W + Wᵀ
    B[:L] = b
    return {"conserved_W": W.astype(dtype), "conserved_b": B.astype(dtype)}
