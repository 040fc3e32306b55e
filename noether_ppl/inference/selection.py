"""The outcome of :func:`~noether_ppl.inference.select_conserved`: the selected dimension, the
selected quantities, the ELBO evidence of each step, and how the selection decided; and the
checks of its arguments."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..data import Trajectories, check_int, check_key
from .result import FitResult

__all__ = ["Selection", "SELECTED_MIN_SHARE", "CRITERIA", "DEFAULT_CRITERION",
           "check_select_args"]

SELECTED_MIN_SHARE = 0.95
"""The share of a unit generator in the selected span
(:func:`~noether_ppl.inference.conservation.span_shares`) from which
:class:`Selection` counts a generator the returned fit is symmetrised over as one of the
selected directions: the parallelness above which the discovery benchmark counts a direction
as found (Sec. 5.1)."""

CRITERIA = ("conserved", "elbo", "both")
"""How :func:`~noether_ppl.inference.select_conserved` decides (see there)."""

DEFAULT_CRITERION = "conserved"


@dataclasses.dataclass(frozen=True)
class Selection:
    """The outcome of :func:`~noether_ppl.inference.select_conserved`.

    Attributes
    ----------
    result : the fit to use: symmetrised over the selected quantities (the plain HNN when
        none is selected), or, where the spectrum decided and that refit had the lower ELBO,
        the fit the quantities were read from (``steps[-1]["kept"]``).
    dimension : the selected dimension L of the symmetry algebra: how many quantities the
        returned ``result``'s Ĥ conserves (with the spectrum, its count; that fit may be
        symmetrised over fewer by construction when the ELBO kept the fit before the refit).
    generators : ``(L, M+1, M+1)`` the selected generators in principal form.
    singular_values : ``(L,)`` their singular values σ_k (Sec. 5.1).
    residuals : ``(L,)`` relative Poisson brackets ``{C_k, Ĥ}`` of the selected quantities
        under the selected fit's Ĥ on the training states
        (:func:`~noether_ppl.inference.conservation.conservation_residuals`).
    steps : one dict per removal tried: the dimension before, the removed direction's σ and
        residual, the ELBO difference (without − with, nats) and its standard error, the two
        −ELBO/N, and whether the removal was kept; with ``stop="spectrum"`` also the
        spectrum's reading (``spectrum_dimension``), and where that reading stopped the
        removals, ``kept_removal`` False. With the spectrum, a last step of its own.
    start_dimension : K of the fit the selection started from.
    criterion : the rule that decided (:data:`CRITERIA`).
    spectrum : ``(P,)`` the residuals of every quadratic direction under the fit the
        dimension was read from
        (:func:`~noether_ppl.inference.conservation.conservation_spectrum`), ascending; None
        when the dimension was not read from a spectrum.
    gap_ratio : ``r_{L+1} / r_L`` of that spectrum at the selected dimension (None at 0 or P).
    continued_steps : optimisation steps of the continuation fits between the starting fit and
        ``result`` (each continuation starts from the previous one's parameters): ``result``
        has been optimised for the starting fit's steps plus these (a refit from a fresh start,
        ``refit_from="fresh"``: its steps beyond the starting fit's, at least 0; the removals'
        continuations do not count, the refit not starting from them). A comparison with another
        fit at an equal budget continues that one as long
        (:func:`~noether_ppl.analysis.fit_auto`, step 4).
    built_in : where the ELBO kept the fit the quantities were read from (it learns its own
        generators, which need not be the selected ones), one dict per learned generator of
        ``result`` in principal form: its ``sigma``, its ``share`` in the selected span
        (:func:`~noether_ppl.inference.conservation.span_shares`; below
        :data:`SELECTED_MIN_SHARE` it is no selected direction, though Ĥ is symmetrised over
        it by construction, Eq. 14) and its ``residual`` ``{C, Ĥ}`` under ``result``'s Ĥ.
        None otherwise (``result`` is symmetrised over the selected quantities, or is the
        plain HNN).
    stopped : one dict per continuation fit that diverged or ran away (``fit``: ``settle``,
        ``removal``, ``kept`` or ``refit``; its ``dimension``, ``step`` and ``reason``): the
        selection went on from its last good state.
    """

    result: FitResult
    dimension: int
    generators: np.ndarray
    singular_values: np.ndarray
    residuals: np.ndarray
    steps: list
    start_dimension: int
    criterion: str = DEFAULT_CRITERION
    spectrum: np.ndarray | None = None
    gap_ratio: float | None = None
    continued_steps: int = 0
    built_in: list | None = None
    stopped: list = dataclasses.field(default_factory=list)

    @property
    def built_in_outside(self) -> list:
        """The entries of ``built_in`` outside the selected span (share below
        :data:`SELECTED_MIN_SHARE`): directions ``result`` is symmetrised over that were not
        selected."""
        return [b for b in self.built_in or () if b["share"] < SELECTED_MIN_SHARE]

    def to_dict(self) -> dict:
        return {"dimension": self.dimension, "start_dimension": self.start_dimension,
                "criterion": self.criterion, "continued_steps": self.continued_steps,
                "built_in": self.built_in, "stopped": self.stopped,
                "singular_values": self.singular_values.tolist(),
                "residuals": self.residuals.tolist(),
                "spectrum": None if self.spectrum is None else self.spectrum.tolist(),
                "gap_ratio": self.gap_ratio,
                "generators": self.generators.tolist(), "steps": self.steps}

    def __str__(self) -> str:
        rule = {"conserved": "what the fitted H conserves", "elbo": "the ELBO",
                "both": "what the fitted H conserves, then the ELBO"}[self.criterion]
        # the spectrum can read more directions than the K the selection started from
        lines = [f"Selected dimension {self.dimension} (started from K = "
                 f"{self.start_dimension}) by {rule}."]
        for s in self.steps:
            if s["reason"] == "spectrum":
                gap = "" if s["gap_ratio"] is None else f", gap x{s['gap_ratio']:.3g}"
                kept = ("refit kept" if s.get("kept", "refit") == "refit"
                        else "the fit before it kept")
                lines.append(f"  spectrum of the fitted H over all quadratic quantities: "
                             f"{', '.join(f'{r:.3g}' for r in s['spectrum_head'])} ... -> "
                             f"{s['selected']}{gap}; refitted with them fixed: ELBO refit − "
                             f"before = {s['delta']:+.3g} ± {s['se']:.2g} nats, {kept}"
                             + _size_words(s))
                lines += [f"    refit at one direction more, {e['spectrum_selected']}: ELBO − "
                          f"chosen = {e['delta_vs_chosen']:+.3g} ± {e['se']:.2g} nats -> "
                          + ("taken" if e["chosen"] else "not taken") + _size_words(e)
                          for e in s.get("extended", ())]
                closed = s.get("closed")
                if closed and "selected" in closed:
                    lines.append(f"    closed under the bracket, {closed['selected']}: ELBO − "
                                 f"chosen = {closed['delta']:+.3g} ± {closed['se']:.2g} nats -> "
                                 + ("taken" if closed["kept"] else "not taken")
                                 + _size_words(closed))
                continue
            head = (f"  {s['dimension']} -> {s['dimension'] - 1}: direction σ={s['sigma']:.3g}, "
                    f"residual {s['residual']:.3g}; ")
            if s["reason"] == "ELBO":
                verdict = "removed" if s["kept_removal"] else "kept"
                lines.append(head + f"ELBO without − with = {s['delta']:+.3g} ± {s['se']:.2g} "
                             f"nats -> {verdict}")
            else:
                lines.append(head + f"{s['reason']} -> "
                             + ("removed" if s.get("kept_removal", True) else "kept"))
        if self.dimension:
            lines.append("  selected residuals {C_k, Ĥ}: "
                         + ", ".join(f"{r:.3g}" for r in self.residuals))
        lines += [f"  a {s['fit']} fit at K = {s['dimension']} {s['reason']} at step "
                  f"{s['step']}; its last good state was used" for s in self.stopped]
        outside = self.built_in_outside
        if outside:
            lines.append(
                f"  the returned fit is symmetrised by construction over {len(self.built_in)} "
                f"learned generators; {len(outside)} "
                f"{'lies' if len(outside) == 1 else 'lie'} outside the selected span (share < "
                f"{SELECTED_MIN_SHARE}), no selected symmetry: σ "
                + ", ".join(f"{b['sigma']:.3g}" for b in outside) + "; share "
                + ", ".join(f"{b['share']:.2f}" for b in outside) + "; residual "
                + ", ".join(f"{b['residual']:.3g}" for b in outside))
        return "\n".join(lines)


def _size_words(entry: dict) -> str:
    """Where a refit's size was chosen by the ELBO (``refit_sizes``): which multiple, among
    which, and by how much it beat the multiple chosen before it."""
    if "size_factor" not in entry:
        return ""
    trials = entry["size_trials"]
    won = [t for t in trials[1:] if t["chosen"]]
    by = (f", +{won[-1]['delta_vs_chosen']:.3g} ± {won[-1]['se']:.2g} nats"
          if won else "")
    return (f" (size x{entry['size_factor']:g} of "
            + ", ".join(f"x{t['factor']:g}" for t in trials) + f" by the ELBO{by})")


def check_select_args(result, data, key, num_steps, num_repeats, tolerance,
                      fit_kwargs) -> None:
    """The checks of :func:`~noether_ppl.inference.select_conserved`'s arguments shared by
    every criterion (before anything is traced)."""
    if not isinstance(result, FitResult):
        raise ValueError(f"Expected `result` to be a FitResult, got {type(result).__name__}.")
    if not result.model.learns_conserved:
        raise ValueError(f"`result` is a fit of the {result.variant!r} model: select_conserved "
                         "needs a model that learns its conserved quantities (n_conserved > 0, "
                         "no fixed generators).")
    if not isinstance(data, Trajectories):
        raise ValueError(f"Expected `data` to be a Trajectories, got {type(data).__name__}.")
    check_key(key)
    check_int("num_steps", num_steps)
    check_int("num_repeats", num_repeats, 2)  # a standard error needs two
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not (
            0 <= tolerance < math.inf):
        raise ValueError(f"Expected `tolerance` >= 0 (nats), got {tolerance!r}.")
    taken = sorted(set(fit_kwargs) & {"init_params", "init_state", "start_step", "guide",
                                      "num_steps", "key"})
    if taken:
        raise ValueError(f"select_conserved sets {taken} itself; leave them out.")
