"""The systems an experiment file names: :data:`SYSTEM_PARAMETERS` and :func:`build_system`.

An experiment file's ``[system]`` table (and a run folder's ``meta["system"]``) is
``{"name": ..., **parameters}``; the name is one of :data:`SYSTEM_PARAMETERS`, the paper's three
(App. B) or one of the suite's parametrised systems (:mod:`~noether_ppl.systems.suite`), and the
parameters are the keywords of its class. ``experiments.settings.SYSTEMS`` gives every
parameter its type in the file.
"""

from __future__ import annotations

from .paper import CoupledOscillators, HarmonicOscillator, NBody
from .suite import (
    AnisotropicOscillator,
    CentralForce,
    HenonHeiles,
    MagneticParticle,
    QuarticOscillator,
)

__all__ = ["SYSTEM_PARAMETERS", "build_system"]

_SYSTEM_CLASSES = {
    "harmonic_oscillator": HarmonicOscillator,
    "coupled_oscillators": CoupledOscillators,
    "nbody": NBody,
    "anisotropic_oscillator": AnisotropicOscillator,
    "magnetic_particle": MagneticParticle,
    "central_force": CentralForce,
    "henon_heiles": HenonHeiles,
    "quartic_oscillator": QuarticOscillator,
}

SYSTEM_PARAMETERS: dict[str, tuple[str, ...]] = {
    "harmonic_oscillator": ("mass", "stiffness"),
    "coupled_oscillators": ("n",),
    "nbody": ("n_bodies", "dim", "masses", "gravity", "softening"),
    "anisotropic_oscillator": ("frequencies",),
    "magnetic_particle": ("field",),
    "central_force": ("potential", "softening"),
    "henon_heiles": ("energy_fraction",),
    "quartic_oscillator": (),
}
"""The systems an experiment file (or a run folder's ``meta["system"]``) names, and their
parameters: the paper's (App. B) and the suite's (every :data:`~noether_ppl.systems.SUITE`
entry except ``"u2-noncanonical"``, whose symplectic map is an array)."""

_SEQUENCES = ("masses", "frequencies")  # stored as lists, however they were given


def build_system(system: dict):
    """A system from ``{"name": ..., **parameters}`` (the ``[system]`` table; see
    :data:`SYSTEM_PARAMETERS`). The class checks the parameters' values."""
    if not isinstance(system, dict) or system.get("name") not in SYSTEM_PARAMETERS:
        raise ValueError(f"Expected a system table with name in {list(SYSTEM_PARAMETERS)}, got "
                         f"{system!r}.")
    params = {k: v for k, v in system.items() if k != "name"}
    unknown = set(params) - set(SYSTEM_PARAMETERS[system["name"]])
    if unknown:
        raise ValueError(f"Unknown parameter(s) {sorted(unknown)} of system {system['name']!r}; "
                         f"expected some of {list(SYSTEM_PARAMETERS[system['name']])}.")
    for k in _SEQUENCES:
        if isinstance(params.get(k), (tuple, list)):
            params[k] = list(params[k])
    return _SYSTEM_CLASSES[system["name"]](**params)
