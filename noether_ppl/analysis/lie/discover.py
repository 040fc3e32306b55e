"""discover: the conserved quadratic quantities of any Hamiltonian as a numerical nullspace
(seed 000, "discovering symmetry"; DESIGN "Lie-derivative toolkit").

For sample points ``x_i`` (``i < N``) and the orthonormal quadratic basis ``C_k`` (``k < P``),
``B[i, k] = {H, C_k}(x_i) / √N``. A quadratic ``C = Σ_k c_k C_k`` is conserved by ``H`` at the
points iff ``B c = 0``; the singular values of ``B`` are root-mean-square Lie derivatives of ``H``
along unit-norm ``C``. The conserved quantities are the right singular vectors whose singular
value falls under the threshold rule (``dimension="gap"``: at the spectrum's largest ratio
between neighbouring singular values, for fitted Hamiltonians whose conserved directions are
small rather than zero). One SVD, no training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from ...geometry import span_basis
from ..symmetry import describe_generator, parallelness, reference_from
from .derivative import check_hamiltonian, check_points, lie_derivatives
from .quadratic import QuadraticBasis, quadratic_basis

__all__ = ["Discovery", "discover", "spectral_gaps", "DEFAULT_DISCOVER_THRESHOLD",
           "GAP_MIN_RATIO"]

DEFAULT_DISCOVER_THRESHOLD = 1e-6
"""Default rule: ``C`` is conserved when its singular value is ``<= 1e-6 · σ_max`` (suits
Hamiltonians known in closed form; for fitted models read the spectrum and set ``threshold``
or ``dimension``, or use ``dimension="gap"``)."""

GAP_MIN_RATIO = 10.0
"""With ``dimension="gap"``, a largest ratio between neighbouring singular values below this is
no clear gap: the discovery then says the dimension is not identified (``identified=False``)."""

GAP_FLOOR = 1e-12
"""Singular values below ``GAP_FLOOR · σ_max`` count as zero (round-off) in the gap rule, so that
ratios between two round-off values are not read as gaps."""


def spectral_gaps(singular_values, top: int | None = None) -> list[tuple[int, float]]:
    """Gaps of a descending spectrum ``σ_1 >= … >= σ_P`` as ``(K, σ_{P-K} / σ_{P-K+1})``: the
    ratio between the ``K``-th smallest singular value and the next larger one, for
    ``K = 1 … P-1``, largest ratio first (``top``: only the first ``top``). Values below
    ``GAP_FLOOR · σ_1`` are raised to it first, so an exact nullspace of dimension ``K`` shows
    one gap of ``σ_{P-K}/(GAP_FLOOR · σ_1)`` and none inside it."""
    s = np.asarray(singular_values, dtype=np.float64)
    if s.ndim != 1 or s.size < 2 or not np.all(np.isfinite(s)) or np.any(s < 0) or np.any(
            np.diff(s) > 0):
        raise ValueError("Expected `singular_values` to be a descending 1-D array of at least "
                         f"two finite non-negative values, got {s!r}.")
    if s[0] == 0:
        return []
    s = np.maximum(s, GAP_FLOOR * s[0])
    P = s.size
    ratios = s[:-1] / s[1:]  # ratios[j] = σ_{j+1} / σ_{j+2} (1-based): K = P - 1 - j
    gaps = [(P - 1 - j, float(ratios[j])) for j in range(P - 1)]
    gaps.sort(key=lambda g: (-g[1], g[0]))
    return gaps if top is None else gaps[:top]


@dataclasses.dataclass(frozen=True, eq=False)
class Discovery:
    """The result of :func:`discover`.

    Attributes
    ----------
    singular_values : ``(P,)`` singular values of ``B`` (RMS Lie derivatives), descending.
    rule : the threshold rule in words, e.g. ``"sigma <= 1e-06 x sigma_max"``.
    threshold : relative threshold of the rule, or None when ``dimension`` was given.
    dimension : ``K``, the number of conserved quadratic quantities found.
    coefficients : ``(K, P)`` orthonormal rows in ``basis``, most conserved first.
    generators : ``(K, M+1, M+1)`` their generators (orthonormal in Frobenius norm).
    conserved_singular_values : ``(K,)`` the singular values of those directions (ascending).
    basis : the :class:`QuadraticBasis`.
    n_points : ``N``.
    parallelness : ``(K,)`` ``‖P v_i‖`` against the reference span (as in
        :func:`~noether_ppl.analysis.symmetry_report`), or None.
    reference_dimension : dimension of the reference span, or None.
    descriptions : each direction in reference coordinates, or None.
    identified : False when the gap rule found no clear gap (largest ratio below
        :data:`GAP_MIN_RATIO`): ``dimension`` is then the position of the largest gap, not a
        finding.
    """

    singular_values: np.ndarray
    rule: str
    threshold: float | None
    dimension: int
    coefficients: np.ndarray
    generators: np.ndarray
    conserved_singular_values: np.ndarray
    basis: QuadraticBasis
    n_points: int
    parallelness: np.ndarray | None = None
    reference_dimension: int | None = None
    descriptions: list[str] | None = None
    identified: bool = True

    @property
    def normalized_singular_values(self) -> np.ndarray:
        s = self.singular_values
        return s / s[0] if s.size and s[0] > 0 else s

    def matches_reference(self, min_parallelness: float = 0.99) -> bool:
        """As many conserved directions as the reference span has, each with parallelness
        above ``min_parallelness`` (then the two spans coincide)."""
        if self.parallelness is None:
            raise ValueError("This discovery has no reference to compare with.")
        return (self.dimension == self.reference_dimension
                and bool(np.all(self.parallelness > min_parallelness)))

    def conserved_quantities(self, x) -> np.ndarray:
        """Values of the discovered ``C_k(x)`` for ``x (..., M)``: ``(..., K)``."""
        return self.basis.observables(x) @ self.coefficients.T

    def gaps(self, top: int | None = 3) -> list[tuple[int, float]]:
        """The spectrum's largest gaps ``(K, σ ratio)`` (:func:`spectral_gaps`)."""
        return spectral_gaps(self.singular_values, top)

    def to_dict(self) -> dict:
        return {
            "singular_values": self.singular_values.tolist(),
            "rule": self.rule,
            "threshold": self.threshold,
            "dimension": self.dimension,
            "n_points": self.n_points,
            "parallelness": None if self.parallelness is None else self.parallelness.tolist(),
            "reference_dimension": self.reference_dimension,
            "descriptions": self.descriptions,
            "identified": self.identified,
            "gaps": [list(g) for g in self.gaps()],
        }

    def __str__(self) -> str:
        s = self.normalized_singular_values
        P, K = s.size, self.dimension
        head = (f"Discovered {K} conserved quadratic quantities ({self.rule}; "
                f"{self.n_points} points, {P} basis observables)")
        if self.reference_dimension is not None:
            head += f", reference span dimension {self.reference_dimension}"
        if not self.identified:
            head += (f"\n  DIMENSION NOT IDENTIFIED: the largest gap is below x{GAP_MIN_RATIO:g}; "
                     "read the spectrum, or fit longer / on more data")
        lines = [head, "  k   sigma_k/sigma_max   parallelness   conserved quantity"]
        for i in range(K):  # most conserved first
            par = "-" if self.parallelness is None else f"{self.parallelness[i]:.4f}"
            desc = "" if self.descriptions is None else self.descriptions[i]
            lines.append(f"{i:3d}   {s[P - 1 - i]:17.3e}   {par:>12}   {desc}")
        broken = s[: P - K]
        if broken.size:
            lines.append(f"  not conserved: {broken.size} directions, sigma/sigma_max from "
                         f"{broken[-1]:.3e} to {broken[0]:.3e}")
        gaps = self.gaps()
        if gaps:
            lines.append("  largest gaps: " + ", ".join(
                f"x{r:.3g} above the {k} smallest" for k, r in gaps))
        return "\n".join(lines)


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or not (
        0 < threshold < 1
    ):
        raise ValueError(f"Expected 0 < `threshold` < 1 (relative to sigma_max), got "
                         f"{threshold!r}.")
    return float(threshold)


