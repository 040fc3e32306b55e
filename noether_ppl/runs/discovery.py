"""Seed 000's "discover" on a saved fit: the conserved quadratic quantities of the fitted
Hamiltonian of a run folder, as the numerical nullspace of its Lie derivatives, without
refitting.

This works for every variant — the plain HNN included — because it reads the fitted ``Ĥ``
(posterior-mean weights, the fit's own symmetrisation), not the learned generators η: where
Noether's razor symmetrises along its learned ``C_η`` (Sec. 5.1 reads those), this asks which
quadratic ``C`` the fitted ``Ĥ`` conserves, ``{Ĥ, C} ≈ 0`` on the data.
:func:`discover_run` writes ``discovery.json`` (the spectrum, the rule, parallelness and the
conserved quantities as generators ``(K, M+1, M+1)``) and ``figures/discovery.png`` into the
run folder.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from .._io import atomic_write_json, check_folder_path, check_writable_folder
from .files import FIGURES_DIR
from .folder import Run, open_run
from .lock import folder_lock

__all__ = ["discover_run", "DISCOVERY_FILE", "DISCOVERY_FIGURE", "DEFAULT_POINTS"]

DISCOVERY_FILE = "discovery.json"
DISCOVERY_FIGURE = "discovery.png"
DEFAULT_POINTS = 2000


def _points(run: Run, data: str, n_points: int, seed: int) -> np.ndarray:
    sets = ({} if run.train is None else {"train": run.train}) | dict(run.tests)
    if data not in sets:
        raise ValueError(f"Expected `data` to name a data set of the run in {run.folder!r} "
                         f"({', '.join(sorted(sets)) or 'none stored'}), got {data!r}.")
    states = np.asarray(sets[data].states, np.float64)
    x = states.reshape(-1, states.shape[-1])
    if x.shape[0] > n_points:
        x = x[np.sort(np.random.default_rng(seed).choice(x.shape[0], n_points, replace=False))]
    return x


def _check(name: str, value, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"Expected `{name}` to be {expected}, got {value!r}.")


def discover_run(folder, *, data: str = "train", n_points: int = DEFAULT_POINTS,
                 dimension: int | str = "gap", threshold: float | None = None, seed: int = 0,
                 system=None, write: bool = True, figures: bool = True):
    """The conserved quadratic quantities of the fit in ``folder`` (a path or an opened
    :class:`~noether_ppl.runs.Run`): :func:`~noether_ppl.analysis.discover` on its fitted
    Hamiltonian at up to ``n_points`` states of its data set ``data`` (drawn without
    replacement with ``seed``; all of them when there are fewer).

    ``dimension``: how many conserved quantities to take (an integer, or ``"gap"``: as many as
    lie below the spectrum's largest gap); ``threshold`` instead: the relative rule
    ``σ_k <= threshold · σ_max``. ``seed`` also draws the symmetrisation samples of a
    symmetrised fit. Compared with the run's reference generators, or with ``system``'s.
    Writes ``discovery.json`` (and ``figures/discovery.png``) into the folder unless ``write``
    (``figures``) is false. Returns the :class:`~noether_ppl.analysis.Discovery`.
    """
    from ..analysis.lie import discover

    _check("n_points", n_points, isinstance(n_points, (int, np.integer))
           and not isinstance(n_points, bool) and n_points >= 1, "a positive integer")
    _check("seed", seed, isinstance(seed, (int, np.integer)) and not isinstance(seed, bool),
           "an integer")
    if threshold is not None:
        dimension = None
    run = folder if isinstance(folder, Run) else open_run(folder)
    if write:  # before anything is computed
        check_writable_folder(run.folder, "run folder")
        if figures:
            check_folder_path(os.path.join(run.folder, FIGURES_DIR), "figures folder")
    x = _points(run, data, int(n_points), int(seed))
    result = run.result
    weights = result.weights_mean()
    elements = result.group_elements(jax.random.key(int(seed)))
    model = result.model

    def H(z):
        return model.hamiltonian(weights, elements, z.astype(model.dtype))

    if system is not None and getattr(system, "has_known_generators", False):
        reference, names = system, None
    else:
        reference, names = run.reference, run.reference_names
    kwargs = {"dimension": dimension} if threshold is None else {"threshold": threshold}
    found = discover(H, x, reference=reference, names=names, **kwargs)
    if write:
        with folder_lock(run.folder):
            _write(run, found, data=data, n_points=int(x.shape[0]), seed=int(seed),
                   elements=elements, figures=figures)
    return found


def _write(run: Run, found, *, data, n_points, seed, elements, figures) -> None:
    """``discovery.json`` (and the figure) of ``found`` into the run folder."""
    atomic_write_json(os.path.join(run.folder, DISCOVERY_FILE), {
        "data": data, "n_points": n_points, "seed": seed,
        "hamiltonian": "posterior mean" + (
            "" if elements is None else f", {elements.shape[0]} symmetrisation samples"),
        **found.to_dict(),
        # the conserved quantities themselves, for reuse (e.g. as fixed generators)
        "coefficients": found.coefficients.tolist(),
        "generators": found.generators.tolist()})
    if figures:
        import matplotlib.pyplot as plt

        from ..analysis.plots import plot_discovery

        path = os.path.join(run.folder, FIGURES_DIR, DISCOVERY_FIGURE)
        plt.close(plot_discovery({run.label: found}, path=path))
