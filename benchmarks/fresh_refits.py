"""Does the selection's refit refuse a direction because of where it starts?

``select_conserved(extend=True)`` (``noether_ppl/inference/complete.py``) refits F with the
symmetry fixed at the first D directions of the fitted Ĥ's spectrum and at D + 1, and keeps
D + 1 where its ELBO is higher. Each refit *continues* the learned fit's variational state
(``refit_at``: ``continue_fit`` from ``before.params``, ``refit_steps`` steps at the selection's
learning rate), a network trained under the learned generators. On two bodies the extension
refused a (D+1)-th direction that lies in the true span (``records/discovery-two-body-evidence/``,
keys 1 and 2: share 0.99), while from fits with the true symmetry held fixed the refit at 7
beat the one at 6 on 5 of 5 keys (``records/two-body-spectrum-refits/``).

This script separates the start from the directions. For each key of a discovery record made
with ``--extend`` it takes the directions that record's completion read
(``selection.steps[-1].spectrum_directions``, the spectrum's first D + 2 unit generators, D the
cut it selected, and its refits' ``size``) and fits F *from a fresh initial state* (fit key
``fold_in(key, 17)``, the same for both) with the symmetry held fixed at ``size`` times an
orthonormal basis of the first D and of the first D + 1 of them, for the learned fit's budget
(the record's ``steps``, ``lr``, ``batch_size``; its data, model and likelihood settings). It
reports the paired ELBO difference (D+1) − D with the record's ``evidence_samples`` symmetry
samples (:func:`~noether_ppl.inference.elbo_difference`, nats ± standard error on the
training pairs), as the extension compares, and sets each fresh fit's −ELBO/N beside the
record's continuation refits' (same S'; another evaluation key). The (D+1)-th direction's
share in the true span (from the record) and the fits' one-step test MSE only score: no
ground truth enters a fit or a comparison.

``--fits`` chooses the fresh fits set against the fit at D (each from the same fresh start,
its paired ELBO difference against that fit):

- ``one-more`` (the default): at the record's first D + 1 directions, as above;
- ``true`` (or ``--true``): a diagnostic that ground truth fixes, at an orthonormal basis of
  the *true* span (``system.generators()``) at the same size. Where the record's D + 1
  directions lose to its D but the true span wins, the (D+1)-th direction read is not accurate
  enough; where the true span loses too, the evidence at this size prefers fewer directions
  than the system conserves;
- ``reread``: the spectrum read again from the fresh fit at D's own Ĥ (``--spectrum-samples``,
  the source's by default; the selection's rule, as ``select_conserved(grow=True)`` reads a
  refit) and a fit at its first D + 1 directions: does a fit symmetrised over the first D,
  not the learned fit, point at a more accurate (D+1)-th direction? Scoring records that
  direction's share in the true span and its span's parallelness;
- ``reread-learned``: the same D + 1 directions read again, but as the start of a fit that
  goes on learning them (η initialised at them, Eq. 4 inverted, at the size; learned at the
  source's ``lr_conserved``, or ``--lr-conserved``; the fit
  ``select_conserved(refit_from="fresh", refit_learns=True)`` makes at D + 1): does the
  ELBO's own gradient carry a direction read near the true span closer to it? Scoring
  records the learned span's parallelness to the true span, each learned direction's, and
  how far learning moved the span from the one read (the smallest cosine between the two).

``--sizes F1 F2 ...`` fits each of them at these multiples of the size (times
``--size-scale``), from the same start, and keeps the one the ELBO chooses with the package's
rule (:func:`~noether_ppl.inference.complete.choose_size`, what
``select_conserved(refit_sizes=...)`` does for each refit); the comparisons above are then
between the fits chosen, and a table lists each fit's sizes.

Usage::

    python fresh_refits.py --source discovery-two-body-evidence --keys 1 2 --true \\
        --topic two-body-fresh-refits
    python fresh_refits.py --source discovery-two-body-evidence --keys 1 2 --fits reread \\
        --topic two-body-fresh-reread

The record is written after every key (``--resume`` continues it with the same settings).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import jax
import numpy as np
from discovery import model_spec, test_data, train_data
from record import add_topic_arguments, read_record, rebuild, write_record

from noether_ppl import analysis, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.geometry import span_basis
from noether_ppl.inference import DivergenceError, elbo_difference, fit
from noether_ppl.inference.complete import choose_size, valid_sizes
from noether_ppl.inference.conservation import (
    conservation_spectrum,
    principal_generators,
    spectrum_cuts,
)
from noether_ppl.inference.evidence import DEFAULT_REPEATS
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL, DEFAULT_TOLERANCE
from noether_ppl.models.conserved_init import conserved_params_from_generators

FIT_FOLD = 17
"""The fresh fits' key: ``fold_in(key(k), FIT_FOLD)`` for data-and-fit key k."""


