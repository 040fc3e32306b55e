"""NumPyro models: Noether's razor (learned, vanilla and fixed-symmetry variants)."""

from .basis import BasisFit, BasisHamiltonian, FeatureBasis, FunctionBasis, PolynomialBasis
from .conserved_init import conserved_params_from_generators, quadratic_from_generators
from .razor import CONSERVED_PARAMS, NoetherRazor
from .spec import MC_LIKELIHOODS, ModelSpec

__all__ = ["ModelSpec", "MC_LIKELIHOODS", "NoetherRazor", "CONSERVED_PARAMS",
           "conserved_params_from_generators", "quadratic_from_generators"]
# basis-function Hamiltonians (Lie-derivative toolkit)
__all__ += ["BasisHamiltonian", "BasisFit", "FeatureBasis", "PolynomialBasis", "FunctionBasis"]
