"""Which symmetry was learned: SVD of the stacked generators and parallelness (Sec. 5.1).

Stack the K learned generators into ``Ĝ ∈ R^{K × (M+1)²}`` and take its SVD. The number of
clearly non-zero singular values is the dimension of the learned symmetry algebra; for each of
the top right singular vectors ``v_i``, *parallelness* ``‖P v_i‖`` (``P`` the orthogonal
projector onto the span of reference generators, e.g. the ground truth of App. B) is 1 when the
direction lies in the reference span and 0 when it is orthogonal to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..geometry import span_basis

__all__ = ["SymmetryReport", "symmetry_report", "parallelness", "describe_generator"]

DEFAULT_THRESHOLD = 0.1
"""Singular values above ``threshold · σ_max`` count as active directions (stated in reports)."""


def _as_stack(generators, name: str) -> np.ndarray:
    G = np.asarray(generators, dtype=np.float64)
    if G.ndim == 2 and G.shape[0] == G.shape[1]:
        G = G[None]
    if G.ndim != 3 or G.shape[1] != G.shape[2]:
        raise ValueError(f"Expected `{name}` of shape (L, M+1, M+1), got {np.shape(generators)}.")
    if (G.shape[1] - 1) % 2:
        raise ValueError(f"Expected `{name}` on homogeneous coordinates: (M+1)×(M+1) with M even.")
    if not np.all(np.isfinite(G)):
        raise ValueError(f"Expected finite values in `{name}`.")
    return G


def parallelness(directions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``‖P v_i‖`` for unit ``directions (r, D)`` and reference generators ``(L, M+1, M+1)``."""
    basis = span_basis(reference)
    v = np.asarray(directions, dtype=np.float64)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.linalg.norm(v @ basis.T, axis=-1)


def describe_generator(
    direction: np.ndarray, reference: np.ndarray, names: Sequence[str], min_weight: float = 0.1
) -> str:
    """Name a direction in reference coordinates, e.g. ``"≈ 0.71 R_01 + 0.70 H_0"``.

    Least-squares coefficients on the (normalised) reference generators; terms below
    ``min_weight`` of the largest are left out, and the residual outside the span is stated.
    """
    ref = reference.reshape(reference.shape[0], -1)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    v = direction.reshape(-1) / np.linalg.norm(direction)
    coef, *_ = np.linalg.lstsq(ref.T, v, rcond=None)
    # Fix the overall sign so that the largest coefficient is positive (v and -v are one direction).
    if coef[np.argmax(np.abs(coef))] < 0:
        coef, v = -coef, -v
    resid = np.linalg.norm(v - ref.T @ coef)
    order = np.argsort(-np.abs(coef))
    top = np.abs(coef[order[0]])
    terms = []
    for j in order:
        if np.abs(coef[j]) < min_weight * top:
            break
        sign = "-" if coef[j] < 0 else "+"
        terms.append(f"{sign} {abs(coef[j]):.2f} {names[j]}")
    text = " ".join(terms).lstrip("+ ").strip()
    if text.startswith("- "):
        text = "-" + text[2:]
    if resid > 0.05:
        text += f"  (+ {resid:.2f} outside the reference span)"
    return "≈ " + text


