"""Hamiltonian systems with known quadratic conserved quantities, and their float64 simulation.

- :mod:`~noether_ppl.systems.base`: :class:`HamiltonianSystem` for any user Hamiltonian
  (ground-truth generators optional; App. C simulation and data splits).
- :mod:`~noether_ppl.systems.paper`: the paper's systems (App. B) — :class:`HarmonicOscillator`,
  :class:`CoupledOscillators`, :class:`NBody` — and the registry :data:`PAPER`.
- :mod:`~noether_ppl.systems.suite`: further systems with hand-derived conserved spans (an
  anisotropic oscillator, a charge in a magnetic field, central forces, Hénon–Heiles, a quartic
  oscillator, any system in symplectically transformed coordinates), the registry
  :data:`SUITE` and the hand-derived :data:`DIMENSIONS` of every registered system.
- :mod:`~noether_ppl.systems.registry`: :func:`build_system`, a system (the paper's or the
  suite's) from an experiment file's ``[system]`` table (:data:`SYSTEM_PARAMETERS`).
"""

from .base import SPLITS, HamiltonianSystem, UnknownSymmetryError
from .paper import PAPER, CoupledOscillators, HarmonicOscillator, NBody
from .registry import SYSTEM_PARAMETERS, build_system
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
