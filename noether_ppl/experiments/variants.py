"""The variants of an experiment: the models it fits, by name.

``"vanilla"`` (K = 0, the plain HNN), ``"learned"`` (K = ``model.n_conserved`` learned
conserved quantities), ``"oracle"`` (the system's ground-truth generators, App. B, or a
reference file's) or a fixed group by name: ``"so2"``, ``"u(n)"`` / ``"u(3)"``, ``"se2"``.
:func:`resolve_variant` checks one name against the system, :func:`resolve_variants` the list a
run fits.
"""

from __future__ import annotations

import dataclasses
import re

from ..systems.registry import build_system

__all__ = ["Variant", "resolve_variant", "resolve_variants"]

@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of an experiment: ``kind`` is ``"vanilla"``, ``"learned"`` or ``"fixed"``."""

    name: str
    kind: str
    label: str
    slug: str
    generators: tuple[str, ...] | None = None
    """For a fixed group: the names of the system's generators it fixes (None: all of them)."""


_GROUP_LABELS = {"so2": "SO(2)", "se2": "SE(2)"}
_GROUP_GENERATORS = {"se2": ("T_x", "T_y", "R^ABS_xy")}
"""Groups that fix some of their system's generators, by name (the others fix all of them).
SE(2), the paper's fixed-symmetry oracle of Table 3: translations and the rotation about the
origin, three of the seven generators of the algebra G with the same orbits (App. B.3)."""


def resolve_variant(name: str, system: dict | None, has_reference: bool = False) -> Variant:
    """Resolve a variant name against the system (None: user data without a system)."""
    if name == "vanilla":
        return Variant(name, "vanilla", "HNN", "vanilla")
    if name == "learned":
        return Variant(name, "learned", "HNN + learned symmetry", "learned")
    if name == "oracle":
        if system is None and not has_reference:
            raise ValueError("variant 'oracle' needs ground-truth generators: a simulated "
                             "system or a reference file")
        what = "ground truth" if system is not None else "reference"
        if system is not None and build_system(system).generators().shape[0] == 0:
            raise ValueError(f"variant 'oracle' fixes the ground-truth generators of the "
                             f"system, and {system['name']!r} has none (no quadratic conserved "
                             f"quantity); 'vanilla' is the plain HNN")
        return Variant(name, "fixed", f"HNN + fixed {what}", "oracle")
    sys_name = None if system is None else system["name"]
    m = re.fullmatch(r"u\((n|\d+)\)", name)
    if name in _GROUP_LABELS or m:
        if system is None:
            raise ValueError(f"variant {name!r} uses the ground truth of a simulated system; "
                             f"with your own data use a reference file and variant 'oracle'")
        if name == "so2" and sys_name != "harmonic_oscillator":
            raise ValueError(f"variant 'so2' is the symmetry of the harmonic_oscillator system, "
                             f"not of {sys_name!r}")
        if name == "se2" and not (sys_name == "nbody" and system.get("dim", 2) == 2):
            raise ValueError("variant 'se2' is the symmetry of the nbody system in dim = 2")
        if m:
            if sys_name != "coupled_oscillators":
                raise ValueError(f"variant {name!r} is the symmetry of the coupled_oscillators "
                                 f"system, not of {sys_name!r}")
            n = system.get("n", 3)
            if m.group(1) != "n" and int(m.group(1)) != n:
                raise ValueError(f"variant {name!r} does not match system.n = {n}")
            return Variant(name, "fixed", f"HNN + fixed U({n})", f"u{n}")
        return Variant(name, "fixed", f"HNN + fixed {_GROUP_LABELS[name]}", name,
                       _GROUP_GENERATORS.get(name))
    raise ValueError(
        f"unknown variant {name!r}; expected 'vanilla', 'learned', 'oracle' or a group "
        f"name ('so2', 'u(n)', 'se2')"
    )


def resolve_variants(experiment, variants, *, user_data: bool, has_reference: bool,
                     echo) -> list:
    """The :class:`Variant` objects a run of ``experiment`` fits: ``variants`` (None: the
    experiment's), checked against its system (``user_data``: none; a variant that needs one is
    left out with a note unless named explicitly), with the plain HNN added when
    ``inference.select`` needs it."""
    explicit = variants is not None
    names = list(variants) if explicit else list(experiment.variants)
    if not names:
        raise ValueError("Expected at least one variant.")
    if len(set(names)) != len(names):
        raise ValueError(f"Repeated variants in {names}.")
    resolved = []
    for name in names:
        try:
            resolved.append(experiment.variant(name, system=not user_data,
                                               has_reference=has_reference))
        except ValueError:
            if explicit or not user_data:
                raise
            echo(f"note: variant {name!r} of {experiment.name} needs the simulated system's "
                 f"ground truth and is not fitted on your data (give a reference file and "
                 f"variant 'oracle' to fit a fixed symmetry).")
    if not resolved:
        raise ValueError("No variant left to fit.")
    if experiment.inference.select and any(v.kind == "learned" for v in resolved) and not any(
            v.kind == "vanilla" for v in resolved):
        echo("note: selecting the conserved quantities (inference.select, --auto) starts from "
             "what the plain HNN's Hamiltonian conserves: fitting variant 'vanilla' too.")
        resolved.insert(0, experiment.variant("vanilla", system=not user_data,
                                              has_reference=has_reference))
    slugs = [v.slug for v in resolved]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"Variants {names} name the same model twice.")
    return resolved
