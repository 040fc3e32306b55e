"""Several fits from independent initialisations, keeping the one with the highest ELBO.

Noether's razor chooses the conserved quantities η by maximising the ELBO (empirical Bayes,
Sec. 4.3–4.4); the ELBO is not concave in η and θ, so one run of SVI finds a local optimum that
depends on the initialisation. Running ``restarts`` fits from independent keys and keeping the
one with the highest final ELBO is the same criterion applied across those optima: no held-out
data and no ground truth are involved. How much one fit depends on its key on the demo's data:
``benchmarks/records/demo-sensitivity/``.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from ..data import Trajectories
from ..models.razor import NoetherRazor
from .fit import DivergenceError, RunawayError, fit
from .refit import _SET_BY_REFIT, refit_posterior
from .result import FitResult

__all__ = ["fit_restarts", "final_neg_elbo", "refit_record", "refit_summary", "runaway_line"]


def _check_fraction(name: str, value) -> None:
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise ValueError(f"Expected 0 < `{name}` <= 1, got {value!r}.")


def final_neg_elbo(result: FitResult, fraction: float = 0.05) -> float:
    """−ELBO/N at the end of a fit: the mean training loss over the last ``fraction`` of its
    steps (at least one). Under the cosine schedule the parameters barely move over those
    steps, so this is a Monte-Carlo estimate at the final parameters with one fresh draw of
    weights and symmetry times (and, with mini-batches, one batch) per step."""
    if not isinstance(result, FitResult):
        raise ValueError(f"Expected `result` to be a FitResult, got {type(result).__name__}.")
    _check_fraction("fraction", fraction)
    losses = np.asarray(result.losses, dtype=np.float64)
    if losses.size == 0:
        raise ValueError("The fit took no steps: there is no loss to score it by.")
    n = max(1, math.ceil(fraction * losses.size))
    return float(np.mean(losses[-n:]))


def fit_restarts(model: NoetherRazor, data: Trajectories, *, key: jax.Array, restarts: int = 1,
                 score_fraction: float = 0.05, refit: bool = False,
                 refit_kwargs: dict | None = None, **fit_kwargs) -> FitResult:
    """``restarts`` independent :func:`~noether_ppl.inference.fit` runs; the one with the
    lowest :func:`final_neg_elbo` (the highest ELBO) is returned.

    Restart 0 uses ``key`` itself, so ``restarts=1`` is exactly ``fit(model, data, key=key,
    ...)``; restart ``r > 0`` uses ``jax.random.fold_in(key, r)`` (new initial weights, η,
    weight and symmetry samples). ``fit_kwargs`` go to every fit. A restart that diverges
    (non-finite loss) is recorded and skipped; if all diverge, the first
    :class:`DivergenceError` is raised. A restart whose loss runs away
    (:class:`~noether_ppl.inference.RunawayError`) competes with the state it kept, the end of
    its best chunk (``ran_away_at``: the step it was stopped at). The
    returned result's ``info["restarts"]`` lists every restart's index, score, steps, wall
    time and whether it diverged, and ``info["restart"]`` the index that was kept.

    ``refit=True`` (models that learn η only): the posterior over θ of the kept fit is fitted
    again at its η̂ (:func:`~noether_ppl.inference.refit_posterior`, from the kept restart's
    key, with ``fit_kwargs`` — less ``lr_conserved`` and ``init_params``, which were for
    finding η̂ — updated by ``refit_kwargs``), and of the two the one with the
    higher final ELBO is returned; ``info["refit"]`` holds both scores, the refit's steps and
    wall time, whether it diverged, and ``"kept"`` (``"refit"`` or ``"fit"``).
    ``refit_kwargs`` may also be a list of such dicts: one refit per entry (e.g. several
    ``lr_offdiag``), all from the same key, and the highest final ELBO among the fit and every
    refit is kept; ``info["refit"]`` is then the record of the best refit, with
    ``"candidates"`` (each entry's settings, score, steps, wall time, divergence),
    ``"candidate"`` (the best one's index) and ``wall_time_s`` summed over them.
    """
    if isinstance(restarts, bool) or not isinstance(restarts, (int, np.integer)) or restarts < 1:
        raise ValueError(f"Expected `restarts` to be a positive int, got {restarts!r}.")
    _check_fraction("score_fraction", score_fraction)
    if not isinstance(refit, bool):
        raise ValueError(f"Expected `refit` to be a bool, got {refit!r}.")
    if refit and not model.learns_conserved:
        raise ValueError(f"`refit=True` refits the posterior at learned conserved quantities; "
                         f"the {model.variant!r} model learns none.")
    if refit_kwargs is not None and not refit:
        raise ValueError("`refit_kwargs` given without `refit=True`.")
    candidates = [refit_kwargs or {}] if not isinstance(refit_kwargs, (list, tuple)) \
        else list(refit_kwargs)
    if not candidates or not all(isinstance(c, dict) for c in candidates):
        raise ValueError(f"Expected `refit_kwargs` to be a dict or a non-empty list of dicts, "
                         f"got {refit_kwargs!r}.")
    held = sorted(set().union(*candidates) & set(_SET_BY_REFIT))
    if held:
        raise ValueError(f"`refit_kwargs` may not set {held}: the refit holds η at the fitted "
                         "value.")
    best, first_error, records = None, None, []  # best: (score, restart, result)
    for r in range(int(restarts)):
        k = key if r == 0 else jax.random.fold_in(key, r)
        ran_away = None
        try:
            result = fit(model, data, key=k, **fit_kwargs)
        except RunawayError as err:  # the state at the end of its best chunk competes
            result, ran_away = err.result, err.step
        except DivergenceError as err:
            first_error = first_error or err
            records.append({"restart": r, "neg_elbo_per_n": None, "steps": err.step,
                            "wall_time_s": err.result.info.get("wall_time_s"),
                            "diverged": True})
            continue
        score = final_neg_elbo(result, score_fraction)
        records.append({"restart": r, "neg_elbo_per_n": score, "steps": result.steps,
                        "wall_time_s": result.info.get("wall_time_s"), "diverged": False,
                        **({"ran_away_at": ran_away} if ran_away is not None else {})})
        if best is None or score < best[0]:
            best = (score, r, result)
    if best is None:
        raise first_error
    _, r, result = best
    result.info.update(restart=r, restarts=records)
    if refit:
        # the fit's own η settings (lr_conserved, init_params) were for finding η̂
        kwargs = {k: v for k, v in fit_kwargs.items() if k not in _SET_BY_REFIT}
        result = _refit(result, data, key if r == 0 else jax.random.fold_in(key, r),
                        score_fraction, kwargs, candidates)
    return result


def refit_record(fit_result: FitResult, refit_result: FitResult | None,
                 score_fraction: float = 0.05) -> dict:
    """The choice between a fit and its refit at η̂ (:func:`refit_posterior`; None: the refit
    diverged): both :func:`final_neg_elbo` scores and ``"kept"``, ``"refit"`` when its ELBO is
    the higher, else ``"fit"``."""
    score = final_neg_elbo(fit_result, score_fraction)
    if refit_result is None:
        return {"fit_neg_elbo_per_n": score, "refit_neg_elbo_per_n": None, "diverged": True,
                "kept": "fit"}
    refit_score = final_neg_elbo(refit_result, score_fraction)
    return {"fit_neg_elbo_per_n": score, "refit_neg_elbo_per_n": refit_score,
            "diverged": False, "kept": "refit" if refit_score < score else "fit"}


def runaway_line(label: str, info: dict) -> str | None:
    """One line saying that the kept restart of a :func:`fit_restarts` result (its ``info``)
    ran away and which state it kept; None when it did not."""
    kept = info["restarts"][info["restart"]]
    if "ran_away_at" not in kept:
        return None
    return (f"{label}: the loss ran away; the fit was stopped at step {kept['ran_away_at']} and "
            f"keeps its state after step {kept['steps']}, the end of its best chunk (see "
            f"`runaway_factor`).")


def refit_summary(label: str, record: dict, *, n_conserved: int = 1, kept: bool = True) -> str:
    """One line for a :func:`refit_record`: both scores and which fit has the higher ELBO
    (``kept``: that fit is the one kept, as in ``fit_restarts(refit=True)``)."""
    second = ("diverged" if record["diverged"]
              else f"{record['refit_neg_elbo_per_n']:.2f}")
    which = "refit" if record["kept"] == "refit" else "joint fit"
    what = "quantity" if n_conserved == 1 else "quantities"
    choice = f"kept the {which} (higher ELBO)" if kept else f"the {which} has the higher ELBO"
    tried = ""
    if record.get("candidates"):
        tried = " (the best of {} refits: {})".format(len(record["candidates"]), "; ".join(
            ", ".join(f"{k} {v}" for k, v in c["settings"].items()) + ": "
            + ("diverged" if c["diverged"] else f"{c['neg_elbo_per_n']:.2f}")
            for c in record["candidates"]))
    return (f"{label}: final -ELBO/N {record['fit_neg_elbo_per_n']:.2f} of the joint fit, "
            f"{second} of the posterior refitted at its learned conserved {what}{tried}; "
            f"{choice}.")


def _refit_one(result: FitResult, data, key, score_fraction: float,
               fit_kwargs: dict) -> tuple[dict, FitResult | None]:
    """``(refit_record, the refit or None when it diverged)``."""
    ran_away = None
    try:
        second = refit_posterior(result, data, key=key, **fit_kwargs)
    except RunawayError as err:  # the state at the end of its best chunk competes
        second, ran_away = err.result, err.step
    except DivergenceError as err:
        record = refit_record(result, None, score_fraction)
        record.update(steps=err.step, wall_time_s=err.result.info.get("wall_time_s"))
        return record, None
    record = refit_record(result, second, score_fraction)
    record.update(steps=second.steps, wall_time_s=second.info.get("wall_time_s"))
    if ran_away is not None:
        record["ran_away_at"] = ran_away
    return record, second


def _refit(result: FitResult, data, key, score_fraction: float, fit_kwargs: dict,
           candidates: list[dict]) -> FitResult:
    """Refit once per entry of ``candidates`` (each updating ``fit_kwargs``); keep the highest
    final ELBO among ``result`` and the refits."""
    tried = [_refit_one(result, data, key, score_fraction, {**fit_kwargs, **c})
             for c in candidates]
    fitted = [i for i, (_, second) in enumerate(tried) if second is not None]
    best = min(fitted, key=lambda i: tried[i][0]["refit_neg_elbo_per_n"]) if fitted else 0
    record, second = dict(tried[best][0]), tried[best][1]
    if len(candidates) > 1:
        record["candidates"] = [
            {"settings": dict(c), "neg_elbo_per_n": rec["refit_neg_elbo_per_n"],
             "diverged": rec["diverged"], "steps": rec["steps"],
             "wall_time_s": rec["wall_time_s"]}
            for c, (rec, _) in zip(candidates, tried, strict=True)]
        record["candidate"] = best
        record["wall_time_s"] = sum(rec["wall_time_s"] or 0.0 for rec, _ in tried)
    if second is None:
        result.info["refit"] = record
        return result
    kept = second if record["kept"] == "refit" else result
    kept.info.update(restart=result.info["restart"], restarts=result.info["restarts"],
                     refit=record)
    return kept
