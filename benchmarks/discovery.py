"""Discovery benchmark: does the razor find the right conserved quantities, and how many?

For each system (the suite of ``noether_ppl.systems.SUITE`` and the paper's, CPU scale) and
each key (data and fits), ``analysis.fit_auto`` runs the razor as the package recommends it
(plain HNN + discover as a start, the razor from its own and the discovered start, the start
with the higher ELBO kept, quantities selected by the ELBO and by what the fitted Ĥ conserves).
The plain HNN of that same run followed by ``discover`` (gap rule) is the baseline. "(no gap)"
marks an HNN spectrum whose largest gap is below ``GAP_MIN_RATIO``. "margin": the true H's
residual (``inference.conservation_residuals``) of the best-conserved quadratic direction
outside its conserved span, on the training states: how broken the nearest non-symmetry is
(a fit whose own error is larger cannot tell). "least conserved true direction": the true
generator (by its name) whose quantity each fit's Ĥ conserves least, with its residual
(``inference.conservation_residuals``; scoring only, "–" in rows recorded before it).
"exact H, rule": the dimension that the selection's rule (``inference.spectrum_dimension``
at ``max_residual``) reads on the true H's spectrum at those states (``identifiability.py``;
"–" in rows recorded before it). "gap": the ratio at the razor's selected dimension in the
spectrum of its fitted Ĥ (``inference.spectrum_dimension``). "(fit over L learned, n outside)": the
selection's refit at the selected quantities had the lower ELBO, so it returned the fit they
were read from, which is symmetrised over its own L learned generators, n of them outside the
selected span (``Selection.built_in``). "(HNN kept)": step 4 of
``fit_auto`` kept the plain HNN (its ELBO, after a continuation as long as the selection's,
was higher than the selection's). "(HNN symmetrised)": with ``--symmetrised-hnn`` (the
default), step 4 kept the plain HNN continued as long with the selected symmetry fixed (its
ELBO was above the selection's fit's and not below the HNN's). The last summary column scores
step 4 as it was before that equal budget (the selection against the step-1 HNN; recorded per row as
``unequal_budget``). The ground
truth (each system's hand-derived generators) only scores: dimension and the smallest
parallelness of the selected directions (Sec. 5.1).

``--noise-variance``, ``--dt`` and ``--integrator`` / ``--substeps`` change the likelihood's
σ², the pairs' time step and the likelihood mean for every system (the table's first line
names them when they differ from the package's and the splits').

    python benchmarks/discovery.py                       # every system, keys 0-4
    python benchmarks/discovery.py --systems sho central-quartic --keys 0 1 --topic discovery-smoke

Writes ``benchmarks/records/<topic>/`` (table.md, metrics.json, record.json) after each run,
so an interrupted run keeps what it finished; ``--resume`` continues it (same settings; the
record lists every command that contributed rows and their summed wall time).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import jax
import numpy as np
from record import add_rebuild_argument, read_record, rewrite_record, write_record

from noether_ppl import analysis, inference, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.inference.complete import REFIT_FROM, check_refit_rate, valid_sizes
from noether_ppl.inference.conservation import BUILT_IN_MIN_PART
from noether_ppl.inference.select import (
    DEFAULT_MAX_RESIDUAL,
    DEFAULT_STOP,
    DEFAULT_TOLERANCE,
    STOPS,
)
from noether_ppl.inference.selection import SELECTED_MIN_SHARE
from noether_ppl.integrators import INTEGRATORS

ORDER = ["sho", "anisotropic-1-2", "anisotropic-1-sqrt2", "central-quartic",
         "central-softened-kepler", "henon-heiles", "quartic-1d", "u2-noncanonical", "magnetic",
         "anisotropic-1-1-2", "oscillators3", "isotropic-3d", "two-body-2d",
         "henon-heiles-escape", "nbody2d3"]
"""Systems in the order they run (cheapest first)."""

SYSTEM_STEPS = {"henon-heiles-escape": 16000, "central-quartic": 16000,
                "anisotropic-1-1-2": 16000}
"""Steps of the systems that need more than ``--steps``: they run at the larger of the two, and
their selection at ``--select-steps`` times the same factor. On Hénon–Heiles near the escape
energy the plain HNN's evidence overtakes the U(2)-symmetric model's only between converged
fits (``records/henon-heiles-evidence-shell/``: lower at 2000 steps on 5 of 5 keys, higher at
16000 on 5 of 5). On the quartic central force the fixed true symmetry's evidence overtakes the
plain HNN's only then (``records/central-quartic-evidence/``: lower at 2000 steps on 4 of 5
keys, higher at 16000 on 5 of 5); at 2000 steps step 4 kept the plain HNN on every key, and on
2 of 5 keys of the 1:1:2 oscillator (``records/discovery-equal-budget/``)."""


def steps_of(name: str, args) -> tuple[int, int]:
    """``(steps, select_steps)`` of system ``name`` (:data:`SYSTEM_STEPS`)."""
    steps = max(args.steps, SYSTEM_STEPS.get(name, 0))
    return steps, args.select_steps * steps // args.steps


NOISE_VARIANCE = models.ModelSpec().noise_variance
"""The likelihood's σ² unless ``--noise-variance``: the package's (the paper's) 1e-3."""

INTEGRATOR, SUBSTEPS = models.ModelSpec().integrator, models.ModelSpec().substeps
"""The likelihood mean unless ``--integrator`` / ``--substeps``: the package's."""

LEGACY_SETTINGS = {"start_directions": "gap", "n_conserved": "true", "stop": "conserved",
                   "symmetrised_hnn": False}
"""Settings whose default changed: their value in records written before they were recorded."""


def model_spec(settings: dict, n_conserved: int) -> models.ModelSpec:
    """The benchmark's model at a run's ``settings`` (``vars(args)``, or a record's
    ``settings``; one recorded before ``mc_likelihood`` and ``mc_groups`` existed used the
    plug-in likelihood): ball measure of scale π, ``n_conserved`` conserved quantities."""
    return models.ModelSpec(hidden=tuple(settings["hidden"]), n_conserved=n_conserved,
                            sym_samples=settings["sym_samples"], measure="ball",
                            measure_scale=float(np.pi),
                            noise_variance=settings["noise_variance"],
                            integrator=settings["integrator"], substeps=settings["substeps"],
                            mc_likelihood=settings.get("mc_likelihood", "plug-in"),
                            mc_groups=settings.get("mc_groups", 2))


def train_data(system, key: int, *, trajectories: int, points: int, dt: float | None = None):
    """The training trajectories of ``key``: the system's ``"train"`` split from data key
    ``1000 + key``, ``trajectories`` x ``points`` steps (also ``identifiability.py``'s) of the
    split's Δt, or of ``dt`` if given."""
    return system.simulate_split(jax.random.key(1000 + key), "train",
                                 n_trajectories=trajectories, n_steps=points,
                                 **({} if dt is None else {"dt": dt}))


def test_data(system, key: int, *, dt: float | None = None):
    """The test trajectories of ``key``: the system's ``"test"`` split from data key
    ``2000 + key``, of the split's Δt, or of ``dt`` if given."""
    return system.simulate_split(jax.random.key(2000 + key), "test",
                                 **({} if dt is None else {"dt": dt}))


def _min_par(G, truth) -> float | None:
    if G.shape[0] == 0:
        return None
    if truth.shape[0] == 0:
        return 0.0
    return float(np.min(analysis.parallelness(G.reshape(G.shape[0], -1), truth)))


def spectrum_scores(steps, truth) -> dict:
    """Scoring only: where the directions of the completion's spectrum lie against the true
    span ``truth (L, M+1, M+1)``. From the last selection step's ``spectrum_directions`` (the
    spectrum's first D + 2 directions, D its selected cut): ``spectrum_true_shares``, each
    direction's parallelness to the true span (``analysis.parallelness``: 1 inside it, 0
    orthogonal), and ``spectrum_first_true_par``, the smallest cosine of the principal angles
    between the span of the spectrum's first L directions and the true span
    (``analysis.subspace_cosines``; 1: they are the true span; None where fewer than L
    independent directions were recorded). Where the extension read each next direction off
    the refit it extends (``refit_from="fresh"``: an ``extended`` entry with directions of its
    own), ``extended_true_shares``: each candidate direction's parallelness to the true span;
    where the closure under the bracket added directions (``close``), ``closed_true_shares``:
    theirs. {} where no spectrum was read (or L = 0)."""
    last = steps[-1] if steps else {}
    directions = last.get("spectrum_directions")
    L = truth.shape[0]
    if directions is None or L == 0:
        return {}
    S = np.asarray(directions, np.float64)
    cosines = analysis.subspace_cosines(S[:L], truth)
    out = {"spectrum_true_shares": analysis.parallelness(S, truth).tolist(),
           "spectrum_first_true_par": float(cosines[-1]) if cosines.size == L else None}
    closed = last.get("closed") or {}
    if closed.get("directions"):
        out["closed_true_shares"] = analysis.parallelness(
            np.asarray(closed["directions"], np.float64), truth).tolist()
    ext = last.get("extended") or []
    if any("spectrum_directions" in e for e in ext):
        out["extended_true_shares"] = [
            float(analysis.parallelness(np.asarray(
                e["spectrum_directions"], np.float64)[e["spectrum_selected"] - 1][None],
                truth)[0]) for e in ext]
    return out


def n_conserved_of(args, L: int, M: int) -> int:
    """The razor's K (``--n-conserved``): ``true`` (the default), K = ``L + extra`` from the
    true dimension ``L``; ``phase``, K = M, the phase-space dimension, a number no system's
    answer enters; or a number for every system."""
    k = getattr(args, "n_conserved", "true")
    if k == "true":
        return L + args.extra
    return M if k == "phase" else int(k)


def k_text(args) -> str:
    k = getattr(args, "n_conserved", "true")
    if k == "true":
        return f"K = true + {args.extra}"
    return ("K = M, the phase-space dimension (not the true one)" if k == "phase"
            else f"K = {k} for every system (not the true dimension)")


def _n_conserved_arg(text: str):
    if text in ("phase", "true"):
        return text
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise argparse.ArgumentTypeError(
            f"expected 'phase', 'true' or a positive int, got {text!r}")
    return k


def run_one(name: str, key: int, args) -> dict:
    registry = {**systems.PAPER, **systems.SUITE}
    system = registry[name]()
    truth = system.generators()
    L = truth.shape[0]
    M = system.phase_dim
    train = train_data(system, key, trajectories=args.trajectories, points=args.points,
                       dt=args.dt)
    test = test_data(system, key, dt=args.dt)
    spec = model_spec(vars(args), n_conserved_of(args, L, M))
    razor = models.NoetherRazor(spec, phase_dim=M)
    steps, select_steps = steps_of(name, args)
    t = time.perf_counter()
    auto = analysis.fit_auto(razor, train, key=jax.random.key(key), num_steps=steps,
                             select_steps=select_steps, lr=args.lr,
                             lr_conserved=args.lr_conserved, batch_size=args.batch_size,
                             select_kwargs={"lr": args.lr / 3, "lr_conserved": args.lr_conserved,
                                            "batch_size": args.batch_size,
                                            **({"built_in": True} if args.built_in else {}),
                                            **({"refit_learns": True}
                                               if args.refit_learns else {}),
                                            **({"refit_lr_conserved":
                                                args.refit_lr_conserved}
                                               if getattr(args, "refit_lr_conserved", None)
                                               is not None else {}),
                                            **({"cuts": args.cuts} if args.cuts > 1 else {}),
                                            **({"refit_steps": args.refit_steps}
                                               if args.refit_steps is not None else {}),
                                            **({"grow": True} if args.grow else {}),
                                            **({"extend": True}
                                               if getattr(args, "extend", False) else {}),
                                            **({"close": True}
                                               if getattr(args, "close", False) else {}),
                                            **({"spectrum_samples": args.spectrum_samples}
                                               if getattr(args, "spectrum_samples", None)
                                               else {}),
                                            **({"evidence_samples": args.evidence_samples}
                                               if getattr(args, "evidence_samples", None)
                                               else {}),
                                            **({"refit_from": args.refit_from}
                                               if getattr(args, "refit_from", "continue")
                                               != "continue" else {}),
                                            **({"refit_sizes": tuple(args.refit_sizes)}
                                               if getattr(args, "refit_sizes", None)
                                               else {}),
                                            "stop": args.stop},
                             criterion=args.criterion,
                             start_directions=args.start_directions,
                             symmetrised_hnn=args.symmetrised_hnn)
    wall = time.perf_counter() - t
    d = auto.discovery
    k_eval = jax.random.key(7)
    hnn_elbo = analysis.elbo_terms(auto.hnn, train, key=k_eval)
    sel_elbo = analysis.elbo_terms(auto.result, train, key=k_eval)
    row = {
        "system": name, "key": key, "true_dim": L, "K": spec.n_conserved,
        "steps": steps, "select_steps": select_steps,
        "razor_dim": auto.dimension, "razor_min_par": _min_par(auto.generators, truth),
        "razor_start": auto.start, "razor_kept": auto.kept,
        "selected_minus_hnn_elbo": auto.hnn_delta, "selected_minus_hnn_se": auto.hnn_se,
        "hnn_dim": d.dimension, "hnn_identified": d.identified,
        "hnn_min_par": _min_par(d.generators, truth),
        "razor_neg_elbo_per_n": sel_elbo["neg_elbo_per_n"],
        "razor_neg_elbo_se_per_n": sel_elbo["neg_elbo_se_per_n"],
        "hnn_neg_elbo_per_n": hnn_elbo["neg_elbo_per_n"],
        "hnn_neg_elbo_se_per_n": hnn_elbo["neg_elbo_se_per_n"],
        "razor_test_mse": analysis.one_step_mse(auto.result, test, key=k_eval),
        "hnn_test_mse": analysis.one_step_mse(auto.hnn, test, key=k_eval),
        "wall_s": wall, "stages_s": auto.wall_s, "selection": auto.selection.to_dict(),
        "symmetrised_vs_selected": auto.symmetrised_vs_selected,
    }
    # identifiability: the true H's residual of the best-conserved quadratic direction outside
    # its conserved span, on the training states (what a fit must resolve to see it broken)
    x = np.asarray(train.states, np.float64).reshape(-1, M)
    r_true, _ = inference.conservation_spectrum(system.hamiltonian, x)
    row["true_margin"] = float(r_true[L]) if L < r_true.size else None
    # what the selection's own rule reads on the exact H (identifiability.py): a fit read by
    # that rule cannot be expected to find L where this differs from L
    row["true_rule_dim"] = inference.spectrum_dimension(r_true, DEFAULT_MAX_RESIDUAL)[0]
    # scoring only: how well each fit's Ĥ conserves each true direction (which one a wrong
    # dimension misses)
    if L:
        names = system.generator_names()
        for who, fitted in (("razor", auto.result), ("hnn", auto.hnn)):
            r_fit = inference.conservation_residuals(fitted, truth, x, key=k_eval)
            row[f"{who}_true_residuals"] = dict(zip(names, map(float, r_fit), strict=True))
    row["razor_gap"] = auto.selection.gap_ratio
    # scoring only: which directions of the spectrum the cut and the extension took or left
    row.update(spectrum_scores(auto.selection.steps, truth))
    row["razor_ok"] = bool(row["razor_dim"] == L and (L == 0 or row["razor_min_par"] > args.par))
    # step 4 as it was before the equal budget: the selection against the step-1 HNN, not
    # continued (the selection itself is the same either way; only step 4 differs)
    row["hnn_continued_steps"] = auto.hnn_continued_steps
    row["hnn_continuation"] = auto.hnn_continuation  # how it stopped, if it did
    d1, se1, _, _ = inference.elbo_difference(auto.selection.result, auto.hnn, train,
                                              key=jax.random.key(8))
    sel_dim = auto.selection.dimension
    kept1 = "hnn" if d1 < -(DEFAULT_TOLERANCE + 2.0 * se1) else "selected"
    par1 = _min_par(np.asarray(auto.selection.generators), truth)
    row["unequal_budget"] = {"delta": d1, "se": se1, "kept": kept1,
                             "razor_dim": 0 if kept1 == "hnn" else sel_dim}
    row["razor_ok_unequal_budget"] = bool(
        L == 0 if kept1 == "hnn" else (sel_dim == L and (L == 0 or par1 > args.par)))
    row["hnn_ok"] = bool(row["hnn_dim"] == L
                         and (L == 0 or row["hnn_min_par"] > args.par))
    # step 4 with the selected fit's Ĥ estimated with more symmetry samples (scoring an
    # alternative rule: the selection itself is unchanged)
    if args.eval_sym_samples and auto.selection.result.model.n_conserved:
        hnn = auto.hnn if auto.hnn_compared is None else auto.hnn_compared
        row["step4_sym_samples"] = {}
        for S in args.eval_sym_samples:
            dS, seS, _, _ = inference.elbo_difference(
                auto.selection.result.with_sym_samples(S), hnn, train, key=jax.random.key(9))
            keptS = "hnn" if dS < -(DEFAULT_TOLERANCE + 2.0 * seS) else "selected"
            row["step4_sym_samples"][str(S)] = {
                "delta": dS, "se": seS, "kept": keptS,
                "ok": bool(L == 0 if keptS == "hnn" else (
                    sel_dim == L and (L == 0 or par1 > args.par)))}
    return row


def likelihood_words(settings: dict) -> str:
    """The likelihood's Monte-Carlo estimate of a run's ``settings`` in words, "" for the
    paper's plug-in (also for settings recorded before ``--mc-likelihood``)."""
    kind = settings.get("mc_likelihood", "plug-in")
    if kind == "plug-in":
        return ""
    groups = settings.get("mc_groups", 2)
    return f"{kind} Monte-Carlo likelihood" + (f" over {groups} groups" if groups != 2 else "")


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def _continued(row) -> str:
    """Where step 4 kept the plain HNN, the returned fit is that HNN continued (the −ELBO/N
    and test MSE "razor" cells are its)."""
    n = row.get("hnn_continued_steps")
    return f" (HNN + {n} steps)" if row.get("razor_kept") == "hnn" and n else ""


def _built_in(row) -> str:
    """Where the selection returned the fit its quantities were read from (the refit at them
    had the lower ELBO), that fit is symmetrised over its own learned generators, not over the
    selected ones: how many, and how many of them lie outside the selected span
    (``Selection.built_in``; share below ``SELECTED_MIN_SHARE``)."""
    built_in = (row.get("selection") or {}).get("built_in")
    if row.get("razor_kept") != "selected" or not built_in:
        return ""
    outside = sum(b["share"] < SELECTED_MIN_SHARE for b in built_in)
    return f" (fit over {len(built_in)} learned, {outside} outside)"


def _worst_true(row) -> str:
    """The true direction each fit's Ĥ conserves least, with its residual (scoring only)."""
    parts = []
    for who in ("razor", "hnn"):
        res = row.get(f"{who}_true_residuals")
        if not res:
            return "–"
        name = max(res, key=res.get)
        parts.append(f"{name} {res[name]:.3f}")
    return " / ".join(parts)


def table(rows, args) -> str:
    out = [f"Discovery at CPU scale: {args.trajectories} trajectories x {args.points} steps, "
           f"MLP {args.hidden}, S = {args.sym_samples}, {k_text(args)}, "
           + (f"σ² = {args.noise_variance:g}, "
              if getattr(args, "noise_variance", NOISE_VARIANCE) != NOISE_VARIANCE else "")
           + (f"Δt = {args.dt:g}, " if getattr(args, "dt", None) is not None else "")
           + (f"{words}, " if (words := likelihood_words(vars(args))) else "")
           + (f"likelihood mean {args.substeps} x {args.integrator}, "
              if (getattr(args, "integrator", INTEGRATOR), getattr(args, "substeps", SUBSTEPS))
              != (INTEGRATOR, SUBSTEPS) else "")
           + f"{args.steps} steps (selection: {args.select_steps} per continuation, criterion "
           f"{args.criterion!r}" + (", built-in generators added to the spectrum's span"
                                     if args.built_in else "")
           + (", the refit goes on learning the selected quantities"
              + (f" at lr_conserved {args.refit_lr_conserved:g}"
                 if getattr(args, "refit_lr_conserved", None) is not None else "")
              if args.refit_learns else "")
           + (f", the refits of the spectrum's {args.cuts} largest gaps compared by the ELBO"
              if getattr(args, "cuts", 1) > 1 else "")  # (settings recorded before --cuts)
           + (f", the refit at the selected quantities {args.refit_steps} steps"
              if getattr(args, "refit_steps", None) is not None else "")
           + (", refitted again where the refit's own H reads more conserved quantities"
              if getattr(args, "grow", False) else "")
           + (f", the completion's spectra read with {args.spectrum_samples} symmetry samples"
              if getattr(args, "spectrum_samples", None) else "")
           + (f", the selection's and step 4's ELBO comparisons with {args.evidence_samples} "
              f"symmetry samples (the −ELBO/N columns at the models' S = {args.sym_samples})"
              if getattr(args, "evidence_samples", None) else "")
           + (", refitted at one direction more while the ELBO rises (extend)"
              if getattr(args, "extend", False) else "")
           + (", the selected span closed under the Lie bracket and refitted unless the ELBO "
              "is against it (close)" if getattr(args, "close", False) else "")
           + (", every refit from a fresh initial state for the learned fit's steps, the "
              "extension's next direction read off the refit's own spectrum (refit_from "
              "fresh)" if getattr(args, "refit_from", "continue") == "fresh" else "")
           + (", each refit at " + ", ".join(f"{f:g}" for f in args.refit_sizes)
              + " times the learned generators' median σ"
              + (", the size chosen by the ELBO" if len(args.refit_sizes) > 1 else "")
              + " (refit_sizes)" if getattr(args, "refit_sizes", None) else "")
           + (", step 4 also continues the HNN with the selected symmetry fixed"
              if getattr(args, "symmetrised_hnn", LEGACY_SETTINGS["symmetrised_hnn"]) else "")
           + (", removals stop where the fitted H's spectrum reads as many directions as are "
              "learned" if getattr(args, "stop", LEGACY_SETTINGS["stop"]) == "spectrum"
              else "")
           + (", the razor's discovered start at the HNN's K most conserved directions"
              if args.start_directions == "most-conserved" else
              ", the razor's discovered start at the HNN's directions below its gap")
           + "".join(f"; {n}: {s} steps (selection: {ss} per continuation)"
                     for n, (s, ss) in dict.fromkeys(
                         (r["system"], (r.get("steps", args.steps),
                                        r.get("select_steps", args.select_steps)))
                         for r in rows) if s != args.steps)
           + "); success = "
           f"dimension equal and every selected direction at parallelness > {args.par}.", "",
           "| system | key | true | margin | exact H, rule | razor dim | gap | min par | start | "
           "HNN+discover dim | min par | −ELBO/N razor | −ELBO/N HNN | test MSE razor | "
           "test MSE HNN | least conserved true direction: razor / HNN | wall (s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        hnn_dim = f"{r['hnn_dim']}" + ("" if r["hnn_identified"] else " (no gap)")
        out.append(
            f"| {r['system']} | {r['key']} | {r['true_dim']} | "
            f"{_fmt(r.get('true_margin'), '.3f')} | {_fmt(r.get('true_rule_dim'), 'd')} | "
            f"{r['razor_dim']}"
            f"{' (HNN kept)' if r.get('razor_kept') == 'hnn' else ''}"
            f"{' (HNN symmetrised)' if r.get('razor_kept') == 'hnn-symmetrised' else ''}"
            f"{_built_in(r)} | {_fmt(r.get('razor_gap'), '.3g')} | "
            f"{_fmt(r['razor_min_par'], '.3f')} | "
            f"{r['razor_start']} | {hnn_dim} | "
            f"{_fmt(r['hnn_min_par'], '.3f')} | {r['razor_neg_elbo_per_n']:.2f} ± "
            f"{r['razor_neg_elbo_se_per_n']:.2f}{_continued(r)} | {r['hnn_neg_elbo_per_n']:.2f} ± "
            f"{r['hnn_neg_elbo_se_per_n']:.2f} | {r['razor_test_mse']:.3e} | "
            f"{r['hnn_test_mse']:.3e} | {_worst_true(r)} | {r['wall_s']:.0f} |")
    both = all("razor_ok_unequal_budget" in r for r in rows)
    below_head = ("returned fit's −ELBO/N below the step-1 HNN's" if both
                  else "razor −ELBO/N below HNN's")
    out += ["", f"| system | razor: right | HNN+discover: right | {below_head} |"
            + (" razor: right with step 4 against the HNN not continued |" if both else ""),
            "|---|---:|---:|---:|" + ("---:|" if both else "")]
    for name in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == name]
        n = len(rs)
        below = sum(r["razor_neg_elbo_per_n"] < r["hnn_neg_elbo_per_n"] for r in rs)
        out.append(f"| {name} | {sum(r['razor_ok'] for r in rs)}/{n} | "
                   f"{sum(r['hnn_ok'] for r in rs)}/{n} | {below}/{n} |"
                   + (f" {sum(r['razor_ok_unequal_budget'] for r in rs)}/{n} |"
                      if both else ""))
    samples = list(getattr(args, "eval_sym_samples", None) or [])
    if samples:
        out += ["", "Step 4 with the selected fit's Ĥ estimated with S symmetry samples (the "
                "selection unchanged; a row whose selection kept no quantity counts as at "
                "S = " f"{args.sym_samples}): razor right, and ELBO selected − HNN per key "
                "(nats ± standard error):", "",
                "| system | S | razor: right | ELBO selected − HNN per key |",
                "|---|---:|---:|---|"]
        for name in dict.fromkeys(r["system"] for r in rows):
            rs = [r for r in rows if r["system"] == name]
            for S in samples:
                got = [r.get("step4_sym_samples", {}).get(str(S)) for r in rs]
                ok = sum(g["ok"] if g else r["razor_ok"] for g, r in zip(got, rs, strict=True))
                cells = ", ".join("–" if g is None else f"{g['delta']:+.0f} ± {g['se']:.0f}"
                                  for g in got)
                out.append(f"| {name} | {S} | {ok}/{len(rs)} | {cells} |")
    if getattr(args, "extend", False):
        out += ["", "The extension (select_conserved(extend=True)): the spectrum's cut at its "
                "largest gap, each refit at one direction more with its ELBO against the "
                "chosen refit (nats ± standard error; ✓ kept where above the tolerance plus "
                "twice the standard error), and the dimension selected:", "",
                "In parentheses (scoring only): the candidate direction's share in the true span; "
                "last column: the parallelness of the span of the spectrum's first `true` "
                "directions to the true span (– where the row did not record the spectrum's "
                "directions)."
                + (" ×f: the multiple of the learned generators' median σ the ELBO chose for "
                   "that refit (refit_sizes)."
                   if len(getattr(args, "refit_sizes", None) or ()) > 1 else ""),
                "",
                "| system | key | true | cut at the gap | refits at one more | selected | "
                "spectrum's first `true`: par |",
                "|---|---:|---:|---:|---|---:|---:|"]
        for r in rows:
            last = ((r.get("selection") or {}).get("steps") or [{}])[-1]
            ext = last.get("extended")
            if ext is None:
                continue
            first = ext[0]["spectrum_selected"] - 1 if ext else last["selected"]
            shares = r.get("spectrum_true_shares")
            # each candidate's share: from its own spectrum where the extension read one
            own = r.get("extended_true_shares") or [None] * len(ext)
            cells = ", ".join(f"{e['spectrum_selected']}: {e['delta_vs_chosen']:+.0f} ± "
                              f"{e['se']:.0f} {'✓' if e['chosen'] else '✗'}" + _size(e)
                              + (f" ({o:.2f})" if o is not None else
                                 f" ({shares[e['spectrum_selected'] - 1]:.2f})"
                                 if shares else "") for e, o in zip(ext, own, strict=True))
            out.append(f"| {r['system']} | {r['key']} | {r['true_dim']} | {first}{_size(last)} | "
                       f"{cells or '–'} | {last['selected']} | "
                       f"{_fmt(r.get('spectrum_first_true_par'), '.3f')} |")
    if getattr(args, "close", False):
        out += ["", "The closure under the bracket (select_conserved(close=True)): the span "
                "selected before it, the singular values of its brackets' parts outside it "
                f"(above {BUILT_IN_MIN_PART:g} a direction is a candidate), the candidates' "
                "residuals under the "
                "fitted H (added at most max_residual), the refit at the closed span against "
                "the chosen refit (nats ± standard error; kept unless below the tolerance plus "
                "twice the standard error), and the dimension selected. In parentheses "
                "(scoring only): each added direction's share in the true span.", "",
                "| system | key | true | before | bracket parts | residuals | closed refit | "
                "selected |",
                "|---|---:|---:|---:|---|---|---|---:|"]
        for r in rows:
            last = ((r.get("selection") or {}).get("steps") or [{}])[-1]
            closed = last.get("closed")
            if closed is None:
                continue
            first = closed["rounds"][0] if closed["rounds"] else {}
            parts = ", ".join(f"{v:.2f}" for v in first.get("singular_values", [])[:3]) or "–"
            res = "; ".join(", ".join(f"{v:.3f}" for v in rd.get("residuals", []))
                            for rd in closed["rounds"] if rd.get("residuals")) or "–"
            shares = r.get("closed_true_shares")
            refit = ("–" if "selected" not in closed else
                     f"{closed['selected']}: {closed['delta']:+.0f} ± {closed['se']:.0f} "
                     + ("✓" if closed["kept"] else "✗")
                     + (" (" + ", ".join(f"{v:.2f}" for v in shares) + ")" if shares else ""))
            out.append(f"| {r['system']} | {r['key']} | {r['true_dim']} | {closed['from']} | "
                       f"{parts} | {res} | {refit} | {last['selected']} |")
    return "\n".join(out) + "\n"


def _size(entry: dict) -> str:
    """`` ×f`` where the ELBO chose the refit's size among several (``refit_sizes``)."""
    return f" ×{entry['size_factor']:g}" if "size_factor" in entry else ""


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The systems, keys and training-data sizes (also ``identifiability.py``'s)."""
    p.add_argument("--systems", nargs="+", default=ORDER)
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--trajectories", type=int, default=50)
    p.add_argument("--points", type=int, default=10, help="steps per trajectory")


def check_systems(p: argparse.ArgumentParser, names) -> None:
    unknown = sorted(set(names) - set(systems.PAPER) - set(systems.SUITE))
    if unknown:
        p.error(f"unknown systems {unknown}; known: {sorted({**systems.PAPER, **systems.SUITE})}")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The model and its data's Δt (also ``true_start.py``'s)."""
    p.add_argument("--hidden", nargs="+", type=int, default=[64, 64])
    p.add_argument("--sym-samples", type=int, default=16)
    p.add_argument("--noise-variance", type=float, default=NOISE_VARIANCE,
                   help="the likelihood's σ² (the paper's 1e-3 by default)")
    p.add_argument("--dt", type=float, default=None,
                   help="the time step of the training and test pairs (default: each system's "
                        "splits')")
    p.add_argument("--integrator", default=INTEGRATOR, choices=sorted(INTEGRATORS),
                   help="the likelihood mean's integrator (default: the package's)")
    p.add_argument("--substeps", type=int, default=SUBSTEPS,
                   help="its steps per Δt (default: the package's)")
    p.add_argument("--mc-likelihood", default="plug-in", choices=models.MC_LIKELIHOODS,
                   help="the likelihood's Monte-Carlo estimate (ModelSpec.mc_likelihood; default "
                        "the paper's plug-in)")
    p.add_argument("--mc-groups", type=int, default=2,
                   help="its independent groups of symmetry samples (ModelSpec.mc_groups)")
    p.add_argument("--extra", type=int, default=1,
                   help="K = true dimension + extra (discovery.py: with --n-conserved true)")


def add_fit_arguments(p: argparse.ArgumentParser) -> None:
    """The fits' and the selection's settings and the score (also ``true_start.py``'s)."""
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--select-steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-conserved", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--par", type=float, default=0.95)
    p.add_argument("--criterion", default="conserved", choices=["conserved", "elbo", "both"],
                   help="select_conserved's rule")


def parser() -> argparse.ArgumentParser:
    """The command line; its defaults are the benchmark's settings (a packaged experiment of
    a suite system, e.g. ``central-quartic``, holds the same)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p)
    add_model_arguments(p)
    p.add_argument("--n-conserved", type=_n_conserved_arg, default="true",
                   help="the razor's K: 'true' (K = true dimension + extra), 'phase' (K = M, "
                   "the phase-space dimension: no setting knows the answer) or a positive int "
                   "for every system")
    add_fit_arguments(p)
    p.add_argument("--built-in", action="store_true",
                   help="select_conserved(built_in=True): also select the fit's own generators "
                   "where they leave the spectrum's span (an alternative under measurement)")
    p.add_argument("--refit-learns", action="store_true",
                   help="select_conserved(refit_learns=True): the refit at the selected "
                   "quantities goes on learning them (an alternative under measurement)")
    p.add_argument("--refit-lr-conserved", type=float, default=None,
                   help="select_conserved(refit_lr_conserved=R), with --refit-learns: η's rate "
                   "in the refits that learn it (default: --lr-conserved)")
    p.add_argument("--cuts", type=int, default=1,
                   help="select_conserved(cuts=N): refit the spectrum's N largest gaps and "
                   "keep the cut whose refit has the highest ELBO (an alternative under "
                   "measurement; 1: the largest gap only, the package's rule)")
    p.add_argument("--refit-steps", type=int, default=None,
                   help="select_conserved(refit_steps=N): steps of the refit at the selected "
                   "quantities (default: the selection's steps per continuation)")
    p.add_argument("--grow", action="store_true",
                   help="select_conserved(grow=True): refit again where the refit's own H "
                   "reads more conserved quantities than it holds (an alternative under "
                   "measurement)")
    p.add_argument("--extend", action="store_true",
                   help="select_conserved(extend=True): after the spectrum's cut, refit at one "
                   "direction more while the ELBO rises (an alternative under measurement)")
    p.add_argument("--close", action="store_true",
                   help="select_conserved(close=True): complete the selected span under the "
                   "Lie bracket (Poisson's theorem) and refit there unless the ELBO is "
                   "against it (an alternative under measurement)")
    p.add_argument("--refit-from", default="continue", choices=REFIT_FROM,
                   help="select_conserved(refit_from=...): 'fresh' fits each refit at the "
                   "selected quantities from a fresh initial state for the learned fit's "
                   "steps (or --refit-steps) and reads the extension's next direction off "
                   "the refit's own spectrum (an alternative under measurement; 'continue': "
                   "the package's)")
    p.add_argument("--refit-sizes", type=float, nargs="+", default=None,
                   help="select_conserved(refit_sizes=...): fit each refit at these multiples "
                   "of the learned generators' median σ and let the ELBO choose (an "
                   "alternative under measurement; default: the median σ alone)")
    p.add_argument("--evidence-samples", type=int, default=None,
                   help="select_conserved(evidence_samples=S'): estimate the selection's ELBO "
                        "comparisons, and step 4's, with S' symmetry samples (default: the "
                        "model's S)")
    p.add_argument("--spectrum-samples", type=int, default=None,
                   help="select_conserved(spectrum_samples=S'): read the completion's spectra "
                   "with the fitted H estimated from S' symmetry samples")
    p.add_argument("--symmetrised-hnn", action=argparse.BooleanOptionalAction,
                   default=analysis.DEFAULT_SYMMETRISED_HNN,
                   help="fit_auto(symmetrised_hnn=...): step 4 also continues the plain HNN "
                   "with the selected symmetry fixed and keeps the better symmetric fit by "
                   "ELBO (default: the package's)")
    p.add_argument("--stop", default=DEFAULT_STOP, choices=STOPS,
                   help="select_conserved(stop=...): 'spectrum' also stops the removals where "
                   "the fitted H's spectrum reads at least as many conserved directions as "
                   "are learned, 'conserved' removes until every learned one is conserved "
                   "(default: the package's)")
    p.add_argument("--start-directions", default=analysis.DEFAULT_START_DIRECTIONS,
                   choices=analysis.START_DIRECTIONS,
                   help="fit_auto(start_directions=...): the plain HNN's K most conserved "
                   "directions (default) or those below its spectrum's gap start the razor")
    p.add_argument("--eval-sym-samples", nargs="+", type=int, default=[],
                   help="also score step 4 with the selected fit's Ĥ estimated with these "
                   "numbers of symmetry samples (the rows' step4_sym_samples; the selection "
                   "itself is unchanged)")
    p.add_argument("--topic", default="discovery")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in the topic's record (same settings) and run "
                        "only the missing system/key pairs")
    add_rebuild_argument(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:
        _, old, _ = read_record(args.topic)
        # a setting the record predates counts at its value then (LEGACY_SETTINGS)
        recorded = argparse.Namespace(**{**vars(args), **LEGACY_SETTINGS, **old["settings"]})
        text = table(old["rows"], recorded)
        rewrite_record(args.topic, text, how=f"python discovery.py --rebuild --topic {args.topic}")
        print(text)
        return 0
    check_systems(p, args.systems)
    if args.cuts < 1:
        p.error(f"--cuts: expected a positive int, got {args.cuts}")
    if args.refit_steps is not None and args.refit_steps < 1:
        p.error(f"--refit-steps: expected a positive int, got {args.refit_steps}")
    if args.spectrum_samples is not None and args.spectrum_samples < 1:
        p.error(f"--spectrum-samples: expected a positive int, got {args.spectrum_samples}")
    if args.evidence_samples is not None and args.evidence_samples < 1:
        p.error(f"--evidence-samples: expected a positive int, got {args.evidence_samples}")
    if args.refit_sizes is not None and not valid_sizes(args.refit_sizes):
        p.error(f"--refit-sizes: expected distinct positive numbers, got {args.refit_sizes}")
    try:
        check_refit_rate(args.refit_lr_conserved, args.refit_learns)
    except ValueError as err:
        p.error(f"--refit-lr-conserved (with --refit-learns): {err}")
    if args.substeps < 1:
        p.error(f"--substeps: expected a positive int, got {args.substeps}")
    if args.dt is not None and not args.dt > 0:
        p.error(f"--dt: expected a positive number, got {args.dt}")
    settings = {k: v for k, v in vars(args).items()
                if k not in ("systems", "keys", "resume", "rebuild")}
    rows, commands, earlier_s = [], [], 0.0
    if args.resume:
        _, old, meta = read_record(args.topic)
        # a setting added since the record was written counts at the value it had then
        # (LEGACY_SETTINGS), or else at its default
        then = {k: old["settings"].get(k, LEGACY_SETTINGS.get(k, p.get_default(k)))
                for k in settings}
        differ = {k: (then[k], v) for k, v in settings.items() if then[k] != v}
        if differ:
            p.error(f"--resume: the record of {args.topic!r} has other settings: {differ}")
        rows, earlier_s = old["rows"], float(meta["wall_s"])
        commands = meta.get("commands", [meta["command"]])
    done = {(r["system"], r["key"]) for r in rows}
    commands = [*commands, shlex.join(["python", *sys.argv])]
    enable_compilation_cache()  # the same programs for every key: compile once
    start = time.perf_counter()
    for name in args.systems:
        for key in args.keys:
            if (name, key) in done:
                continue
            rows.append(run_one(name, key, args))
            jax.clear_caches()  # one process runs many shapes: keep its compiled code bounded
            print(f"{name} key {key}: razor {rows[-1]['razor_dim']} "
                  f"(ok={rows[-1]['razor_ok']}), HNN+discover {rows[-1]['hnn_dim']} "
                  f"(ok={rows[-1]['hnn_ok']}), {rows[-1]['wall_s']:.0f} s", flush=True)
            write_record(args.topic, table=table(rows, args),
                         metrics={"settings": {**settings, "systems": args.systems,
                                               "keys": args.keys}, "rows": rows},
                         command=commands[-1], commands=commands,
                         wall_s=earlier_s + time.perf_counter() - start)
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
