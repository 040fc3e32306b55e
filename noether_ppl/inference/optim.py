"""The optimiser of :func:`~noether_ppl.inference.fit`: Adam on groups of parameters, each with
its own learning rate and schedule (App. C)."""

from __future__ import annotations

import optax

from ..models.razor import CONSERVED_PARAMS
from .settings import SCHEDULES

__all__ = ["make_optimizer", "OFFDIAG_SUFFIXES", "LOGDIAG_SUFFIXES"]

OFFDIAG_SUFFIXES = ("_row_offdiag", "_col_offdiag")
"""Param-name endings of the guide's Cholesky off-diagonals (``make_optimizer``'s group
``"offdiag"``)."""

LOGDIAG_SUFFIXES = ("_row_logdiag", "_col_logdiag")
"""Param-name endings of the log-diagonals of the guide's Cholesky factors (``make_optimizer``'s
group ``"logdiag"``)."""


def make_optimizer(
    num_steps: int, lr: float, lr_conserved: float | None = None, schedule: str = "cosine",
    lr_offdiag: float | None = None, lr_logdiag: float | None = None,
) -> optax.GradientTransformation:
    """Adam(β = 0.9, 0.999) on two groups: η (``lr_conserved``) and everything else (``lr``),
    each cosine-annealed to 0 over ``num_steps`` (App. C) or constant. ``lr_conserved=0``
    holds η where it starts (no update and no Adam state for it).

    With ``lr_offdiag`` the off-diagonal entries of the guide's Cholesky factors (the
    ``*_row_offdiag`` and ``*_col_offdiag`` params of :class:`AutoMatrixNormal`) form a third
    group with that rate. Adam moves every entry by about its rate per step, so the n − 1
    off-diagonal entries of a factor's row change that row's norm by up to ``(n − 1)·lr`` at
    once where its diagonal moves by ``lr``; with None they share ``lr`` (the optimiser state
    then has two groups).

    With ``lr_logdiag`` the log-diagonals of those factors (``*_row_logdiag``,
    ``*_col_logdiag``: the log posterior standard deviations, up to the factors' scale split)
    form a group of their own with that rate. Adam moves a log-diagonal by at most about its rate
    per step, so from the guide's initial scale (``init_scale`` = 1e-3, a log-diagonal of −6.9)
    a cosine-annealed run of n steps at rate r can widen a posterior standard deviation by at
    most about ``exp(r·n/2)``: at ``lr = 3e-3`` and 2000 steps, a factor of about 20. What a
    faster rate did: ``benchmarks/records/time-to-quality-logdiag/``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"Unknown `schedule` {schedule!r}; expected one of {SCHEDULES}.")
    lr_conserved = lr if lr_conserved is None else lr_conserved

    def adam(rate):
        sched = optax.cosine_decay_schedule(rate, num_steps) if schedule == "cosine" else rate
        return optax.adam(sched, b1=0.9, b2=0.999)

    def labels(params):
        return {k: ("conserved" if k in CONSERVED_PARAMS
                    else "offdiag" if lr_offdiag is not None and k.endswith(OFFDIAG_SUFFIXES)
                    else "logdiag" if lr_logdiag is not None and k.endswith(LOGDIAG_SUFFIXES)
                    else "variational") for k in params}

    groups = {"conserved": optax.set_to_zero() if lr_conserved == 0 else adam(lr_conserved),
              "variational": adam(lr)}
    if lr_offdiag is not None:
        groups["offdiag"] = adam(lr_offdiag)
    if lr_logdiag is not None:
        groups["logdiag"] = adam(lr_logdiag)
    return optax.multi_transform(groups, labels)
