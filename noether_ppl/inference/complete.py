"""The completion of :func:`~noether_ppl.inference.select_conserved` (``criterion="conserved"``,
``complete=True``): after the removals, the dimension is read off what the ELBO-fitted Ĥ
conserves over the *whole* quadratic space (:func:`conservation_spectrum`, the largest gap
among the residuals up to ``max_residual``, :func:`spectrum_cuts`), F is refitted with the
symmetry fixed at those quantities, and the ELBO decides between that refit and the fit the
quantities were read from. The options (``cuts``, ``extend``, ``close``, ``grow``, ``built_in``,
``refit_learns``, ``refit_lr_conserved``, ``refit_steps``, ``refit_from``, ``refit_sizes``,
``spectrum_samples``, ``evidence_samples``) are documented at
:func:`~noether_ppl.inference.select_conserved`."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..data import Trajectories
from ..geometry import span_basis
from .conservation import (
    bracket_parts,
    built_in_parts,
    conservation_residuals,
    conservation_spectrum,
    principal_generators,
    span_shares,
    spectrum_cuts,
)
from .continuation import continue_fit, model_with
from .evidence import elbo_difference
from .result import FitResult

__all__ = ["Completion", "complete_selection", "check_refit_rate", "check_sizes", "choose_size",
           "lie_closure", "valid_sizes",
           "REFIT_FROM", "FRESH_FOLD", "SIZE_FOLD", "CLOSE_FOLD"]

REFIT_FROM = ("continue", "fresh")
"""Where the completion's refits start (``select_conserved``'s ``refit_from``): the fit the
quantities were read from, or a fresh initial state."""

FRESH_FOLD = 17
"""The fresh refits' key: ``fold_in(k, FRESH_FOLD)`` of the completion's refit key ``k``, one
initial state for every refit of a selection (their ELBO differences are then paired in the
start too)."""

CLOSE_FOLD = 3000
"""The closure's refit and comparison (``close``): keys ``fold_in(k, CLOSE_FOLD)`` of the
completion's refit and comparison keys, apart from every other refit's."""

SIZE_FOLD = 4000
"""The comparisons of one refit's sizes (``refit_sizes``): the j-th size against the one chosen
before it with key ``fold_in(k, SIZE_FOLD + j)`` of that refit's key ``k``."""


def valid_sizes(sizes) -> bool:
    """Whether ``sizes`` is a non-empty sequence of distinct positive finite numbers, what
    ``refit_sizes`` takes (the one check of the argument, the experiment files' key and the
    benchmarks' flags)."""
    return (isinstance(sizes, (tuple, list)) and len(sizes) > 0
            and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                    and np.isfinite(f) and f > 0 for f in sizes)
            and len({float(f) for f in sizes}) == len(sizes))


def check_sizes(refit_sizes) -> None:
    """``refit_sizes`` is None or :func:`valid_sizes` (``select_conserved``'s multiples of the
    refits' size); else a ValueError naming it."""
    if refit_sizes is not None and not valid_sizes(refit_sizes):
        raise ValueError("Expected `refit_sizes` to be None or a non-empty sequence of distinct "
                         f"positive finite numbers, got {refit_sizes!r}.")


@dataclasses.dataclass(frozen=True)
class Completion:
    """What :func:`complete_selection` returns.

    result : the fit returned: the refit at the selected quantities, or, where its ELBO was
        lower by more than the tolerance, the fit they were read from (``before``).
    continued : optimisation steps of ``result`` beyond ``before`` (0 where ``before`` is kept);
        a refit from a fresh start (``refit_from="fresh"``) counts its own steps.
    step : the selection step that records it (``reason="spectrum"``;
        :class:`~noether_ppl.inference.selection.Selection`'s ``steps``).
    spectrum : ``(P,)`` the residuals of the spectrum the dimension was read from, ascending.
    gap_ratio : ``r_{D+1} / r_D`` at the selected cut D (None at 0 or P).
    singular_values, generators, residuals : ``(L,)``, ``(L, M+1, M+1)``, ``(L,)``: the selected
        quantities in principal form and their residuals under ``result``'s Ĥ.
    built_in : where ``before`` is kept and learns its generators: its principal generators'
        σ, share in the selected span and residual (``Selection.built_in``); else None.
    """

    result: FitResult
    continued: int
    step: dict
    spectrum: np.ndarray
    gap_ratio: float | None
    singular_values: np.ndarray
    generators: np.ndarray
    residuals: np.ndarray
    built_in: list | None


