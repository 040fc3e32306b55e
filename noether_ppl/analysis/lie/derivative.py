"""Lie derivatives of Hamiltonians along the flows of quadratic observables (seed 000; DESIGN
"Lie-derivative toolkit").

The flow of ``C(x) = ½ xᵀAx + bᵀx`` is ``dx/dτ = J∇C(x) = (G x̃)_{:M}`` with ``x̃ = (x, 1)`` and
``G = [[JA, Jb], [0, 0]]`` (Eq. 4). The Lie derivative of ``H`` along it is

``(L_C H)(x) = d/dτ H(Φ_C^τ x)|_0 = ∇H(x) · J∇C(x) = {H, C}(x)``,

linear in ``C`` for fixed ``H`` (discover) and linear in ``H`` for fixed ``C`` (enforce,
promote). Input checks shared by the toolkit live here too.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ...precision import float64 as _x64

__all__ = ["lie_derivatives", "basis_lie_derivatives"]


def check_points(points, phase_dim: int | None = None, *, name: str = "points") -> np.ndarray:
    """A finite float64 ``(N, M)`` array (``M = phase_dim`` when given), else ``ValueError``."""
    try:
        x = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected `{name}` to be a real (N, M) array: {err}") from None
    want = "M" if phase_dim is None else str(phase_dim)
    if x.ndim != 2 or x.shape[0] < 1 or (phase_dim is not None and x.shape[1] != phase_dim):
        raise ValueError(f"Expected `{name}` of shape (N, {want}) with N >= 1, got {x.shape}.")
    if x.shape[1] < 2 or x.shape[1] % 2:
        raise ValueError(f"Expected `{name}` with an even phase dimension (x = (q, p)), got "
                         f"{x.shape[1]}.")
    bad = ~np.isfinite(x)
    if bad.any():
        i, m = np.argwhere(bad)[0]
        raise ValueError(f"Expected finite `{name}`: point {i} has {x[i, m]} in coordinate {m}.")
    return x


def check_generators(generators, phase_dim: int, *, name: str = "generators") -> np.ndarray:
    """Quadratic generators ``(K, M+1, M+1)`` float64 (a single ``(M+1, M+1)`` becomes ``K = 1``;
    a system's ``.generators()`` is used). ``ValueError`` naming ``name`` otherwise."""
    if hasattr(generators, "generators") and callable(generators.generators):
        generators = generators.generators()
    try:
        G = np.asarray(generators, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"Expected `{name}` to be a real array: {err}") from None
    M = phase_dim
    if G.ndim == 2:
        G = G[None]
    if G.ndim != 3 or G.shape[1:] != (M + 1, M + 1) or G.shape[0] < 1:
        raise ValueError(f"Expected `{name}` of shape (K, {M + 1}, {M + 1}) for phase dimension "
                         f"{M}, got {np.shape(generators)}.")
    if not np.all(np.isfinite(G)):
        raise ValueError(f"Expected finite `{name}`.")
    scale = max(float(np.max(np.abs(G))), 1e-300)
    J = np.block([[np.zeros((M // 2, M // 2)), np.eye(M // 2)],
                  [-np.eye(M // 2), np.zeros((M // 2, M // 2))]])
    A = -np.einsum("ij,kjl->kil", J, G[:, :M, :M])  # A = J⁻¹ (JA), J⁻¹ = −J
    if (np.max(np.abs(G[:, M, :])) > 1e-12 * scale
            or np.max(np.abs(A - np.swapaxes(A, 1, 2))) > 1e-8 * scale):
        raise ValueError(f"Expected `{name}` of quadratic observables [[JA, Jb], [0, 0]] with A "
                         f"symmetric (geometry.generator_from_quadratic).")
    return G


def check_hamiltonian(H, phase_dim: int, *, name: str = "H") -> None:
    """``H`` maps one point ``(M,)`` to a scalar (checked with ``jax.eval_shape``)."""
    if not callable(H):
        raise ValueError(f"Expected `{name}` to be callable H(x) -> scalar, got "
                         f"{type(H).__name__}.")
    with _x64():
        try:
            out = jax.eval_shape(H, jax.ShapeDtypeStruct((phase_dim,), jnp.float64))
        except Exception as err:  # the user's callable failed on a point
            raise ValueError(f"`{name}` failed on a point of shape ({phase_dim},): {err}") from err
    if getattr(out, "shape", None) != ():
        raise ValueError(f"Expected `{name}` to return a scalar for one point x of shape "
                         f"({phase_dim},), got {getattr(out, 'shape', type(out).__name__)}.")


def _flows(G: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``J∇C_k(x_i) = (G_k x̃_i)_{:M}``: ``(N, K, M)`` for ``G (K, M+1, M+1)``, ``x (N, M)``."""
    M = x.shape[1]
    return np.einsum("kij,nj->nki", G[:, :M, :M], x) + G[None, :, :M, M]


def _gradients(H: Callable, x: np.ndarray) -> np.ndarray:
    with _x64():
        g = jax.jit(jax.vmap(jax.grad(H)))(jnp.asarray(x, jnp.float64))
        return np.asarray(g, dtype=np.float64)


def lie_derivatives(H: Callable[[jax.Array], jax.Array], points, generators) -> np.ndarray:
    """``B[i, k] = {H, C_k}(x_i) = ∇H(x_i) · (G_k x̃_i)_{:M}`` (seed 000; module docstring).

    ``H``: scalar function of one point ``(M,)`` (differentiated in float64 with ``jax.grad``);
    ``points (N, M)``; ``generators (K, M+1, M+1)`` or a system. Returns ``(N, K)`` float64.
    """
    x = check_points(points)
    G = check_generators(generators, x.shape[1])
    check_hamiltonian(H, x.shape[1])
    return np.einsum("nm,nkm->nk", _gradients(H, x), _flows(G, x))


def basis_lie_derivatives(basis, points, generators) -> np.ndarray:
    """``T[i, k, j] = {φ_j, C_k}(x_i)`` for a feature basis ``φ`` (``(N, K, F)`` float64).

    ``{H_w, C_k}(x_i) = Σ_j T[i, k, j] w_j`` exactly, since ``H_w = Σ_j w_j φ_j`` (seed 000).
    """
    x = check_points(points, basis.phase_dim)
    G = check_generators(generators, basis.phase_dim)
    with _x64():
        jac = np.asarray(basis.jacobian(jnp.asarray(x, jnp.float64)), dtype=np.float64)
    return np.einsum("nfm,nkm->nkf", jac, _flows(G, x))
