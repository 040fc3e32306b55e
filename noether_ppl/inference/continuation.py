"""Continuation fits: the razor fitted on from a fitted state with its conserved quantities set
to given generators, the building block of :func:`~noether_ppl.inference.select_conserved`
(each removal, settle, refit and extension is one)."""

from __future__ import annotations

import numpy as np

from ..data import Trajectories
from ..models.conserved_init import conserved_params_from_generators
from ..models.razor import CONSERVED_PARAMS, NoetherRazor
from .fit import DivergenceError, RunawayError, fit
from .result import FitResult

__all__ = ["model_with", "continue_fit"]


def model_with(model: NoetherRazor, n_conserved: int) -> NoetherRazor:
    """``model`` with ``n_conserved`` learned quantities (K) and every other setting kept."""
    return NoetherRazor(model.spec.replace(n_conserved=n_conserved), phase_dim=model.phase_dim)


def continue_fit(model: NoetherRazor, params: dict, generators: np.ndarray, data: Trajectories,
                 key, fit_kwargs: dict, stopped: list, what: str) -> FitResult:
    """A fit of ``model`` from the variational parameters of ``params``, η set to exactly
    ``generators (K, M+1, M+1)`` (Eq. 4 inverted; K = ``model.n_conserved``, 0: none).

    A fit that diverges or runs away returns its last good state, and a note
    (``{"fit": what, "dimension", "step", "reason"}``) is appended to ``stopped``."""
    init = {k: v for k, v in params.items() if k not in CONSERVED_PARAMS}
    if generators.shape[0]:
        init.update(conserved_params_from_generators(generators, generators.shape[0], key=key,
                                                     scale=1.0, dtype=model.dtype))
    try:
        return fit(model, data, key=key, init_params=init, **fit_kwargs)
    except DivergenceError as err:
        stopped.append({"fit": what, "dimension": int(model.n_conserved), "step": int(err.step),
                        "reason": "ran away" if isinstance(err, RunawayError) else "diverged"})
        return err.result