def check_refit_rate(refit_lr_conserved, refit_learns: bool) -> None:
    """``refit_lr_conserved`` (``select_conserved``'s η rate in refits that learn it) is None, or
    a positive finite number given with ``refit_learns``; else a ValueError naming it (the one
    check of the argument, the experiment files' keys and the benchmarks' flag)."""
    if refit_lr_conserved is None:
        return
    if (isinstance(refit_lr_conserved, bool) or not isinstance(refit_lr_conserved, (int, float))
            or not (np.isfinite(refit_lr_conserved) and refit_lr_conserved > 0)):
        raise ValueError("Expected `refit_lr_conserved` to be None or a positive finite number, "
                         f"got {refit_lr_conserved!r}.")
    if not refit_learns:
        raise ValueError("`refit_lr_conserved` is η's rate in refits that learn it; it needs "
                         "`refit_learns=True` (without it the refits hold η fixed).")


def complete_selection(before: FitResult, data: Trajectories, x_states: np.ndarray, *,
                       key: jax.Array, fit_kwargs: dict, stopped: list, max_residual: float,
                       tolerance: float, num_repeats: int, built_in: bool = False,
                       refit_learns: bool = False, cuts: int = 1,
                       refit_steps: int | None = None, grow: bool = False,
                       extend: bool = False, spectrum_samples: int | None = None,
                       evidence_samples: int | None = None, refit_from: str = "continue",
                       fresh_steps: int | None = None,
                       refit_sizes: tuple[float, ...] | None = None,
                       refit_lr_conserved: float | None = None,
                       close: bool = False) -> Completion:
    """Read the dimension off the spectrum of ``before``'s Ĥ on ``x_states (N, M)`` and refit
    at it (module docstring; the options as at
    :func:`~noether_ppl.inference.select_conserved`). Continuation fits take ``fit_kwargs``;
    one that diverges or runs away is noted in ``stopped`` and its last good state used.
    With ``refit_from="fresh"`` every refit starts from the same fresh initial state and takes
    ``fresh_steps`` steps (required then), and the extension reads its next direction off the
    spectrum of the refit it would extend. With ``refit_sizes`` every refit is fitted at each
    of those multiples of the size and the ELBO chooses among them (:func:`choose_size`)."""
    if refit_from not in REFIT_FROM:
        raise ValueError(f"Unknown `refit_from` {refit_from!r}; expected one of {REFIT_FROM}.")
    fresh = refit_from == "fresh"
    if fresh and fresh_steps is None:
        raise ValueError("`refit_from='fresh'` needs `fresh_steps`, the steps of each refit.")
    k_spec, k_done, k_cmp = jax.random.split(key, 3)
    k_fresh = jax.random.fold_in(k_done, FRESH_FOLD)

    def read(fitted, k):
        """The spectrum of ``fitted``'s Ĥ, with ``spectrum_samples`` symmetry samples."""
        if spectrum_samples is not None and fitted.model.n_conserved:
            fitted = fitted.with_sym_samples(spectrum_samples)
        return conservation_spectrum(fitted, x_states, key=k)

    def compare(a, b, k):
        """The paired ELBO difference a − b (``evidence_samples`` symmetry samples)."""
        return elbo_difference(a, b, data, key=k, num_repeats=num_repeats,
                               sym_samples=evidence_samples)

    spectrum, S = read(before, k_spec)
    candidates = spectrum_cuts(spectrum, max_residual, cuts)
    # An orthonormal basis of the selected span, at the size the ELBO gave the learned
    # generators (the median σ; 1 when none is left): the size sets how far the measure μ
    # carries F along each orbit (Eq. 14), and unit size fitted worse on the suite.
    sig_before, B = principal_generators(before.generators())
    size = float(np.median(sig_before)) if sig_before.size else 1.0
    M = data.phase_dim
    refit_kwargs = {**fit_kwargs, **({} if refit_steps is None
                                     else {"num_steps": int(refit_steps)})}
    # η's rate in the refits: 0 (held fixed) unless they learn it, then ``refit_lr_conserved``
    # where given (else the fit's own ``lr_conserved``)
    if not refit_learns:
        refit_kwargs["lr_conserved"] = 0.0
    elif refit_lr_conserved is not None:
        refit_kwargs["lr_conserved"] = float(refit_lr_conserved)
    if fresh:
        refit_kwargs["num_steps"] = int(fresh_steps)

    factors = (1.0,) if refit_sizes is None else tuple(float(f) for f in refit_sizes)

    def refit_at(D, k, S=S, start=before):
        """The refit from ``start`` (from the fresh state, ``refit_from="fresh"``) with the
        symmetry fixed at the first ``D`` directions of the spectrum ``S`` (and, with
        ``built_in``, the learned ones outside them), at the size the ELBO chooses among
        ``factors`` times ``size``: ``(fit, D, residuals of the built-in parts added, its
        entries for the record)``."""
        basis = (span_basis(S[:D]).reshape(-1, (M + 1) ** 2) if D
                 else np.zeros((0, (M + 1) ** 2)))
        added = []
        if built_in and B.shape[0]:
            extra = built_in_parts(B, basis)
            if extra.shape[0]:
                r_extra = conservation_residuals(before, extra.reshape(-1, M + 1, M + 1),
                                                 x_states, key=k_spec)
                added = [float(r) for r in r_extra]
                extra = extra[np.asarray(r_extra) <= max_residual]
                basis = np.concatenate([basis, extra])
        params, k_fit = ({}, k_fresh) if fresh else (start.params, k)

        def fitted_at(factor):
            G_sel = factor * size * basis.reshape(-1, M + 1, M + 1)
            return continue_fit(model_with(before.model, basis.shape[0]), params, G_sel, data,
                                k_fit, refit_kwargs, stopped, "refit")

        fitted, entries = choose_size(fitted_at, factors, compare, k, tolerance)
        return fitted, basis.shape[0], added, entries

    # The cut at the largest gap, then (``cuts`` > 1) each next-largest: a later cut's refit
    # replaces the chosen one only where its ELBO is higher by more than ``tolerance`` plus
    # twice the standard error of the paired difference.
    D_spectrum, gap_ratio = candidates[0]
    refit, D, added, sized = refit_at(D_spectrum, k_done)
    sized_cut = sized  # the refit at the gap's cut: its size (``refit_sizes``)
    tried = []
    for i, (D_c, ratio_c) in enumerate(candidates[1:], start=1):
        other, D_o, added_o, sized_o = refit_at(D_c, jax.random.fold_in(k_done, i))
        d_c, se_c, est_c, _ = compare(other, refit, jax.random.fold_in(k_cmp, i))
        better = bool(d_c > tolerance + 2.0 * se_c)
        tried.append({"spectrum_selected": D_c, "selected": D_o, "gap_ratio": ratio_c,
                      "delta_vs_chosen": d_c, "se": se_c,
                      "neg_elbo_per_n": est_c.neg_elbo_per_n, "chosen": better, **sized_o})
        if better:
            refit, D, added, D_spectrum, gap_ratio, sized = (other, D_o, added_o, D_c, ratio_c,
                                                             sized_o)
    extended = []
    while extend:
        # One direction more than the cut, kept where the ELBO sees it (``extend``). From a
        # fresh start, the next direction is read off the refit's own Ĥ, symmetrised over the
        # quantities chosen so far (the fit they were read from is not refitted).
        if fresh:
            spec_e, S_e = read(refit, jax.random.fold_in(k_spec, 2000 + D_spectrum))
        else:
            spec_e, S_e = spectrum, S
        if D_spectrum >= spec_e.size or spec_e[D_spectrum] > max_residual:
            break
        k_e = jax.random.fold_in(k_done, 2000 + D_spectrum)
        other, D_o, added_o, sized_o = refit_at(D_spectrum + 1, k_e, S=S_e)
        d_e, se_e, est_e, _ = compare(other, refit, jax.random.fold_in(k_cmp, 2000 + D_o))
        better = bool(d_e > tolerance + 2.0 * se_e)
        extended.append({"spectrum_selected": D_spectrum + 1, "selected": D_o,
                         "delta_vs_chosen": d_e, "se": se_e,
                         "neg_elbo_per_n": est_e.neg_elbo_per_n, "chosen": better, **sized_o,
                         # the spectrum read again and its directions (what a reference scores)
                         **({"spectrum_head": spec_e[:D_spectrum + 2].tolist(),
                             "spectrum_directions": S_e[:D_spectrum + 2].tolist()}
                            if fresh else {})})
        if not better:
            break
        refit, D, added, D_spectrum, sized = other, D_o, added_o, D_spectrum + 1, sized_o
        gap_ratio = (float(spec_e[D_spectrum] / spec_e[D_spectrum - 1])
                     if D_spectrum < spec_e.size else None)
    closed = None
    if close:
        # Poisson's theorem: the brackets of quantities Ĥ conserves are conserved too, so the
        # span chosen so far is completed to the Lie algebra it generates (:func:`lie_closure`),
        # each added direction checked against the Ĥ the span was read from. The ELBO need not
        # see a direction whose flow stays in the orbits of the others, so the closed refit is
        # kept unless the evidence is against it.
        k_l = jax.random.fold_in(k_done, CLOSE_FOLD)
        basis_now = (span_basis(refit.generators()) if refit.model.n_conserved
                     else np.zeros((0, (M + 1) ** 2)))
        closed_basis, rounds = lie_closure(
            basis_now, lambda parts: conservation_residuals(
                before, parts.reshape(-1, M + 1, M + 1), x_states, key=k_spec), max_residual)
        closed = {"from": int(basis_now.shape[0]), "rounds": rounds}
        if closed_basis.shape[0] > basis_now.shape[0]:
            # the added directions (unit generators), what a reference can score
            closed["directions"] = closed_basis[basis_now.shape[0]:].reshape(
                -1, M + 1, M + 1).tolist()
            other, D_o, added_o, sized_o = refit_at(closed_basis.shape[0], k_l,
                                                    S=closed_basis.reshape(-1, M + 1, M + 1))
            d_l, se_l, est_l, _ = compare(other, refit, jax.random.fold_in(k_cmp, CLOSE_FOLD))
            taken = bool(d_l >= -(tolerance + 2.0 * se_l))
            closed.update({"selected": D_o, "delta": d_l, "se": se_l,
                           "neg_elbo_per_n": est_l.neg_elbo_per_n, "kept": taken, **sized_o})
            if taken:
                refit, D, added, sized = other, D_o, added_o, sized_o
    refit_steps_taken = refit.steps
    grown = []
    for i in range(M * (M + 1) if grow else 0):  # the dimension grows at most that often
        # What the refit's own Ĥ conserves: more than it holds, where the symmetry it holds
        # let F fit the data closer.
        k_g, k_r, k_c = jax.random.split(jax.random.fold_in(k_done, 1000 + i), 3)
        spec_g, S_g = read(refit, k_g)
        D_g, ratio_g = spectrum_cuts(spec_g, max_residual)[0]
        if D_g <= refit.model.n_conserved:
            grown.append({"spectrum_selected": D_g, "gap_ratio": ratio_g})
            break
        other, D_o, added_o, sized_o = refit_at(D_g, k_r, S=S_g, start=refit)
        d_g, se_g, est_g, _ = compare(other, refit, k_c)
        taken = bool(d_g >= -(tolerance + 2.0 * se_g))
        grown.append({"spectrum_selected": D_g, "gap_ratio": ratio_g, "selected": D_o,
                      "delta": d_g, "se": se_g, "neg_elbo_per_n": est_g.neg_elbo_per_n,
                      "kept": taken, **sized_o})
        if not taken:
            break
        refit, D, added, sized, refit_steps_taken = other, D_o, added_o, sized_o, (
            other.steps if fresh else refit_steps_taken + other.steps)
    delta, se, est_new, est_old = compare(refit, before, k_cmp)
    # The ELBO arbitrates which fit is returned: with non-compact directions at that size the
    # refit can fit far worse than the fit whose Ĥ the quantities were read from.
    kept_refit = bool(delta >= -(tolerance + 2.0 * se))
    result = refit if kept_refit else before
    head = D_spectrum + 2
    step = {"dimension": before.model.n_conserved, "selected": D,
            "reason": "spectrum", "gap_ratio": gap_ratio, "size": size,
            "spectrum_head": spectrum[:head].tolist(),
            # the directions of ``spectrum_head`` (unit generators): what a reference can score
            "spectrum_directions": S[:head].tolist(),
            "delta": delta, "se": se,
            "neg_elbo_per_n_selected": est_new.neg_elbo_per_n,
            "neg_elbo_per_n_before": est_old.neg_elbo_per_n,
            "kept": "refit" if kept_refit else "before",
            **({"built_in_residuals": added, "spectrum_selected": D_spectrum}
               if built_in else {}),
            **({"refit_learns": True} if refit_learns else {}),
            **({"refit_lr_conserved": float(refit_lr_conserved)}
               if refit_lr_conserved is not None else {}),
            **({"refit_steps": int(refit_steps)} if refit_steps is not None else {}),
            **({"refit_from": "fresh", "fresh_steps": int(fresh_steps)} if fresh else {}),
            # ``refit_sizes``: the sizes of the refit at the gap's cut (each ``cuts``,
            # ``extended`` and ``grown`` entry holds its own) and the returned refit's
            **({**sized_cut, "refit_size_factor": sized["size_factor"]} if sized else {}),
            **({"grown": grown} if grow else {}),
            **({"extended": extended} if extend else {}),
            **({"closed": closed} if close else {}),
            **({"spectrum_samples": int(spectrum_samples)}
               if spectrum_samples is not None else {}),
            **({"evidence_samples": int(evidence_samples)}
               if evidence_samples is not None else {}),
            **({"cuts": [{"spectrum_selected": candidates[0][0],
                          "gap_ratio": candidates[0][1]}, *tried]}
               if cuts > 1 else {})}
    sig, G = principal_generators(refit.generators())  # the selected quantities
    res = (conservation_residuals(result, G, x_states, key=k_spec)
           if G.shape[0] else np.zeros(0))
    kept_generators = None
    if not kept_refit and before.model.learns_conserved:
        # what the returned fit is symmetrised over by construction (``B``, its principal
        # generators), against the selection
        res_b = conservation_residuals(before, B, x_states, key=k_spec)
        kept_generators = [{"sigma": float(a), "share": float(b), "residual": float(c)}
                           for a, b, c in zip(sig_before, span_shares(B, G), res_b,
                                              strict=True)]
    return Completion(result, refit_steps_taken if kept_refit else 0, step, spectrum,
                      gap_ratio, sig, G, res, kept_generators)