def _as_callable(H, key) -> Callable:
    """``H`` itself, or for a fit result (anything with ``.hamiltonian(x, key=...)`` and
    ``.model``) its fitted Ĥ at one point, with posterior-mean weights and one set of group
    elements from ``key``."""
    if hasattr(H, "hamiltonian") and hasattr(H, "model"):
        if key is None:
            raise ValueError("`H` is a fit result: pass `key=` (a JAX PRNG key) for the symmetry "
                             "samples of its Hamiltonian.")
        weights = H.weights_mean()
        Phis = H.group_elements(key)
        model = H.model
        return lambda x: model.hamiltonian(weights, Phis, x.astype(model.dtype))
    if key is not None:
        raise ValueError("`key` is only for a fit result `H`; got a callable.")
    return H


def discover(
    H,
    points,
    *,
    key=None,
    threshold: float = DEFAULT_DISCOVER_THRESHOLD,
    dimension: int | str | None = None,
    reference=None,
    names: Sequence[str] | None = None,
) -> Discovery:
    """Conserved quadratic quantities of ``H`` at ``points`` (seed 000; module docstring).

    Parameters
    ----------
    H : ``H(x)`` of one point ``x (M,)`` returning a scalar, JAX-differentiable (a formula,
        ``system.hamiltonian``, ``basis_fit.hamiltonian``), or a Noether's-razor/HNN fit
        result, whose fitted Ĥ is taken with posterior-mean weights.
    key : for a fit result only: the PRNG key of the symmetry samples of its Ĥ.
    points : ``(N, M)`` finite sample points, ``N >= P = M(M+1)/2 + M`` (fewer would leave
        spurious null directions).
    threshold : relative rule ``σ_k <= threshold · σ_max`` ⇒ conserved.
    dimension : instead of the threshold: take the ``dimension`` smallest singular values, or
        ``"gap"``: as many as lie below the spectrum's largest gap (:func:`spectral_gaps`).
    reference : generators ``(L, M+1, M+1)`` or a system, for parallelness (Sec. 5.1).
    names : names of the reference generators (default: the system's).
    """
    x = check_points(points)
    N, M = x.shape
    basis = quadratic_basis(M)
    P = basis.size
    if N < P:
        raise ValueError(f"Expected `points` to hold at least P = {P} points (the number of "
                         f"quadratic observables on R^{M}), got {N}.")
    if dimension is None:
        threshold = _check_threshold(threshold)
    elif isinstance(dimension, str):
        if dimension != "gap":
            raise ValueError(f"Expected `dimension` to be an integer or 'gap', got "
                             f"{dimension!r}.")
    elif isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or not (
        0 <= dimension <= P
    ):
        raise ValueError(f"Expected 0 <= `dimension` <= {P}, got {dimension!r}.")
    ref, ref_names = reference_from(reference, names)
    if ref is not None and ref.shape[1] != M + 1:
        raise ValueError(f"Expected `reference` generators of shape (L, {M + 1}, {M + 1}), got "
                         f"{ref.shape}.")
    H = _as_callable(H, key)
    check_hamiltonian(H, M)

    B = lie_derivatives(H, x, basis.generators) / np.sqrt(N)
    if not np.all(np.isfinite(B)):
        raise ValueError("`H` has non-finite gradients at some of the `points`.")
    _, s, vt = np.linalg.svd(B, full_matrices=False)
    identified = True
    if dimension is None:
        K = int(np.sum(s <= threshold * s[0])) if s[0] > 0 else P
        rule = f"sigma <= {threshold:g} x sigma_max"
    elif dimension == "gap":
        gaps = spectral_gaps(s, 1)
        K, ratio = gaps[0] if gaps else (P, float("inf"))
        threshold = None
        rule = f"largest gap, x{ratio:.3g}"
        identified = ratio >= GAP_MIN_RATIO
    else:
        K = int(dimension)
        threshold = None
        rule = f"dimension = {K} given"
    coef = vt[P - K:][::-1]  # most conserved first
    G = basis.to_generators(coef)
    par = ref_dim = desc = None
    if ref is not None:
        ref_names = (list(ref_names) if ref_names is not None
                     else [f"G_{j}" for j in range(ref.shape[0])])
        par = parallelness(G.reshape(K, -1), ref) if K else np.zeros(0)
        ref_dim = int(span_basis(ref).shape[0])
        desc = [describe_generator(G[i], ref, ref_names) for i in range(K)]
    return Discovery(s, rule, threshold, K, coef, G, s[P - K:][::-1].copy(), basis, N,
                     par, ref_dim, desc, identified)
