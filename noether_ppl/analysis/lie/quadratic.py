"""An orthonormal basis of the quadratic observables on ``R^M`` (seed 002 Sec. 3.1; seed 000).

Every ``C(x) = ½ xᵀAx + bᵀx`` (``A`` symmetric) is a combination of ``P = M(M+1)/2 + M`` basis
elements: ``A = E_ii`` (``C = x_i²/2``), ``A = (E_ij + E_ji)/√2`` for ``i < j``
(``C = x_i x_j/√2``) and ``b = e_i`` (``C = x_i``). Their generators ``G = [[JA, Jb], [0, 0]]``
(Eq. 4) are orthonormal in the Frobenius inner product ``⟨G, G'⟩ = tr(GᵀG')``, which equals
``tr(AA') + b·b'`` because ``J`` is orthogonal. It is the inner product in which
:func:`~noether_ppl.analysis.symmetry_report` measures parallelness, so coefficients in this
basis map isometrically onto flattened generators.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...geometry import check_phase_dim
from ...systems.base import quadratic_generators

__all__ = ["QuadraticBasis", "quadratic_basis"]


def _names(M: int) -> list[str]:
    d = M // 2
    return [f"q{i}" for i in range(d)] + [f"p{i}" for i in range(d)]


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class QuadraticBasis:
    """The ``P`` basis observables on ``R^M`` (module docstring), all float64, read-only.

    Attributes: ``phase_dim`` ``M``; ``A`` ``(P, M, M)``; ``b`` ``(P, M)``; ``generators``
    ``(P, M+1, M+1)``; ``names`` (e.g. ``"q0*p1/sqrt2"``).
    """

    phase_dim: int
    A: np.ndarray
    b: np.ndarray
    generators: np.ndarray
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        """``P = M(M+1)/2 + M``."""
        return self.A.shape[0]

    def __repr__(self) -> str:
        return f"QuadraticBasis(phase_dim={self.phase_dim}, size={self.size})"

    def to_generators(self, coefficients) -> np.ndarray:
        """``Σ_k c_k G_k`` for ``coefficients (..., P)``; returns ``(..., M+1, M+1)``."""
        c = np.asarray(coefficients, dtype=np.float64)
        if c.ndim < 1 or c.shape[-1] != self.size:
            raise ValueError(f"Expected `coefficients` of shape (..., {self.size}), got "
                             f"{c.shape}.")
        M1 = self.phase_dim + 1
        return (c @ self.generators.reshape(self.size, -1)).reshape(c.shape[:-1] + (M1, M1))

    def from_generators(self, generators) -> np.ndarray:
        """Coefficients ``(..., P)`` of generators ``(..., M+1, M+1)``: ``c_k = ⟨G_k, G⟩``.

        Raises ``ValueError`` when a generator is not ``[[JA, Jb], [0, 0]]`` with symmetric ``A``
        (it would lie outside the span, and projecting would alter it).
        """
        G = np.asarray(generators, dtype=np.float64)
        M1 = self.phase_dim + 1
        if G.ndim < 2 or G.shape[-2:] != (M1, M1):
            raise ValueError(f"Expected `generators` of shape (..., {M1}, {M1}), got {G.shape}.")
        flat = G.reshape(G.shape[:-2] + (M1 * M1,))
        basis = self.generators.reshape(self.size, -1)
        c = flat @ basis.T
        resid = np.linalg.norm(flat - c @ basis, axis=-1)
        if np.any(resid > 1e-8 * np.maximum(np.linalg.norm(flat, axis=-1), 1e-300)):
            raise ValueError("Expected `generators` of quadratic observables [[JA, Jb], [0, 0]] "
                             "with A symmetric; got matrices outside that space.")
        return c

    def observables(self, x) -> np.ndarray:
        """Values ``C_k(x) = ½ xᵀA_k x + b_kᵀx`` for ``x (..., M)``; returns ``(..., P)``."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1 or x.shape[-1] != self.phase_dim:
            raise ValueError(f"Expected `x` of shape (..., {self.phase_dim}), got {x.shape}.")
        return 0.5 * np.einsum("...i,kij,...j->...k", x, self.A, x) + x @ self.b.T


def quadratic_basis(phase_dim: int) -> QuadraticBasis:
    """The orthonormal quadratic-observable basis on ``R^M`` (module docstring)."""
    M = check_phase_dim(phase_dim)
    coords = _names(M)
    A, b, names = [], [], []
    for i in range(M):
        for j in range(i, M):
            Ak = np.zeros((M, M))
            if i == j:
                Ak[i, i] = 1.0
                names.append(f"{coords[i]}^2/2")
            else:
                Ak[i, j] = Ak[j, i] = 1.0 / math.sqrt(2.0)
                names.append(f"{coords[i]}*{coords[j]}/sqrt2")
            A.append(Ak)
            b.append(np.zeros(M))
    for i in range(M):
        A.append(np.zeros((M, M)))
        bk = np.zeros(M)
        bk[i] = 1.0
        b.append(bk)
        names.append(coords[i])
    A, b = np.stack(A), np.stack(b)
    G = quadratic_generators(A, b)
    for arr in (A, b, G):
        arr.flags.writeable = False
    return QuadraticBasis(M, A, b, G, tuple(names))
