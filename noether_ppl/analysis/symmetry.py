"""Which symmetry was learned: SVD of the stacked generators and parallelness (Sec. 5.1).

Stack the K learned generators into ``Ĝ ∈ R^{K × (M+1)²}`` and take its SVD. The number of
clearly non-zero singular values is the dimension of the learned symmetry algebra; for each of
the top right singular vectors ``v_i``, *parallelness* ``‖P v_i‖`` (``P`` the orthogonal
projector onto the span of reference generators, e.g. the ground truth of App. B) is 1 when the
direction lies in the reference span and 0 when it is orthogonal to it.

Single singular vectors depend on the basis in which the learned span happens to be found; the
cosines of the principal angles between the learned span and the reference span
(``subspace_cosines``) do not, and neither does ``Σ_i ‖P v_i‖²``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..geometry import check_quadratic_generators, span_basis

__all__ = [
    "DEFAULT_THRESHOLD",
    "SymmetryReport",
    "symmetry_report",
    "parallelness",
    "subspace_cosines",
    "describe_generator",
    "describe_quadratic",
    "coordinate_names",
]

DEFAULT_THRESHOLD = 0.05
"""A singular value counts as active when ``σ_i > threshold · σ_1``; the paper counts the
3-body system's learned directions with ``λ > 0.05`` (Sec. 5.4, Fig. 5)."""


def _as_stack(generators, name: str) -> np.ndarray:
    G = np.asarray(generators, dtype=np.float64)
    if G.ndim == 2 and G.shape[0] == G.shape[1]:
        G = G[None]
    if G.ndim != 3 or G.shape[1] != G.shape[2]:
        raise ValueError(f"Expected `{name}` of shape (L, M+1, M+1), got {np.shape(generators)}.")
    if (G.shape[1] - 1) % 2 or G.shape[1] < 3:
        raise ValueError(f"Expected `{name}` on homogeneous coordinates: (M+1)×(M+1) with M even "
                         f"and positive, got {G.shape[1]}×{G.shape[2]}.")
    if not np.all(np.isfinite(G)):
        raise ValueError(f"Expected finite values in `{name}`.")
    return G


def coordinate_names(system_or_phase_dim) -> list[str]:
    """Names of the phase-space coordinates ``x = (q, p)``: ``q_0 … q_{d-1}, p_0 … p_{d-1}``;
    for an n-body system (App. B.3, body-major) ``q_0x, q_0y, …, p_0x, …``."""
    sys = system_or_phase_dim
    if hasattr(sys, "n_bodies") and hasattr(sys, "dim"):
        axes = "xyz" if sys.dim <= 3 else [str(d) for d in range(sys.dim)]
        q = [f"q_{i}{axes[d]}" for i in range(sys.n_bodies) for d in range(sys.dim)]
        return q + ["p" + n[1:] for n in q]
    M = getattr(sys, "phase_dim", sys)
    if isinstance(M, bool) or not isinstance(M, (int, np.integer)) or M < 2 or M % 2:
        raise ValueError(f"Expected a system or an even phase dimension M >= 2, got {sys!r}.")
    d = int(M) // 2
    return [f"q_{i}" for i in range(d)] + [f"p_{i}" for i in range(d)]


def parallelness(directions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``‖P v_i‖`` (Sec. 5.1) for ``directions (r, D)`` (normalised here) and reference
    generators ``(L, M+1, M+1)``; ``P`` projects onto the reference span."""
    basis = span_basis(reference)
    v = np.asarray(directions, dtype=np.float64)
    v = v.reshape(v.shape[0], -1)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.linalg.norm(v @ basis.T, axis=-1)


def subspace_cosines(directions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between ``span(directions)`` and the reference span,
    descending (``min(r, L)`` values): independent of the basis chosen for either span."""
    v = np.asarray(directions, dtype=np.float64)
    v = v.reshape(v.shape[0], -1)
    if v.shape[0] == 0:
        return np.zeros(0)
    _, sv, vt = np.linalg.svd(v, full_matrices=False)
    q = vt[sv > 1e-8 * sv[0]] if sv.size and sv[0] > 0 else vt[:0]  # orthonormal learned span
    basis = span_basis(reference)
    if q.shape[0] == 0 or basis.shape[0] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(q @ basis.T, compute_uv=False), 0.0, 1.0)