def lie_closure(basis: np.ndarray, residuals, max_residual: float
                ) -> tuple[np.ndarray, list[dict]]:
    """The span of the orthonormal rows ``basis (D, (M+1)²)`` completed under the Lie bracket
    (``select_conserved``'s ``close``): each round adds the directions
    :func:`~noether_ppl.inference.conservation.bracket_parts` finds outside the span whose
    ``residuals(parts (E, (M+1)²)) -> (E,)`` (the relative bracket with Ĥ,
    :func:`conservation_residuals`) are at most ``max_residual``, until a round adds none.
    Returns the orthonormal rows of the completed span ``(D', (M+1)²)``, ``D' ≥ D``, the first
    ``D`` the given ones, and one record per round: ``{"singular_values": the brackets'
    parts outside the span (the first 8), "residuals": of the directions above the part
    threshold, "added": how many of them were added}``."""
    basis = np.asarray(basis, np.float64)
    rounds = []
    while True:
        parts, sig = bracket_parts(basis)
        entry = {"singular_values": [float(v) for v in sig[:8]]}
        rounds.append(entry)
        if not parts.shape[0]:
            break
        r = np.asarray(residuals(parts), np.float64)
        ok = r <= max_residual
        entry.update(residuals=[float(v) for v in r], added=int(ok.sum()))
        if not ok.any():
            break
        basis = np.concatenate([basis, parts[ok]])
    return basis, rounds