def read_cut(row: dict) -> dict:
    """What the completion of a discovery record's ``row`` read and chose: ``cut`` D (the
    dimension its spectrum selected), ``directions`` ``(D+2, M+1, M+1)``, ``size``, and its
    continuation refits at D and D + 1 (``"at_cut"``, ``"one_more"``: −ELBO/N at the
    comparison's S', and the extension's difference ± standard error)."""
    steps = row["selection"]["steps"]
    last = steps[-1] if steps else {}
    if last.get("reason") != "spectrum" or not last.get("extended"):
        raise ValueError(f"key {row['key']}: the record's selection has no extension "
                         "(a discovery record made with --extend is needed)")
    directions = np.asarray(last["spectrum_directions"], np.float64)
    cut = directions.shape[0] - 2  # the completion records its first D + 2 directions
    first = last["extended"][0]
    if first["spectrum_selected"] != cut + 1:
        raise ValueError(f"key {row['key']}: the extension's first refit is at "
                         f"{first['spectrum_selected']}, not one past the cut {cut}")
    return {"cut": cut, "directions": directions, "size": float(last["size"]),
            "at_cut": {"neg_elbo_per_n": last["neg_elbo_per_n_selected"]},
            "one_more": {"neg_elbo_per_n": first["neg_elbo_per_n"],
                         "delta": first["delta_vs_chosen"], "se": first["se"]}}


def fixed_model(spec: models.ModelSpec, generators: np.ndarray, M: int) -> models.NoetherRazor:
    """The razor with its symmetry held fixed at ``generators (D, M+1, M+1)``."""
    return models.NoetherRazor(spec.replace(n_conserved=generators.shape[0]), phase_dim=M,
                               generators=generators)


