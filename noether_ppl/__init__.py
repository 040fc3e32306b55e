"""noether-ppl: learn Hamiltonian dynamics together with the symmetries the data obeys.

Noether's razor (van der Ouderaa, van der Wilk, de Haan, NeurIPS 2024) as NumPyro models, a
matrix-normal guide and SVI, plus the Lie-derivative toolkit (Otto et al., 2023).
"""

from importlib import import_module as _import_module

from . import geometry

__version__ = "0.1.0"

_LAZY = ("systems", "models", "inference", "analysis", "nn", "symmetrize", "integrators",
         "distributions", "runs", "experiments")


def __getattr__(name):
    # Subpackages are imported on first use so `import noether_ppl` stays light.
    if name == "Trajectories":
        from .data import Trajectories

        return Trajectories
    if name in _LAZY:
        module = _import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'noether_ppl' has no attribute {name!r}")


__all__ = ["Trajectories", "geometry", "__version__", *_LAZY]