def choose_size(fitted_at, factors: tuple[float, ...], compare, k: jax.Array,
                tolerance: float) -> tuple[FitResult, dict]:
    """One refit at the size the ELBO chooses (``select_conserved``'s ``refit_sizes``).

    ``fitted_at(factor)`` fits F with the symmetry fixed at ``factor`` times the selection's
    size (every factor from the same start and key: the differences are paired in the start
    too). The first factor is the chosen one to begin with; each next one replaces it where
    its ELBO is higher by more than ``tolerance`` plus twice the standard error of the paired
    difference (``compare(a, b, key)``, key ``fold_in(k, SIZE_FOLD + j)``), the rule of the
    completion's other comparisons. The size is a hyperparameter of the measure μ (how far
    it carries F along each orbit, Eq. 14) like η's scale, which the learned fit chooses by
    the ELBO too (Sec. 4, empirical Bayes).

    Returns the chosen fit and, with more than one factor, its record entries
    ``{"size_factor": f, "size_trials": [{"factor", "delta_vs_chosen", "se",
    "neg_elbo_per_n", "chosen"}, ...]}`` (the first trial: the first factor, with the
    −ELBO/N the first comparison estimated for it); ``{}`` with one factor.
    """
    chosen, factor = fitted_at(factors[0]), factors[0]
    if len(factors) == 1:
        return chosen, {}
    trials = [{"factor": factor}]
    for j, f in enumerate(factors[1:], start=1):
        other = fitted_at(f)
        delta, se, est, est_chosen = compare(other, chosen, jax.random.fold_in(k, SIZE_FOLD + j))
        if j == 1:
            trials[0]["neg_elbo_per_n"] = est_chosen.neg_elbo_per_n
        better = bool(delta > tolerance + 2.0 * se)
        trials.append({"factor": f, "delta_vs_chosen": delta, "se": se,
                       "neg_elbo_per_n": est.neg_elbo_per_n, "chosen": better})
        if better:
            chosen, factor = other, f
    return chosen, {"size_factor": factor, "size_trials": trials}