def run_one(row: dict, settings: dict, args) -> dict:
    """The source record's ``row`` fitted from a fresh start at its cut D and at each of
    ``fit_kinds(args)``, each compared with the fit at D (module docstring)."""
    system = {**systems.PAPER, **systems.SUITE}[row["system"]]()
    M = system.phase_dim
    key = row["key"]
    train = train_data(system, key, trajectories=settings["trajectories"],
                       points=settings["points"], dt=settings["dt"])
    test = test_data(system, key, dt=settings["dt"])
    spec = model_spec(settings, 1)  # the fits set n_conserved to their generators'
    read = read_cut(row)
    D, S = read["cut"], read["directions"]
    truth = np.asarray(system.generators(), np.float64)
    k_fit = jax.random.fold_in(jax.random.key(key), FIT_FOLD)
    fits, out = {}, {"system": row["system"], "key": key, "cut": D, "stopped": [],
                     "true_dim": int(truth.shape[0]),
                     "size": args.size_scale * read["size"],
                     "share_one_more": row["spectrum_true_shares"][D],
                     "record_first_par": (row.get("spectrum_first_true_par")
                                          if D + 1 == truth.shape[0] else None),
                     "continuation": {"at_cut": read["at_cut"], "one_more": read["one_more"]}}
    states = np.asarray(train.states, np.float64).reshape(-1, M)

    def compare(a, b, k):
        """The paired ELBO difference a − b, the extension's evaluation."""
        return elbo_difference(a, b, train, key=k, num_repeats=args.num_repeats,
                               sym_samples=args.evidence_samples)

    def fit_at(name, directions, learned=False):
        """The fresh fit at ``size`` times an orthonormal basis of ``directions`` (with
        ``--sizes``: at each multiple of it, the ELBO choosing as ``refit_sizes`` does); with
        ``learned``, η starts there and is learned at ``args.lr_conserved``."""
        basis = span_basis(directions).reshape(-1, M + 1, M + 1)

        def fitted_at(factor):
            G = factor * out["size"] * basis
            if learned:
                model = models.NoetherRazor(spec.replace(n_conserved=G.shape[0]), phase_dim=M)
                how = {"init_params": conserved_params_from_generators(
                    G, G.shape[0], key=k_fit, scale=1.0, dtype=model.dtype),
                    "lr_conserved": args.lr_conserved}
            else:
                model, how = fixed_model(spec, G, M), {}
            try:
                return fit(model, train, key=k_fit, num_steps=args.steps, lr=settings["lr"],
                           batch_size=settings["batch_size"], progress_bar=False, **how)
            except DivergenceError as err:  # its last good state, noted
                out["stopped"].append({"dimension": name, "factor": factor,
                                       "step": int(err.step)})
                return err.result

        t = time.perf_counter()
        if getattr(args, "sizes", None):
            k_size = jax.random.fold_in(jax.random.key(13), len(fits))
            fits[name], entries = choose_size(fitted_at, tuple(args.sizes), compare, k_size,
                                              DEFAULT_TOLERANCE)
            out[f"sizes_{name}"] = entries
        else:
            fits[name] = fitted_at(1.0)
        out[f"fit_s_{name}"] = time.perf_counter() - t
        out[f"test_mse_{name}"] = analysis.one_step_mse(fits[name], test,
                                                        key=jax.random.key(7))
        return fits[name]

    def against_cut(other) -> dict:
        """``other`` against the fit at D: the extension's paired comparison."""
        delta, se, est, est_cut = compare(other, fits[D], jax.random.key(9))
        # the same keys every time: the fit at D's estimate is the same in each comparison
        out["fresh"]["at_cut"] = {"neg_elbo_per_n": est_cut.neg_elbo_per_n}
        return {"neg_elbo_per_n": est.neg_elbo_per_n, "delta": delta, "se": se,
                "chosen": bool(delta > DEFAULT_TOLERANCE + 2.0 * se)}

    read_again = {}

    def reread():
        """The spectrum of the fresh fit at D's own Ĥ (once): its cut, gap and directions."""
        if not read_again:
            spectrum, S2 = conservation_spectrum(
                fits[D].with_sym_samples(args.spectrum_samples), states, key=jax.random.key(11))
            (D2, ratio2), = spectrum_cuts(spectrum, DEFAULT_MAX_RESIDUAL)
            read_again.update(spectrum=spectrum, S2=np.asarray(S2), cut=int(D2),
                              gap_ratio=None if ratio2 is None else float(ratio2))
        return read_again

    out["fresh"] = {}
    fit_at(D, S[:D])
    for kind in fit_kinds(args):
        if kind == "one-more":
            out["fresh"]["one_more"] = against_cut(fit_at(D + 1, S[:D + 1]))
        elif kind == "true":  # scoring's diagnostic: the true span at the same size
            out["fresh"]["true"] = against_cut(fit_at("true", truth))
        elif kind == "reread":  # the (D+1)-th direction read off the fresh fit at D's Ĥ
            r = reread()
            S2 = r["S2"]
            cosines = analysis.subspace_cosines(S2[:D + 1], truth)
            out["fresh"]["reread"] = {
                **against_cut(fit_at("reread", S2[:D + 1])),
                "cut": r["cut"], "gap_ratio": r["gap_ratio"],
                "spectrum_head": r["spectrum"][:D + 3].tolist(),
                # scoring only
                "share": float(analysis.parallelness(S2[D:D + 1], truth)[0]),
                "first_par": float(cosines[-1]) if cosines.size == D + 1 else None}
        else:  # "reread-learned": the same directions as the start of a learned fit
            r = reread()
            S2 = r["S2"]
            learned = fit_at("reread-learned", S2[:D + 1], learned=True)
            sigma, G = principal_generators(learned.generators())
            cosines = analysis.subspace_cosines(G, truth)
            out["fresh"]["reread_learned"] = {
                **against_cut(learned), "cut": r["cut"], "gap_ratio": r["gap_ratio"],
                "sigma": sigma.tolist(),
                # scoring only: the learned directions against the true span and the read one
                "pars": analysis.parallelness(G, truth).tolist(),
                "first_par": float(cosines[-1]) if cosines.size == D + 1 else None,
                "read_first_par": (float(analysis.subspace_cosines(S2[:D + 1], truth)[-1])
                                   if D + 1 == truth.shape[0] else None),
                "moved": float(analysis.subspace_cosines(G, S2[:D + 1])[-1])}
    return out


