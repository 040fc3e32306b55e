"""How many conserved quantities: the number chosen by the ELBO, not by the user.

Noether's razor learns K quadratic conserved quantities C_η and symmetrises the Hamiltonian
over their flows (Sec. 3–4). K is an upper bound a user gives; the dimension of the learned
symmetry algebra is read from the singular values of the stacked generators (Sec. 5.1). A
threshold on those singular values is no evidence, and two failure modes show why a fit can
keep directions that the data do not support:

- a learned direction may be *invisible to the ELBO*: averaging F over translations
  ``p ↦ p − τe`` changes a function that is quadratic along ``e`` only by a constant, so Ĥ,
  its vector field J∇Ĥ and hence the likelihood are the same with or without that direction;
- a direction may simply not have been driven to zero by the optimiser.

:func:`select_conserved` starts from a fit with K quantities (η chosen by the ELBO), rewrites
the learned generators in their principal form ``σ_k v_k`` (the same group elements in
distribution for a rotation-invariant measure μ, Eq. 14), and removes directions one at a
time, the one the fitted Ĥ conserves least first, each removal followed by a short continuation
fit. "Least conserved" is the direction of the learned span with the largest relative Poisson
bracket ``{C, Ĥ}`` on the training states (:func:`conservation_eigen`, a generalised
eigenproblem: the principal directions of the generators are ordered by size, not by
conservation, and can mix a conserved direction with one that is not); its removal keeps the
other directions (:func:`deflate`). How it decides (``criterion``):

- ``"conserved"`` (default): Noether's theorem (Theorem 1) applied to the ELBO-fitted Ĥ: a
  direction is a symmetry of Ĥ iff Ĥ conserves its quantity; directions whose residual exceeds
  ``max_residual`` are removed. Then (``complete=True``) the dimension is read off what that
  Ĥ conserves over the *whole* quadratic space, not only the learned span
  (:func:`conservation_spectrum`: the largest gap among the residuals up to ``max_residual``,
  :func:`spectrum_dimension`), and F is refitted with the symmetry fixed at those quantities.
  The learned η are a means to a symmetric Ĥ: on the suite's systems the fitted Ĥ conserved
  every true direction better than the plain HNN's, while the learned generators could miss a
  true direction (a non-compact one shrinks and drifts) or mix one with a direction that is not
  conserved (``benchmarks/records/discovery/``).
- ``"elbo"``: a removal is kept unless the ELBO without the direction is worse than with it by
  more than ``tolerance`` nats plus twice the standard error of the paired difference
  (:func:`~noether_ppl.inference.evidence.elbo_difference`); the first refusal ends it.
- ``"both"``: not-conserved directions are removed, then the ELBO rule runs on the rest.

Why the default is not the ELBO alone: with few data the ELBO rewards smoothing Ĥ over orbit
segments of directions that are no symmetry (the KL falls faster than the likelihood), and
with several directions it can prefer fewer true ones (the Monte-Carlo Ĥ of a larger group is
noisier); both were measured (``benchmarks/records/discovery/``, REPRODUCTION.md, "How many
conserved quantities"). Only the training data, the fitted model and its ELBO enter the
choice; no reference span, no test data.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..data import Trajectories, check_int
from .complete import REFIT_FROM, check_refit_rate, check_sizes, complete_selection
from .conservation import (
    conservation_eigen,
    conservation_residuals,
    conservation_spectrum,
    deflate,
    principal_generators,
    span_shares,
    spectrum_cuts,
)
from .continuation import continue_fit, model_with
from .evidence import DEFAULT_REPEATS, elbo_difference
from .result import FitResult
from .selection import (
    CRITERIA,
    DEFAULT_CRITERION,
    SELECTED_MIN_SHARE,
    Selection,
    check_select_args,
)

__all__ = ["Selection", "select_conserved", "DEFAULT_TOLERANCE", "DEFAULT_MAX_RESIDUAL",
           "CRITERIA", "DEFAULT_CRITERION", "SELECTION_OPTIONS", "SELECTED_MIN_SHARE",
           "STOPS", "DEFAULT_STOP", "span_shares"]

DEFAULT_TOLERANCE = 1.0
"""Nats of total ELBO a removal may cost and still be kept (beyond twice its standard error):
a log Bayes factor of 1, below which the evidence for a direction is not worth stating."""

DEFAULT_MAX_RESIDUAL = 0.12
"""The largest relative Poisson bracket ``{C, Ĥ}`` (:func:`conservation_residuals`) of a
quantity that :func:`select_conserved` still counts as conserved by the fitted Ĥ, and the cap
below which :func:`spectrum_dimension` looks for the gap. On the suite
(``benchmarks/records/discovery/``) the true directions' residuals under the razor's fitted Ĥ
lie well below it and the nearest non-symmetries of most systems above it (the record's
"margin" column)."""


STOPS = ("conserved", "spectrum")
"""When :func:`select_conserved`'s removals stop under ``criterion="conserved"`` (see there)."""

