"""Empirical Bayes in two stages: the posterior over θ fitted again at the learned η̂.

Noether's razor sets the conserved quantities η by maximising the ELBO (Sec. 4.3–4.4). Fitted
jointly, η and the posterior q(θ) move together: while the network is still far from the data,
η is pushed around, and q(θ) can settle in a state fitted to the generators η passed through
rather than to the one it ends at. :func:`refit_posterior` keeps η̂ from a fit and fits q(θ)
again from a fresh start with η held there (``lr_conserved=0``). Both fits are lower bounds on
the same evidence log p(X | η̂), so the higher of the two final ELBOs is the better posterior
for η̂ by the razor's own criterion; :func:`~noether_ppl.inference.fit_restarts` (``refit=True``)
keeps that one. No held-out data or ground truth is involved.
"""

from __future__ import annotations

import jax
import numpy as np

from ..data import Trajectories
from ..models.razor import CONSERVED_PARAMS
from .fit import fit
from .result import FitResult

__all__ = ["refit_posterior", "held_conserved"]

_SET_BY_REFIT = ("init_params", "lr_conserved", "init_state", "start_step")


def held_conserved(result: FitResult) -> dict:
    """The :func:`~noether_ppl.inference.fit` arguments that hold η at ``result``'s learned
    value: ``init_params`` (every conserved-quantity parameter) and ``lr_conserved=0``."""
    if not isinstance(result, FitResult):
        raise ValueError(f"Expected `result` to be a FitResult, got {type(result).__name__}.")
    if not result.model.learns_conserved:
        raise ValueError(f"`result` is a fit of the {result.variant!r} model, which has no "
                         "learned conserved quantities to refit the posterior at.")
    return {"init_params": {name: np.asarray(result.params[name]) for name in CONSERVED_PARAMS},
            "lr_conserved": 0.0}


def refit_posterior(result: FitResult, data: Trajectories, *, key: jax.Array,
                    **fit_kwargs) -> FitResult:
    """Fit the posterior over θ of ``result``'s model again, from the initial state that
    ``key`` gives, with η fixed at ``result``'s learned value.

    ``fit_kwargs`` go to :func:`~noether_ppl.inference.fit` (``num_steps``, ``lr``,
    ``lr_offdiag``, ...); η's initial value and learning rate are set here, so
    ``init_params``, ``lr_conserved``, ``init_state`` and ``start_step`` are refused. The
    returned result is of the same model (it still "learns" η, at rate 0): its generators are
    ``result``'s, bit for bit.
    """
    held = held_conserved(result)
    given = sorted(set(fit_kwargs) & set(_SET_BY_REFIT))
    if given:
        raise ValueError(f"refit_posterior sets {given} itself (η is held at the fitted "
                         "value); leave them out.")
    return fit(result.model, data, key=key, **held, **fit_kwargs)