FIT_KINDS = ("one-more", "true", "reread", "reread-learned")
"""The fresh fits besides the one at the cut D (``--fits``; module docstring)."""


def fit_kinds(args) -> list[str]:
    """``args.fits`` in order, with ``true`` where ``--true`` was given."""
    kinds = list(getattr(args, "fits", None) or ["one-more"])
    return kinds + ["true"] if getattr(args, "true", False) and "true" not in kinds else kinds


def _par(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _gap(v) -> str:
    return "no gap" if v is None else f"{v:.3g}"


def _against_cut_cells(r: dict, name: str) -> str:
    """The cells of row ``r``'s fit ``name`` against its fit at D: −ELBO/N of both, the paired
    difference with the rule's mark, both test MSEs, and the row's seconds of fitting."""
    g, D = r["fresh"][name.replace("-", "_")], r["cut"]
    return (f"{_per_n(r['fresh']['at_cut']['neg_elbo_per_n'])} / {_per_n(g['neg_elbo_per_n'])} | "
            f"{g['delta']:+.0f} ± {g['se']:.0f} {'✓' if g['chosen'] else '✗'} | "
            f"{r[f'test_mse_{D}']:.3e} / {r[f'test_mse_{name}']:.3e} | "
            f"{sum(v for k, v in r.items() if k.startswith('fit_s_')):.0f} |")


def _per_n(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def _size_words(args) -> str:
    scale = getattr(args, "size_scale", 1.0)
    words = ("its refits' size" if scale == 1.0
             else f"{scale:g} times its refits' size")
    sizes = getattr(args, "sizes", None)
    if sizes:
        words = (f"{', '.join(f'{f:g}' for f in sizes)} times {words}, the ELBO choosing "
                 "each fit's size as select_conserved(refit_sizes) does")
    return words


def table(rows: list[dict], args) -> str:
    s = args.source_settings
    out = [f"The extension's comparison from a fresh start: for each key of `{args.source}`, "
           f"F fitted from a fresh initial state with the symmetry held fixed at directions "
           f"that record's completion read or that these fits read (at "
           f"{_size_words(args)}, orthonormal), {args.steps} steps each (the record's learned "
           f"fit: {s['steps']}; its refits continued the learned fit for "
           f"{s['refit_steps']}), the record's data and model ({s['trajectories']} "
           f"trajectories x {s['points']} steps, Δt = {s['dt']}, MLP "
           f"{' x '.join(map(str, s['hidden']))}, S = {s['sym_samples']}, likelihood mean "
           f"{s['substeps']} x {s['integrator']}, lr {s['lr']}, batch {s['batch_size']}). "
           f"Each is set against the fit at the record's first D directions (D: its cut): "
           f"the paired ELBO difference in nats ± standard error ({args.num_repeats} paired "
           f"evaluations, Ĥ with {args.evidence_samples} symmetry samples; ✓ where above "
           f"{DEFAULT_TOLERANCE:g} plus twice the standard error, the extension's rule); "
           f"−ELBO/N at the same S'."]
    one_more = [r for r in rows if "one_more" in r["fresh"]]
    if one_more:
        out += ["", "At the record's first D + 1 directions. \"continued\": the record's refits "
                "from the learned fit (the completion's refit at the cut and the extension's at "
                "D + 1; their −ELBO/N at the same S', another evaluation key). Share: the "
                "(D+1)-th direction's parallelness to the true span (scoring only).", "",
                "| key | D | share of D+1 | −ELBO/N at D: fresh / continued | −ELBO/N at D+1: "
                "fresh / continued | ELBO (D+1) − D: fresh | continued | test MSE D / D+1 | "
                "fits (s) | diverged |",
                "|---:|---:|---:|---|---|---|---|---|---:|---|"]
        for r in one_more:
            f, c = r["fresh"], r["continuation"]
            D = r["cut"]
            mark = "✓" if f["one_more"]["chosen"] else "✗"
            cm = c["one_more"]
            out.append(
                f"| {r['key']} | {D} | {r['share_one_more']:.2f} | "
                f"{_per_n(f['at_cut']['neg_elbo_per_n'])} / "
                f"{_per_n(c['at_cut']['neg_elbo_per_n'])} | "
                f"{_per_n(f['one_more']['neg_elbo_per_n'])} / {_per_n(cm['neg_elbo_per_n'])} | "
                f"{f['one_more']['delta']:+.0f} ± {f['one_more']['se']:.0f} {mark} | "
                f"{cm['delta']:+.0f} ± {cm['se']:.0f} | "
                f"{r[f'test_mse_{D}']:.3e} / {r[f'test_mse_{D + 1}']:.3e} | "
                f"{sum(v for k, v in r.items() if k.startswith('fit_s_')):.0f} | "
                f"{', '.join(str(s['dimension']) for s in r['stopped']) or '–'} |")
        true_dir = [r for r in one_more if r["share_one_more"] > args.par]
        other = [r for r in one_more if r["share_one_more"] <= args.par]
        out += ["", f"From the fresh start the (D+1)-th direction is kept on "
                f"{sum(r['fresh']['one_more']['chosen'] for r in true_dir)}/{len(true_dir)} "
                f"keys where it lies in the true span (share > {args.par:g}) and on "
                f"{sum(r['fresh']['one_more']['chosen'] for r in other)}/{len(other)} where "
                f"it does not."]
    with_true = [r for r in rows if "true" in r["fresh"]]
    if with_true:
        out += ["", "A diagnostic ground truth fixes: the same fresh fit with the symmetry held "
                "fixed at an orthonormal basis of the true span at the same size, against the "
                "fit at D (nats ± standard error, the same evaluation).", "",
                "| key | true dim | −ELBO/N true span | ELBO true span − D | test MSE true span |",
                "|---:|---:|---:|---|---:|"]
        for r in with_true:
            t = r["fresh"]["true"]
            out.append(f"| {r['key']} | {r['true_dim']} | {_per_n(t['neg_elbo_per_n'])} | "
                       f"{t['delta']:+.0f} ± {t['se']:.0f} {'✓' if t['chosen'] else '✗'} | "
                       f"{r['test_mse_true']:.3e} |")
    reread = [r for r in rows if "reread" in r["fresh"]]
    if reread:
        out += ["", f"Read again: the spectrum of the fresh fit at D's own Ĥ (its "
                f"{args.spectrum_samples} symmetry samples, the selection's rule), and the "
                f"fresh fit at its first D + 1 directions against the fit at D (nats ± "
                f"standard error, the same evaluation; ✓ as above). Scoring only: its "
                f"(D+1)-th direction's share in the true span, and the smallest cosine between "
                f"the span of its first D + 1 and the true span (the record's reading: that of "
                f"its first D + 1 where D + 1 is the true dimension).", "",
                "| key | D | cut read again (gap) | share of D+1 | first D+1: par (record's) | "
                "−ELBO/N at D / again | ELBO again − D | test MSE D / again | fits (s) |",
                "|---:|---:|---|---:|---|---|---|---|---:|"]
        for r in reread:
            g, D = r["fresh"]["reread"], r["cut"]
            before = r.get("record_first_par")
            out.append(
                f"| {r['key']} | {D} | {g['cut']} ({_gap(g['gap_ratio'])}) | {g['share']:.3f} | "
                f"{_par(g['first_par'])} ({_par(before)}) | {_against_cut_cells(r, 'reread')}")
    learned = [r for r in rows if "reread_learned" in r["fresh"]]
    if learned:
        out += ["", f"Read again and learned: a fresh fit that starts η at the first D + 1 "
                f"directions read again (as above) and goes on learning them (lr_conserved "
                f"{args.lr_conserved:g}, the same steps), against the fit at D (nats ± "
                f"standard error, the same evaluation; ✓ as above). Scoring only: the "
                f"smallest cosine between the learned span and the true span (and that of the "
                f"span read, where D + 1 is the true dimension), the smallest parallelness of "
                f"a learned principal direction, and the smallest cosine between the learned "
                f"span and the span read (how far learning moved it); σ: the learned "
                f"generators' singular values.", "",
                "| key | D | span par: learned (read) | min direction par | moved | σ min–max "
                "| −ELBO/N at D / learned | ELBO learned − D | test MSE D / learned | "
                "fits (s) |",
                "|---:|---:|---|---:|---:|---|---|---|---|---:|"]
        for r in learned:
            g, D = r["fresh"]["reread_learned"], r["cut"]
            out.append(
                f"| {r['key']} | {D} | {_par(g['first_par'])} ({_par(g['read_first_par'])}) | "
                f"{min(g['pars']):.3f} | {g['moved']:.3f} | "
                f"{min(g['sigma']):.3g}–{max(g['sigma']):.3g} | "
                f"{_against_cut_cells(r, 'reread-learned')}")
    sized = [r for r in rows if any(k.startswith("sizes_") for k in r)]
    if sized:
        out += ["", "The sizes (--sizes): each fit above is the one the ELBO chose among its "
                "fits at these multiples of the size, from the same start (each next multiple "
                "kept where its paired difference against the one chosen before it is above "
                f"{DEFAULT_TOLERANCE:g} plus twice its standard error). −ELBO/N of each, from "
                "these comparisons' own evaluation keys (so the chosen fit's differs from the "
                "one above by the estimate's noise); Δ: against the multiple chosen before it "
                "(nats ± standard error).", "",
                "| key | fit | chosen | ×f: −ELBO/N (Δ) |", "|---:|---|---:|---|"]
        for r in sized:
            for name in [k[len("sizes_"):] for k in r if k.startswith("sizes_")]:
                e = r[f"sizes_{name}"]
                cells = ", ".join(
                    f"×{t['factor']:g}: {_per_n(t.get('neg_elbo_per_n'))}"
                    + (f" ({t['delta_vs_chosen']:+.0f} ± {t['se']:.0f} "
                       f"{'✓' if t['chosen'] else '✗'})" if "delta_vs_chosen" in t else "")
                    for t in e["size_trials"])
                out.append(f"| {r['key']} | {name} | ×{e['size_factor']:g} | {cells} |")
    return "\n".join(out) + "\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True,
                   help="a discovery record made with --extend (benchmarks/records/SOURCE/)")
    p.add_argument("--keys", nargs="+", type=int, default=None,
                   help="its keys to refit, in this order (default: all of its rows)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps of each fresh fit (default: the source's learned fit's)")
    p.add_argument("--evidence-samples", type=int, default=None,
                   help="symmetry samples of the ELBO comparison (default: the source's)")
    p.add_argument("--num-repeats", type=int, default=DEFAULT_REPEATS,
                   help="paired Monte-Carlo evaluations of each ELBO difference")
    p.add_argument("--size-scale", type=float, default=1.0,
                   help="the fits' generators at this multiple of the record's refit size")
    p.add_argument("--sizes", type=float, nargs="+", default=None,
                   help="fit each at these multiples of the size and keep the one the ELBO "
                        "chooses (select_conserved(refit_sizes)'s rule; default: one size)")
    p.add_argument("--fits", nargs="+", choices=FIT_KINDS, default=["one-more"],
                   help="the fresh fits besides the one at the cut: at its D + 1 directions "
                        "(one-more), at the true span (true; a diagnostic ground truth fixes), "
                        "at the first D + 1 directions read again from the fit at D (reread), "
                        "the same as the start of a fit that learns them (reread-learned)")
    p.add_argument("--lr-conserved", type=float, default=None,
                   help="learning rate of η in --fits reread-learned (default: the source's "
                        "learned fit's)")
    p.add_argument("--true", action="store_true", help="the same as adding true to --fits")
    p.add_argument("--spectrum-samples", type=int, default=None,
                   help="symmetry samples of --fits reread's spectrum (default: the source's)")
    p.add_argument("--par", type=float, default=0.95,
                   help="scoring: a direction at a larger share lies in the true span")
    p.add_argument("--resume", action="store_true",
                   help="continue the topic's record: skip its keys, keep its rows")
    add_topic_arguments(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:
        return rebuild(p, args, table, "fresh_refits.py", argv)
    try:
        _, source, _ = read_record(args.source)
    except FileNotFoundError:
        p.error(f"--source: no record benchmarks/records/{args.source}/")
    settings = source["settings"]
    if not settings.get("extend"):
        p.error(f"--source: {args.source!r} was not made with --extend")
    by_key = {r["key"]: r for r in source["rows"]}
    keys = list(by_key) if args.keys is None else args.keys
    missing = [k for k in keys if k not in by_key]
    if missing:
        p.error(f"--keys: {missing} are not rows of {args.source!r} (it has {list(by_key)})")
    args.steps = settings["steps"] if args.steps is None else args.steps
    args.evidence_samples = (settings.get("evidence_samples") or settings["sym_samples"]
                             if args.evidence_samples is None else args.evidence_samples)
    args.spectrum_samples = (settings.get("spectrum_samples") or settings["sym_samples"]
                             if args.spectrum_samples is None else args.spectrum_samples)
    if "reread-learned" in args.fits:
        if args.lr_conserved is None:
            args.lr_conserved = settings.get("lr_conserved")
            if args.lr_conserved is None:
                p.error("--lr-conserved: the source records no lr_conserved; give one")
        if not (np.isfinite(args.lr_conserved) and args.lr_conserved > 0):
            p.error(f"--lr-conserved: expected a positive number, got {args.lr_conserved}")
    for name in ("steps", "evidence_samples", "spectrum_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive int")
    if not args.size_scale > 0:
        p.error(f"--size-scale: expected a positive number, got {args.size_scale}")
    if args.sizes is not None and not valid_sizes(args.sizes):
        p.error(f"--sizes: expected distinct positive numbers, got {args.sizes}")
    if args.num_repeats < 2:
        p.error(f"--num-repeats: expected an int >= 2, got {args.num_repeats}")
    args.source_settings = settings
    rows, wall, commands = [], 0.0, None
    if args.resume:
        if args.topic is None:
            p.error("--resume needs --topic")
        _, done, meta = read_record(args.topic)
        for name in ("source", "steps", "evidence_samples", "num_repeats", "true",
                     "size_scale", "sizes", "fits", "spectrum_samples",
                     # (records made before --lr-conserved: only without reread-learned)
                     *(("lr_conserved",) if "reread-learned" in args.fits else ())):
            was = done["settings"].get(name, p.get_default(name))
            if was != getattr(args, name):
                p.error(f"--resume: the record's {name} is {was!r}, not "
                        f"{getattr(args, name)!r}")
        rows, wall = done["rows"], meta["wall_s"]
        commands = [*meta.get("commands", [meta["command"]]), shlex.join(["python", *sys.argv])]
        keys = [k for k in keys if k not in {r["key"] for r in rows}]
    enable_compilation_cache()
    start = time.perf_counter()
    for k in keys:
        rows.append(run_one(by_key[k], settings, args))
        print(f"key {k}: " + ", ".join(f"{name} − D {r['delta']:+.0f} ± {r['se']:.0f}"
                                       for name, r in rows[-1]["fresh"].items()
                                       if name != "at_cut"), flush=True)
        if args.topic is not None:
            write_record(args.topic, table=table(rows, args),
                         metrics={"settings": vars(args), "rows": rows},
                         command=sys.argv, commands=commands,
                         wall_s=wall + time.perf_counter() - start)
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