def _format_terms(coef: np.ndarray, labels: Sequence[str], min_weight: float,
                  max_terms: int) -> str:
    order = np.argsort(-np.abs(coef), kind="stable")
    top = np.abs(coef[order[0]])
    kept = [j for j in order if np.abs(coef[j]) >= min_weight * top]
    terms = [f"{'-' if coef[j] < 0 else '+'} {abs(coef[j]):.2f} {labels[j]}"
             for j in kept[:max_terms]]
    if len(kept) > max_terms:
        terms.append(f"+ … ({len(kept) - max_terms} more)")
    text = " ".join(terms)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def describe_generator(
    direction: np.ndarray, reference: np.ndarray, names: Sequence[str], min_weight: float = 0.1,
    max_terms: int = 6,
) -> str:
    """Name a direction in reference coordinates, e.g. ``"≈ 0.71 R_01 + 0.70 H_0"``.

    Least-squares coefficients of the unit direction on the (normalised) reference generators;
    terms below ``min_weight`` of the largest are left out (at most ``max_terms`` are shown),
    and a residual outside the reference span above 0.05 is stated.
    """
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape[0] == 0:  # an empty reference: a system with no conserved quadratic
        return "outside the reference span"
    ref = ref.reshape(ref.shape[0], -1)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    v = np.asarray(direction, dtype=np.float64).reshape(-1)
    v = v / np.linalg.norm(v)
    coef, *_ = np.linalg.lstsq(ref.T, v, rcond=None)
    if np.max(np.abs(coef)) < 1e-12:
        return "outside the reference span"
    # Fix the overall sign so that the largest coefficient is positive (v and -v are one direction).
    if coef[np.argmax(np.abs(coef))] < 0:
        coef, v = -coef, -v
    resid = np.linalg.norm(v - ref.T @ coef)
    text = "≈ " + _format_terms(coef, list(names), min_weight, max_terms)
    if resid > 0.05:
        text += f"  (+ {resid:.2f} outside the reference span)"
    return text


def describe_quadratic(direction: np.ndarray, coord_names: Sequence[str] | None = None,
                       min_weight: float = 0.1, max_terms: int = 8) -> str:
    """Name a generator by its conserved quantity ``C(x) = ½ xᵀAx + bᵀx`` in phase-space
    coordinates (Sec. 3.1; ``A = -J G[:M, :M]``, ``b = -J G[:M, M]`` from Eq. 4), scaled so the
    largest coefficient is +1, e.g. ``"∝ q_0² + p_0²"``; terms below ``min_weight`` of the
    largest are left out (at most ``max_terms`` are shown)."""
    G = np.asarray(direction, dtype=np.float64)
    M1 = int(round(np.sqrt(G.size)))
    G = G.reshape(M1, M1)
    M = M1 - 1
    names = coordinate_names(M) if coord_names is None else list(coord_names)
    if len(names) != M:
        raise ValueError(f"Expected {M} `coord_names`, got {len(names)}.")
    d = M // 2
    J = np.block([[np.zeros((d, d)), np.eye(d)], [-np.eye(d), np.zeros((d, d))]])
    A = -J @ G[:M, :M]
    A = 0.5 * (A + A.T)
    b = -J @ G[:M, M]
    coef, labels = [], []
    for i in range(M):
        coef.append(0.5 * A[i, i])
        labels.append(f"{names[i]}²")
    for i in range(M):
        for j in range(i + 1, M):
            coef.append(A[i, j])
            labels.append(f"{names[i]}·{names[j]}")
    for i in range(M):
        coef.append(b[i])
        labels.append(names[i])
    coef = np.asarray(coef)
    scale = np.max(np.abs(coef))
    if scale == 0:
        return "0"
    coef = coef / coef[np.argmax(np.abs(coef))]
    text = _format_terms(coef, labels, min_weight, max_terms)
    return "∝ " + text.replace("1.00 ", "")


