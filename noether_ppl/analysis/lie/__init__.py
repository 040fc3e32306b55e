"""The Lie-derivative toolkit (seed 000; DESIGN "Lie-derivative toolkit"): an orthonormal basis
of quadratic observables, Lie derivatives ``{H, C}``, and the three tasks: discover conserved
quantities of any Hamiltonian, enforce known symmetries on basis-function models, promote
symmetry with a nuclear-norm penalty."""

from .derivative import basis_lie_derivatives, lie_derivatives
from .discover import DEFAULT_DISCOVER_THRESHOLD, Discovery, discover, spectral_gaps
from .enforce import enforce, invariant_subspace
from .promote import ADMMState, PromotionReport, promote
from .quadratic import QuadraticBasis, quadratic_basis

__all__ = [
    "QuadraticBasis",
    "quadratic_basis",
    "lie_derivatives",
    "basis_lie_derivatives",
    "Discovery",
    "discover",
    "spectral_gaps",
    "DEFAULT_DISCOVER_THRESHOLD",
    "invariant_subspace",
    "enforce",
    "ADMMState",
    "PromotionReport",
    "promote",
]