DEFAULT_STOP = "spectrum"
""":func:`select_conserved`'s default ``stop``. Measured against ``"conserved"`` on the discovery
benchmark (``benchmarks/discovery.py --stop``; REPRODUCTION.md, "K without the answer"): with
K = M it kept the true directions on the 1 : √2 oscillator's keys where the other rule removed
one (5 of 5 against 2 of 5, ``benchmarks/records/discovery-k-phase-stop/``), and together
with :func:`~noether_ppl.analysis.fit_auto`'s ``symmetrised_hnn`` it lost no key on any system
run with K = true + 1 (``discovery-stop-symmetrised/`` against ``discovery-true-rerun/``)."""

SELECTION_OPTIONS = ("criterion", "complete", "built_in", "refit_learns", "cuts", "stop",
                     "max_residual", "tolerance", "num_repeats", "refit_steps", "grow",
                     "extend", "spectrum_samples", "evidence_samples", "refit_from",
                     "refit_sizes", "refit_lr_conserved", "close")
"""The keyword arguments of :func:`select_conserved` that are its own, not
:func:`~noether_ppl.inference.fit`'s (the rest of its ``fit_kwargs`` go to every continuation
fit)."""


def select_conserved(result: FitResult, data: Trajectories, *, key: jax.Array, num_steps: int,
                     num_repeats: int = DEFAULT_REPEATS, tolerance: float = DEFAULT_TOLERANCE,
                     max_residual: float = DEFAULT_MAX_RESIDUAL,
                     criterion: str = DEFAULT_CRITERION, complete: bool = True,
                     built_in: bool = False, refit_learns: bool = False, cuts: int = 1,
                     stop: str = DEFAULT_STOP, refit_steps: int | None = None,
                     grow: bool = False, extend: bool = False,
                     spectrum_samples: int | None = None,
                     evidence_samples: int | None = None, refit_from: str = "continue",
                     refit_sizes: tuple[float, ...] | None = None,
                     refit_lr_conserved: float | None = None, close: bool = False,
                     **fit_kwargs) -> Selection:
    """Remove learned conserved quantities one at a time, starting from ``result`` (a fit of a
    model that learns K of them), until every one left is conserved by the fitted Ĥ and is
    supported by the ELBO (module docstring).

    Each round takes the direction of the learned span that the current fit's Ĥ conserves
    least (:func:`conservation_eigen`). With ``criterion="conserved"`` it is removed if its
    residual exceeds ``max_residual`` (no symmetry of Ĥ, Noether's Theorem 1), and the
    selection ends otherwise; with ``"elbo"`` it is removed unless the ELBO without it is
    worse by more than ``tolerance`` nats plus twice the standard error of the paired
    difference, and the selection ends at the first refusal; ``"both"`` applies the first rule,
    then the second. Each round first continues the current fit for ``num_steps`` (so a
    direction still moving can settle); a removal is a continuation fit of ``num_steps`` from
    that state without the direction, and an ELBO comparison sets it against a continuation of
    the same length with the direction.

    Parameters
    ----------
    result : the fit to start from (its model must learn η).
    data : the training data of ``result``; residuals are taken on its states and the ELBO is
        estimated on all its pairs.
    key : PRNG key of the continuation fits, residuals and ELBO estimates.
    num_steps : steps of each continuation fit.
    num_repeats : Monte-Carlo evaluations of each paired ELBO comparison.
    tolerance : nats of total ELBO a removal may cost beyond twice the standard error of the
        difference and still be kept.
    max_residual : the largest relative bracket ``{C, Ĥ}`` of a quantity still counted as
        conserved by Ĥ.
    criterion : ``"conserved"``, ``"elbo"`` or ``"both"`` (above).
    complete : with ``criterion="conserved"``: after the removals, read the dimension ``D``
        off the spectrum of the fitted Ĥ over all quadratic quantities
        (:func:`conservation_spectrum`, :func:`spectrum_dimension`; ``D`` may exceed K) and
        refit F for ``num_steps`` with the symmetry fixed at those ``D`` quantities (an
        orthonormal basis of their span scaled to the median σ of the learned generators). That
        refit is the result unless its ELBO is below the fit before it by more than
        ``tolerance`` plus twice the standard error; then the fit before it (whose Ĥ conserves
        the selected quantities: see ``residuals``) is. The last step records both, and the
        spectrum's first ``D + 2`` residuals and directions (``spectrum_head``;
        ``spectrum_directions``, unit generators ``(M+1, M+1)``, which a reference can score).
        The stage itself is :func:`~noether_ppl.inference.complete.complete_selection`. False:
        the selection is the learned span the removals leave.
    built_in : with ``complete``: also select the directions the fit is symmetrised over by
        construction (its learned generators after the removals) where they leave the span of
        the spectrum's ``D``: each such part (the components outside that span, orthonormalised,
        kept where their norm exceeds
        :data:`~noether_ppl.inference.conservation.BUILT_IN_MIN_PART`) whose residual under Ĥ
        is at most ``max_residual`` is added before the refit. Off by default: an alternative under
        measurement (``benchmarks/discovery.py --built-in``), not the package's rule.
    refit_learns : with ``complete``: the refit starts η at the selected quantities and goes on
        learning it (at the ``lr_conserved`` of ``fit_kwargs``) instead of holding it fixed, so
        the ELBO sets each direction's size (how far the measure carries F along a non-compact
        orbit, Eq. 14) and may turn it; the selected quantities are then the refit's learned
        generators. Off by default: an alternative under measurement
        (``benchmarks/discovery.py --refit-learns``), not the package's rule.
    refit_lr_conserved : with ``refit_learns``: η's Adam rate in the refits that learn it, in
        place of the ``lr_conserved`` of ``fit_kwargs`` (None: that one). On two bodies in
        2-D, η started at a span read close to the true one (parallelness 0.993 and 0.986
        on two keys) and learned at the learned fit's 1e-3 left it (0.280 and 0.647,
        ``benchmarks/records/two-body-fresh-learned-size2/``); at 1e-4 it stayed in it (0.987
        and 0.962) with an ELBO above the exact true span held fixed
        (``benchmarks/records/two-body-fresh-learned-size2-lr4/``). Through the whole
        selection (fresh refits at twice the size) it was right on neither of those keys
        (``benchmarks/records/discovery-two-body-refit-lr4/``). A positive finite
        number; given without ``refit_learns`` it is refused (it would change nothing). An
        alternative under measurement (``benchmarks/discovery.py --refit-lr-conserved``), not
        the package's rule.
    cuts : with ``complete``: how many cuts of the spectrum to refit, the largest gap first
        and then the next-largest (:func:`spectrum_cuts`); the refit of a later cut replaces
        the chosen one where its ELBO is higher by more than ``tolerance`` plus twice the
        standard error of the paired difference, and the chosen refit is then set against
        the fit before it as above. ``1`` (default): the largest gap only. The last step
        records every cut tried (``cuts``). More than one: an alternative under measurement
        (``benchmarks/discovery.py --cuts``), not the package's rule: on the magnetic field
        the refit at 1 direction beat the one at the true 6 on 5 of 5 keys (REPRODUCTION.md).
    stop : with ``criterion="conserved"`` and ``complete``: ``"spectrum"`` (default,
        :data:`DEFAULT_STOP`) removes directions until Ĥ conserves every learned one, or until
        the spectrum of the current Ĥ over all quadratic quantities reads at least as many
        conserved ones as are learned (:func:`spectrum_dimension` ``>= L``), whichever comes
        first: no learned direction is then in excess of what the completion selects, and a
        removal could only take a true direction mixed with one that is not.
        ``"conserved"`` removes until Ĥ conserves every learned one (the earlier default,
        the benchmark's baseline ``--stop conserved``).
    refit_steps : with ``complete``: steps of each refit at the selected quantities (default
        ``num_steps``). The refit starts from a fit symmetrised over other directions, and it
        is set against that fit by the ELBO: a refit too short to settle loses to it whatever
        it selected (``benchmarks/discovery.py --refit-steps``).
    grow : with ``complete``: after the refit, read the spectrum of the refit's own Ĥ; where
        its largest gap selects more quantities than the refit holds, refit again from the
        refit at those (``refit_steps``), kept where its ELBO is not below the refit's by more
        than ``tolerance`` plus twice the standard error; repeated until the dimension stops
        growing. Ĥ symmetrised over the quantities already selected fits the data better and
        can then show a conserved direction the first fit's Ĥ did not. Off by default: an
        alternative under measurement (``benchmarks/discovery.py --grow``), not the package's
        rule. The last step records each round (``grown``).
    extend : with ``complete``: after the chosen cut ``D``, refit at the spectrum's first
        ``D + 1`` directions (from the same fit, as long) and keep that refit where its ELBO is
        higher than the chosen one's by more than ``tolerance`` plus twice the standard error
        of the paired difference; repeated while the next direction's residual is at most
        ``max_residual`` and the ELBO keeps rising. The largest gap of an uneven true spectrum
        can fall inside it: from fits holding the true symmetry of two bodies in 2-D it read 6
        of the 7 directions on 5 of 5 keys, and the refit at 7 had the higher ELBO on each
        (``benchmarks/records/two-body-spectrum-refits/``); after the razor's own search it
        refused the next direction on 5 of 5 keys
        (``benchmarks/records/discovery-two-body-extend/``): an eighth on keys 0 and 4 and a
        ninth on key 3 (shares 0.49, 0.25, 0.16 in the true span, recorded with
        ``evidence_samples=256`` on the same fits), a seventh that is a true direction (share
        0.988) on keys 1 and 2, whose refit lost to the refit at six
        (``benchmarks/records/discovery-two-body-evidence/``); fitted from a fresh start
        instead, it still lost or tied, while the exact true span won on key 1
        (``benchmarks/records/two-body-fresh-refits/``). Off by default: an alternative
        under measurement (``benchmarks/discovery.py --extend``), not the package's rule. The
        last step records each refit tried (``extended``).
    close : with ``complete``: after the chosen cut (and ``cuts``, ``extend``), complete the
        selected span under the Lie bracket (Poisson's theorem: the bracket of two conserved
        quantities is conserved; :func:`~noether_ppl.inference.complete.lie_closure`): the
        brackets' parts outside the span above
        :data:`~noether_ppl.inference.conservation.BUILT_IN_MIN_PART`, each kept where its
        residual under the fit the span was read from is at most ``max_residual``, round
        after round; then refit at the closed span and keep that refit unless its ELBO is
        below the chosen one's by more than ``tolerance`` plus twice the standard error (the
        ELBO need not see a direction whose flow stays in the orbits of the others: two
        bodies' seven quantities have fields spanning 4 dimensions at every training state,
        ``benchmarks/records/bracket-closure/``, where the recorded two-body selections closed
        this way are right on 4 of 5 keys of ``discovery-two-body-evidence`` against 2; run
        through the whole selection, ``benchmarks/records/discovery-two-body-close/``, the ELBO
        refused both closed refits, 2 of 5). Off by default: an alternative under
        measurement (``benchmarks/discovery.py --close``). The last step records the rounds
        and the refit (``closed``).
    spectrum_samples : with ``complete``: read the completion's spectra with Ĥ estimated
        from this many symmetry samples instead of the model's S (the same parameters,
        :meth:`~noether_ppl.inference.FitResult.with_sym_samples`): a Monte-Carlo Ĥ is
        conserved only up to its noise, which blurs the spectrum's leading directions (with
        S = 16 the two-body spectrum's leading 7 were at parallelness 0.36–0.64 to the true
        span, with 256 at 0.984 or more: ``benchmarks/records/two-body-spectrum-samples/``;
        at 256 the razor's own selection read the true 7 on two of five keys,
        ``benchmarks/records/discovery-two-body-extend/``). None (default): the model's S.
    evidence_samples : every ELBO comparison of the selection (the removals' with
        ``criterion="elbo"``, the refit against the fit before it, ``cuts``, ``extend``,
        ``grow``) estimates each symmetric fit with Ĥ from this many symmetry samples instead
        of the model's S (:func:`~noether_ppl.inference.elbo_difference`'s ``sym_samples``;
        the fits themselves are unchanged); :func:`~noether_ppl.analysis.fit_auto` also
        compares the selection with the plain HNN so. With S = 16 the Monte-Carlo Ĥ's
        estimate can rank a fit whose Ĥ conserves the true span below the plain HNN where
        256 samples rank it above (two bodies, key 4:
        ``benchmarks/records/discovery-two-body-extend/``). With it at 256 the razor was right
        on 2 of 5 two-body keys (1 of 5 at 16), each time returning the learned fit,
        symmetrised over generators partly outside the span it reports
        (``benchmarks/records/discovery-two-body-evidence/``). None (default): the model's S.
        An alternative under measurement (``benchmarks/discovery.py --evidence-samples``), not
        the package's rule.
    refit_from : with ``complete``: where each refit at selected quantities starts.
        ``"continue"`` (default): from the fit they were read from, for ``refit_steps``.
        ``"fresh"``: from one fresh initial state (the same for every refit of the selection:
        key ``fold_in(k, FRESH_FOLD)``, :data:`~noether_ppl.inference.complete.FRESH_FOLD`),
        for ``refit_steps`` or, by default, the steps ``result`` took; and ``extend`` reads
        each next direction off the spectrum of the refit it extends (the first ``D + 1``
        directions of what the refit at ``D``'s own Ĥ conserves, each ``extended`` entry
        recording that spectrum's head and directions) instead of off the first fit's. A
        continued refit starts from a network trained under other generators, and on two
        bodies in 2-D the continued refits at the cut reached a far worse −ELBO/N than fresh
        fits of the learned fit's budget at the same directions
        (``benchmarks/records/two-body-fresh-refits/``). Grown refits start fresh too, and a
        fresh refit kept has been optimised for its own steps only, so ``continued_steps``
        counts only those beyond the steps ``result`` took (none by default:
        :func:`~noether_ppl.analysis.fit_auto` then compares the plain HNN as fitted, both
        fitted for the same steps from a fresh start). From fresh starts
        at the learned fit's reading on two bodies, this path kept the seventh direction read
        again on key 1 and refused it on key 2 (``benchmarks/records/two-body-fresh-reread/``)
        and refused a wrong eighth on keys 4 and 0 (on key 0 by 10 nats under the bar:
        ``benchmarks/records/two-body-fresh-reread-controls/``). An alternative under
        measurement (``benchmarks/discovery.py --refit-from fresh``), not the package's
        rule.
    refit_sizes : with ``complete``: each refit at selected quantities (at the cut, ``cuts``,
        ``extend``, ``grow``) is fitted at each of these multiples of the size it is otherwise
        fitted at (the median σ of the learned generators), from the same start, and the ELBO
        chooses: each next multiple replaces the chosen one where its paired ELBO difference
        is above ``tolerance`` plus twice its standard error (the first is the chosen one to
        begin with). Every comparison of the completion is then between refits at their own
        chosen sizes; the completion's step records the refit at the cut's ``size_factor``
        and ``size_trials`` (each ``extended``, ``cuts`` and ``grown`` entry its own) and the
        returned refit's ``refit_size_factor``. The size sets how far the measure
        carries F along each orbit (Eq. 14): on two bodies in 2-D, key 2, the refit at the
        true span beat six directions by 54 ± 29 nats at the median σ and by 996 ± 33 at
        twice it (``benchmarks/records/two-body-fresh-size/``); with ``(1, 2)`` from fresh
        starts the seventh direction read again there still fell short of the bar (+47 ± 36,
        ``benchmarks/records/two-body-fresh-sizes/``), and at twice the size a wrong eighth
        direction on keys 0 and 4 lost by 1228 ± 38 and 4666 ± 61 nats
        (``benchmarks/records/two-body-fresh-size-extend/``). None (default): the median σ
        alone. An alternative under measurement, not the package's rule.
    fit_kwargs : passed to every :func:`~noether_ppl.inference.fit` (``lr``,
        ``lr_conserved``, ``batch_size``, ...). A continuation fit that diverges or runs away
        does not end the selection: it goes on from that fit's last good state
        (``Selection.stopped``).

    Returns a :class:`Selection`; its ``result`` is the fit with the selected quantities.
    """
    check_select_args(result, data, key, num_steps, num_repeats, tolerance, fit_kwargs)
    if criterion not in CRITERIA:
        raise ValueError(f"Unknown `criterion` {criterion!r}; expected one of {CRITERIA}.")
    for name, flag in (("complete", complete), ("built_in", built_in),
                       ("refit_learns", refit_learns), ("grow", grow), ("extend", extend),
                       ("close", close)):
        if not isinstance(flag, bool):
            raise ValueError(f"Expected `{name}` to be True or False, got {flag!r}.")
    if stop not in STOPS:
        raise ValueError(f"Unknown `stop` {stop!r}; expected one of {STOPS}.")
    if refit_from not in REFIT_FROM:
        raise ValueError(f"Unknown `refit_from` {refit_from!r}; expected one of {REFIT_FROM}.")
    check_int("cuts", cuts)
    check_sizes(refit_sizes)
    check_refit_rate(refit_lr_conserved, refit_learns)
    for name, value in (("refit_steps", refit_steps), ("spectrum_samples", spectrum_samples),
                        ("evidence_samples", evidence_samples)):
        if value is not None:
            check_int(name, value)
    if isinstance(max_residual, bool) or not isinstance(max_residual, (int, float)) or not (
            max_residual > 0):
        raise ValueError(f"Expected `max_residual` > 0, got {max_residual!r}.")
    fit_kwargs = {"progress_bar": False, **fit_kwargs, "num_steps": int(num_steps)}
    x_states = np.asarray(data.states, np.float64).reshape(-1, data.phase_dim)
    start = result.model.n_conserved
    current = result
    continued = 0  # continuation steps between `result` and `current` (those each fit took)
    steps, stopped = [], []
    key, k_final = jax.random.split(key)
    decided = None  # (σ, G, residuals) of the state the "conserved" rule stopped at
    for rung in range(start):
        k_res, k_keep, k_drop, k_eval = jax.random.split(jax.random.fold_in(key, rung), 4)
        # Let the current quantities settle first: a direction still moving may yet become one
        # that Ĥ conserves.
        _, G = principal_generators(current.generators())
        L = G.shape[0]
        current = continue_fit(current.model, current.params, G, data, k_keep, fit_kwargs,
                               stopped, "settle")
        continued += current.steps  # num_steps, or fewer where the fit stopped
        sig, G = principal_generators(current.generators())
        # The direction of the learned span that Ĥ conserves least (a principal direction may
        # mix a conserved one with one that is not).
        r_eig, V = conservation_eigen(current, G, x_states, key=k_res)
        # The size of what its removal takes from the stacked generators (σ for a principal
        # direction): ‖(V⁻¹)_L‖ ‖d‖, d = Σ_k V_kL G_k (:func:`deflate`).
        size = np.linalg.norm(np.linalg.inv(V)[-1]) * np.linalg.norm(
            np.tensordot(V[:, -1], G, axes=1))
        step = {"dimension": L, "sigma": float(size),
                "residual": float(r_eig[-1])}
        not_conserved = criterion != "elbo" and r_eig[-1] > max_residual
        if not not_conserved and criterion == "conserved":
            decided = (sig, G, conservation_residuals(current, G, x_states, key=k_res))
            break  # every quantity left is conserved by Ĥ
        if not_conserved and stop == "spectrum" and complete and criterion == "conserved":
            step["spectrum_dimension"] = spectrum_cuts(
                conservation_spectrum(current, x_states, key=k_res)[0], max_residual)[0][0]
            if step["spectrum_dimension"] >= L:  # Ĥ conserves as many as are learned
                steps.append({**step, "reason": f"the spectrum of the fitted H reads "
                              f"{step['spectrum_dimension']}", "kept_removal": False})
                break
        drop = continue_fit(model_with(current.model, L - 1), current.params,
                            deflate(G, V, L - 1), data, k_drop, fit_kwargs, stopped, "removal")
        if not_conserved:
            step.update(reason="not conserved by the fitted H", kept_removal=True)
            steps.append(step)
            current, continued = drop, continued + drop.steps
            continue
        keep = continue_fit(current.model, current.params, G, data,
                            jax.random.fold_in(k_keep, 1), fit_kwargs, stopped, "kept")
        delta, se, est_drop, est_keep = elbo_difference(drop, keep, data, key=k_eval,
                                                        num_repeats=num_repeats,
                                                        sym_samples=evidence_samples)
        accepted = bool(delta >= -(tolerance + 2.0 * se))
        step.update(reason="ELBO", delta=delta, se=se,
                    neg_elbo_per_n_without=est_drop.neg_elbo_per_n,
                    neg_elbo_per_n_with=est_keep.neg_elbo_per_n, kept_removal=accepted)
        steps.append(step)
        current = drop if accepted else keep
        continued += current.steps
        if not accepted:
            break
    spectrum, gap_ratio, kept_generators = None, None, None
    if criterion == "conserved" and complete:
        # What the ELBO-fitted Ĥ conserves over the whole quadratic space (the learned span can
        # miss a direction Ĥ conserves, or hold a mixture): the dimension is read off the
        # spectrum, and F is refitted with the symmetry fixed at the selected quantities.
        done = complete_selection(current, data, x_states, key=k_final, fit_kwargs=fit_kwargs,
                                  stopped=stopped, max_residual=max_residual,
                                  tolerance=tolerance, num_repeats=num_repeats,
                                  built_in=built_in, refit_learns=refit_learns, cuts=cuts,
                                  refit_steps=refit_steps, grow=grow, extend=extend,
                                  spectrum_samples=spectrum_samples,
                                  evidence_samples=evidence_samples, refit_from=refit_from,
                                  refit_sizes=refit_sizes,
                                  refit_lr_conserved=refit_lr_conserved, close=close,
                                  fresh_steps=(result.steps if refit_steps is None
                                               else refit_steps))
        # a fresh refit kept is ``result``'s budget over again, not a continuation: only the
        # steps it takes beyond ``result``'s count (step 4's equal budget)
        continued = (max(0, done.continued - result.steps)
                     if refit_from == "fresh" and done.continued else continued + done.continued)
        current = done.result
        steps.append(done.step)
        spectrum, gap_ratio, kept_generators = done.spectrum, done.gap_ratio, done.built_in
        sig, G, res = done.singular_values, done.generators, done.residuals
    elif decided is not None:
        sig, G, res = decided
    else:
        sig, G = principal_generators(current.generators())
        res = (conservation_residuals(current, G, x_states, key=k_final)
               if G.shape[0] else np.zeros(0))
    selection = Selection(current, int(G.shape[0]), G, sig, res, steps, start, criterion,
                          spectrum=spectrum, gap_ratio=gap_ratio, continued_steps=continued,
                          built_in=kept_generators, stopped=stopped)
    info = {**current.info, "selection": selection.to_dict()}
    return dataclasses.replace(selection, result=dataclasses.replace(current, info=info))