@dataclasses.dataclass(frozen=True)
class SymmetryReport:
    """SVD analysis of a stack of generators (Sec. 5.1).

    Attributes
    ----------
    singular_values : ``(K,)`` singular values of the flattened stack, descending.
    threshold : relative threshold; ``dimension = #{σ_i > threshold · σ_1}``.
    dimension : effective dimension of the learned symmetry algebra.
    directions : ``(K, M+1, M+1)`` all right singular vectors as generators (the first
        ``dimension`` are the active ones).
    parallelness : ``(dimension,)`` ``‖P v_i‖`` of the active directions against the
        reference span, or None.
    all_parallelness : ``(K,)`` the same for every direction (inactive ones included), or None.
    subspace_cosines : cosines of the principal angles between the active learned span and the
        reference span (basis-independent), or None.
    reference_dimension : dimension of the reference span, or None.
    descriptions : each active direction named in reference coordinates, or None.
    quadratic_forms : each active direction's conserved quantity in phase-space coordinates.
    """

    singular_values: np.ndarray
    threshold: float
    dimension: int
    directions: np.ndarray
    parallelness: np.ndarray | None = None
    all_parallelness: np.ndarray | None = None
    subspace_cosines: np.ndarray | None = None
    reference_dimension: int | None = None
    descriptions: list[str] | None = None
    quadratic_forms: list[str] | None = None

    @property
    def normalized_singular_values(self) -> np.ndarray:
        s = self.singular_values
        return s / s[0] if s.size and s[0] > 0 else s

    @property
    def active_directions(self) -> np.ndarray:
        return self.directions[: self.dimension]

    def matches_reference(self, min_parallelness: float = 0.99) -> bool:
        """Correct discovery (Sec. 5.1): as many active directions as the reference span has,
        each with parallelness above ``min_parallelness`` (paper: 0.99 for the oscillators,
        0.95 for the 3-body system)."""
        if self.parallelness is None:
            raise ValueError("This report has no reference to compare with.")
        return (self.dimension == self.reference_dimension
                and bool(np.all(self.parallelness > min_parallelness)))

    def to_dict(self) -> dict:
        def lst(a):
            return None if a is None else np.asarray(a).tolist()

        return {
            "singular_values": lst(self.singular_values),
            "normalized_singular_values": lst(self.normalized_singular_values),
            "threshold": self.threshold,
            "dimension": self.dimension,
            "parallelness": lst(self.parallelness),
            "all_parallelness": lst(self.all_parallelness),
            "subspace_cosines": lst(self.subspace_cosines),
            "reference_dimension": self.reference_dimension,
            "descriptions": self.descriptions,
            "quadratic_forms": self.quadratic_forms,
        }

    def __str__(self) -> str:
        s = self.normalized_singular_values
        head = (f"Learned symmetry: dimension {self.dimension} of {len(s)} "
                f"(active: sigma_i > {self.threshold:g} x sigma_1)")
        if self.reference_dimension is not None:
            head += f"; reference span dimension {self.reference_dimension}"
        lines = [head]
        if self.subspace_cosines is not None:
            cos = self.subspace_cosines
            lines.append(
                "Principal-angle cosines, learned vs reference span: "
                + (" ".join(f"{c:.3f}" for c in cos) if cos.size else "-")
            )
        name_col = "conserved quantity" if self.descriptions is None else \
            "conserved quantity (reference generators, normalised)"
        lines.append(f"  i   sigma_i/sigma_1   parallelness   {name_col}")
        for i in range(len(s)):
            active = i < self.dimension
            if self.all_parallelness is not None:
                par = f"{self.all_parallelness[i]:.4f}"
            else:
                par = "-"
            if not active:
                desc = "(inactive)"
            elif self.descriptions is not None:
                desc = self.descriptions[i]
            else:
                desc = self.quadratic_forms[i] if self.quadratic_forms else ""
            lines.append(f"{i:3d}   {s[i]:15.4g}   {par:>12}   {desc}")
        if self.parallelness is not None:
            verdict = "yes" if self.matches_reference(0.99) else (
                "yes at 0.95" if self.matches_reference(0.95) else "no")
            lines.append(f"Matches the reference (dimension equal, parallelness > 0.99): {verdict}")
        return "\n".join(lines)


