"""NumPyro models: Noether's razor (learned, vanilla and fixed-symmetry variants)."""

from .razor import CONSERVED_PARAMS, NoetherRazor
from .spec import ModelSpec

__all__ = ["ModelSpec", "NoetherRazor", "CONSERVED_PARAMS"]