@dataclasses.dataclass(frozen=True)
class SymmetryReport:
    """SVD analysis of a stack of generators (Sec. 5.1).

    Attributes
    ----------
    singular_values : ``(K,)`` singular values of the flattened stack, descending.
    threshold : relative threshold; ``dimension = #{σ_i > threshold · σ_max}``.
    dimension : effective dimension of the learned symmetry algebra.
    directions : ``(dimension, M+1, M+1)`` top right singular vectors as generators.
    parallelness : ``(dimension,)`` ``‖P v_i‖`` against the reference span, or None.
    reference_dimension : dimension of the reference span, or None.
    descriptions : each direction named in reference coordinates, or None.
    """

    singular_values: np.ndarray
    threshold: float
    dimension: int
    directions: np.ndarray
    parallelness: np.ndarray | None = None
    reference_dimension: int | None = None
    descriptions: list[str] | None = None

    @property
    def normalized_singular_values(self) -> np.ndarray:
        s = self.singular_values
        return s / s[0] if s.size and s[0] > 0 else s

    def matches_reference(self, min_parallelness: float = 0.99) -> bool:
        """Correct discovery (Sec. 5.1): as many active directions as the reference span has,
        each with parallelness above ``min_parallelness``."""
        if self.parallelness is None:
            raise ValueError("This report has no reference to compare with.")
        return (self.dimension == self.reference_dimension
                and bool(np.all(self.parallelness > min_parallelness)))

    def to_dict(self) -> dict:
        return {
            "singular_values": self.singular_values.tolist(),
            "threshold": self.threshold,
            "dimension": self.dimension,
            "parallelness": None if self.parallelness is None else self.parallelness.tolist(),
            "reference_dimension": self.reference_dimension,
            "descriptions": self.descriptions,
        }

    def __str__(self) -> str:
        s = self.normalized_singular_values
        lines = [
            f"Learned symmetry: dimension {self.dimension} "
            f"(singular values > {self.threshold:g} x largest)"
            + (f", reference span dimension {self.reference_dimension}"
               if self.reference_dimension is not None else ""),
            "  i   sigma_i/sigma_1   parallelness   conserved quantity",
        ]
        for i in range(len(s)):
            par = (f"{self.parallelness[i]:.4f}" if self.parallelness is not None
                   and i < self.dimension else "-")
            desc = (self.descriptions[i] if self.descriptions is not None
                    and i < self.dimension else "")
            active = "" if i < self.dimension else "  (inactive)"
            lines.append(f"{i:3d}   {s[i]:15.4g}   {par:>12}   {desc}{active}")
        return "\n".join(lines)


def _reference_from(reference, names):
    if reference is None:
        return None, None
    if hasattr(reference, "generators") and callable(reference.generators):
        ref = np.asarray(reference.generators(), dtype=np.float64)
        if names is None and hasattr(reference, "generator_names"):
            names = list(reference.generator_names())
        return ref, names
    return _as_stack(reference, "reference"), names


def symmetry_report(
    generators,
    reference=None,
    *,
    names: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    dimension: int | None = None,
) -> SymmetryReport:
    """SVD of learned generators with parallelness against a reference span (Sec. 5.1).

    Parameters
    ----------
    generators : a stack ``(K, M+1, M+1)``, or a fit result (anything with ``.generators()``).
    reference : ground-truth or user generators ``(L, M+1, M+1)``, or a system with
        ``.generators()`` (and ``.generator_names()`` for naming).
    names : names of the reference generators (default: the system's, or ``G_0, G_1, …``).
    threshold : relative singular-value threshold for the effective dimension.
    dimension : override the effective dimension (e.g. the known one) instead of thresholding.
    """
    if hasattr(generators, "generators") and callable(generators.generators):
        generators = generators.generators()
    G = _as_stack(generators, "generators")
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 1):
        raise ValueError(f"Expected 0 < `threshold` < 1, got {threshold!r}.")
    flat = G.reshape(G.shape[0], -1)
    if flat.shape[0] == 0:
        raise ValueError("`generators` is empty: a model with K = 0 learns no symmetry.")
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    if dimension is None:
        dim = int(np.sum(s > threshold * s[0])) if s[0] > 0 else 0
    else:
        if not (isinstance(dimension, int) and 0 <= dimension <= len(s)):
            raise ValueError(f"Expected 0 <= `dimension` <= {len(s)}, got {dimension!r}.")
        dim = dimension
    M1 = G.shape[1]
    directions = vt[:dim].reshape(dim, M1, M1)
    ref, names = _reference_from(reference, names)
    par = ref_dim = desc = None
    if ref is not None:
        if ref.shape[1] != M1:
            raise ValueError(
                f"`reference` generators are {ref.shape[1]}x{ref.shape[1]} but the learned ones "
                f"are {M1}x{M1}."
            )
        names = list(names) if names is not None else [f"G_{j}" for j in range(ref.shape[0])]
        if len(names) != ref.shape[0]:
            raise ValueError(f"Expected {ref.shape[0]} `names`, got {len(names)}.")
        par = parallelness(vt[:dim], ref)
        ref_dim = int(span_basis(ref).shape[0])
        desc = [describe_generator(directions[i], ref, names) for i in range(dim)]
    return SymmetryReport(s, float(threshold), dim, directions, par, ref_dim, desc)