def reference_from(reference, names):
    if reference is None:
        return None, None
    if hasattr(reference, "generators") and callable(reference.generators):
        ref = _as_stack(reference.generators(), "reference")
        if names is None and hasattr(reference, "generator_names"):
            names = list(reference.generator_names())
    else:
        ref = _as_stack(reference, "reference")
    return check_quadratic_generators(ref, name="reference"), names


def symmetry_report(
    generators,
    reference=None,
    *,
    names: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    dimension: int | None = None,
    coord_names: Sequence[str] | None = None,
) -> SymmetryReport:
    """SVD of learned generators with parallelness against a reference span (Sec. 5.1).

    Parameters
    ----------
    generators : a stack ``(K, M+1, M+1)``, or a fit result (anything with ``.generators()``).
    reference : ground-truth or user generators ``(L, M+1, M+1)``, or a system with
        ``.generators()`` (and ``.generator_names()`` for naming; App. B).
    names : names of the reference generators (default: the system's, or ``G_0, G_1, …``).
    threshold : relative singular-value threshold for the effective dimension
        (``0 < threshold < 1``; default :data:`DEFAULT_THRESHOLD`).
    dimension : use this effective dimension (e.g. the known one) instead of the threshold.
    coord_names : phase-space coordinate names for ``quadratic_forms`` (default: the
        reference system's, see :func:`coordinate_names`, else ``q_i``, ``p_i``).
    """
    if hasattr(generators, "generators") and callable(generators.generators):
        generators = generators.generators()
    G = _as_stack(generators, "generators")
    if isinstance(threshold, bool) or not (isinstance(threshold, (int, float, np.floating))
                                           and 0 < threshold < 1):
        raise ValueError(f"Expected 0 < `threshold` < 1, got {threshold!r}.")
    if G.shape[0] == 0:
        raise ValueError(
            "`generators` is empty: a model with K = 0 (the plain HNN) learns no symmetry. "
            "The conserved quadratic quantities of its fitted Hamiltonian are found by "
            "analysis.discover(result, points, key=key, dimension='gap') (or `noether-ppl "
            "discover RUN_FOLDER`); inference.select_conserved chooses them for a razor fit.")
    flat = G.reshape(G.shape[0], -1)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    if dimension is None:
        dim = int(np.sum(s > threshold * s[0])) if s[0] > 0 else 0
    else:
        if isinstance(dimension, bool) or not (isinstance(dimension, (int, np.integer))
                                               and 0 <= dimension <= len(s)):
            raise ValueError(f"Expected 0 <= `dimension` <= {len(s)}, got {dimension!r}.")
        dim = int(dimension)
    M1 = G.shape[1]
    directions = vt.reshape(-1, M1, M1)
    if coord_names is None:
        coord_names = (coordinate_names(reference) if hasattr(reference, "phase_dim")
                       else coordinate_names(M1 - 1))
    elif len(coord_names) != M1 - 1:
        raise ValueError(f"Expected {M1 - 1} `coord_names`, got {len(coord_names)}.")
    forms = [describe_quadratic(directions[i], coord_names) for i in range(dim)]
    ref, names = reference_from(reference, names)
    par = par_all = cos = ref_dim = desc = None
    if ref is not None:
        if ref.shape[1] != M1:
            raise ValueError(
                f"`reference` generators are {ref.shape[1]}x{ref.shape[1]} but the learned ones "
                f"are {M1}x{M1}."
            )
        names = list(names) if names is not None else [f"G_{j}" for j in range(ref.shape[0])]
        if len(names) != ref.shape[0]:
            raise ValueError(f"Expected {ref.shape[0]} `names`, got {len(names)}.")
        par_all = parallelness(vt, ref)
        par = par_all[:dim]
        cos = subspace_cosines(vt[:dim], ref)
        ref_dim = int(span_basis(ref).shape[0])
        desc = [describe_generator(directions[i], ref, names) for i in range(dim)]
    return SymmetryReport(s, float(threshold), dim, directions, par, par_all, cos, ref_dim, desc,
                          forms)
