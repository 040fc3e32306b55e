"""Hamiltonian systems with known quadratic conserved quantities, and their float64 simulation.

- :mod:`~noether_ppl.systems.base`: :class:`HamiltonianSystem` for any user Hamiltonian
  (ground-truth generators optional; App. C simulation and data splits).
- :mod:`~noether_ppl.systems.paper`: the paper's systems (App. B) — :class:`HarmonicOscillator`,
  :class:`CoupledOscillators`, :class:`NBody` — the registry :data:`PAPER` and
  :func:`build_system` (a system from an experiment file's ``[system]`` table).
- :mod:`~noether_ppl.systems.suite`: further systems with hand-derived conserved spans (an
  anisotropic oscillator, a charge in a magnetic field, central forces, Hénon–Heiles, a quartic
  oscillator, any system in symplectically transformed coordinates), the registry
  :data:`SUITE` and the hand-derived :data:`DIMENSIONS` of every registered system.
"""

from .base import SPLITS, HamiltonianSystem, UnknownSymmetryError
from .paper import (
    PAPER,
    SYSTEM_PARAMETERS,
    CoupledOscillators,
    HarmonicOscillator,
    NBody,
    build_system,
)
from .suite import (
    DIMENSIONS,
    SUITE,
    AnisotropicOscillator,
    CentralForce,
    HenonHeiles,
    MagneticParticle,
    QuarticOscillator,
    SymplecticTransform,
    random_symplectic,
)

__all__ = [
    "UnknownSymmetryError",
    "HamiltonianSystem",
    "HarmonicOscillator",
    "CoupledOscillators",
    "NBody",
    "SPLITS",
    "PAPER",
    "SYSTEM_PARAMETERS",
    "build_system",
    "AnisotropicOscillator",
    "MagneticParticle",
    "CentralForce",
    "HenonHeiles",
    "QuarticOscillator",
    "SymplecticTransform",
    "random_symplectic",
    "SUITE",
    "DIMENSIONS",
]
