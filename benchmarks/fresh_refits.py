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

``--true`` adds a diagnostic that ground truth fixes: a third fresh fit, the symmetry held
fixed at an orthonormal basis of the *true* span (``system.generators()``) at the same size,
and its paired ELBO difference against the fit at D. Where the spectrum's D + 1 directions lose
to its D but the true span wins, the (D+1)-th direction read is not accurate enough; where the
true span loses too, the evidence at this size prefers fewer directions than the system
conserves.

Usage::

    python fresh_refits.py --source discovery-two-body-evidence --keys 1 2 --true \\
        --topic two-body-fresh-refits

The record is written after every key (``--resume`` continues it with the same settings).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import jax
import numpy as np
from discovery import test_data, train_data
from record import add_topic_arguments, read_record, rebuild, write_record

from noether_ppl import analysis, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.geometry import span_basis
from noether_ppl.inference import DivergenceError, elbo_difference, fit
from noether_ppl.inference.evidence import DEFAULT_REPEATS
from noether_ppl.inference.select import DEFAULT_TOLERANCE

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
    """The fresh fits at the cut and one past it for the source record's ``row``."""
    system = {**systems.PAPER, **systems.SUITE}[row["system"]]()
    M = system.phase_dim
    key = row["key"]
    train = train_data(system, key, trajectories=settings["trajectories"],
                       points=settings["points"], dt=settings["dt"])
    test = test_data(system, key, dt=settings["dt"])
    spec = models.ModelSpec(hidden=tuple(settings["hidden"]), n_conserved=1,
                            sym_samples=settings["sym_samples"], measure="ball",
                            measure_scale=float(np.pi),
                            noise_variance=settings["noise_variance"],
                            integrator=settings["integrator"], substeps=settings["substeps"],
                            mc_likelihood=settings.get("mc_likelihood", "plug-in"),
                            mc_groups=settings.get("mc_groups", models.ModelSpec().mc_groups))
    read = read_cut(row)
    D, S = read["cut"], read["directions"]
    k_fit = jax.random.fold_in(jax.random.key(key), FIT_FOLD)
    fits, out = {}, {"system": row["system"], "key": key, "cut": D, "stopped": [],
                     "true_dim": int(system.generators().shape[0]),
                     "share_one_more": row["spectrum_true_shares"][D],
                     "continuation": {"at_cut": read["at_cut"], "one_more": read["one_more"]}}
    bases = {D: S[:D], D + 1: S[:D + 1]}
    if args.true:  # scoring's diagnostic: the true span at the same size
        bases["true"] = np.asarray(system.generators(), np.float64)
    for d, directions in bases.items():
        G = read["size"] * span_basis(directions).reshape(-1, M + 1, M + 1)
        t = time.perf_counter()
        try:
            fits[d] = fit(fixed_model(spec, G, M), train, key=k_fit, num_steps=args.steps,
                          lr=settings["lr"], batch_size=settings["batch_size"],
                          progress_bar=False)
        except DivergenceError as err:  # its last good state, noted
            out["stopped"].append({"dimension": d, "step": int(err.step)})
            fits[d] = err.result
        out[f"fit_s_{d}"] = time.perf_counter() - t
        out[f"test_mse_{d}"] = analysis.one_step_mse(fits[d], test, key=jax.random.key(7))
    delta, se, est_more, est_cut = elbo_difference(fits[D + 1], fits[D], train,
                                                   key=jax.random.key(9),
                                                   num_repeats=args.num_repeats,
                                                   sym_samples=args.evidence_samples)
    out["fresh"] = {"at_cut": {"neg_elbo_per_n": est_cut.neg_elbo_per_n},
                    "one_more": {"neg_elbo_per_n": est_more.neg_elbo_per_n,
                                 "delta": delta, "se": se,
                                 "chosen": bool(delta > DEFAULT_TOLERANCE + 2.0 * se)}}
    if args.true:
        delta, se, est_true, _ = elbo_difference(fits["true"], fits[D], train,
                                                 key=jax.random.key(9),
                                                 num_repeats=args.num_repeats,
                                                 sym_samples=args.evidence_samples)
        out["fresh"]["true"] = {"neg_elbo_per_n": est_true.neg_elbo_per_n,
                                "delta": delta, "se": se,
                                "chosen": bool(delta > DEFAULT_TOLERANCE + 2.0 * se)}
    return out


def _per_n(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def table(rows: list[dict], args) -> str:
    s = args.source_settings
    out = [f"The extension's comparison from a fresh start: for each key of `{args.source}`, "
           f"F fitted from a fresh initial state with the symmetry held fixed at the first D "
           f"(the record's cut) and D + 1 directions the record's completion read (at its "
           f"refits' size), {args.steps} steps each (the record's learned fit: "
           f"{s['steps']}; its refits continued the learned fit for {s['refit_steps']}), "
           f"the record's data and model ({s['trajectories']} trajectories x {s['points']} "
           f"steps, Δt = {s['dt']}, MLP {' x '.join(map(str, s['hidden']))}, S = "
           f"{s['sym_samples']}, likelihood mean {s['substeps']} x {s['integrator']}, lr "
           f"{s['lr']}, batch {s['batch_size']}). ELBO (D+1) − D in nats ± standard error "
           f"({args.num_repeats} paired evaluations, Ĥ with {args.evidence_samples} symmetry "
           f"samples; ✓ where above {DEFAULT_TOLERANCE:g} plus twice the standard error, the "
           f"extension's rule); −ELBO/N at the same S'. \"continued\": the record's refits "
           f"from the learned fit (the completion's refit at the cut and the extension's at "
           f"D + 1; their −ELBO/N at the same S', another evaluation key). Share: the "
           f"(D+1)-th direction's parallelness to the true span (scoring only).", "",
           "| key | D | share of D+1 | −ELBO/N at D: fresh / continued | −ELBO/N at D+1: "
           "fresh / continued | ELBO (D+1) − D: fresh | continued | test MSE D / D+1 | "
           "fits (s) | diverged |",
           "|---:|---:|---:|---|---|---|---|---|---:|---|"]
    for r in rows:
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
    true_dir = [r for r in rows if r["share_one_more"] > args.par]
    other = [r for r in rows if r["share_one_more"] <= args.par]
    out += ["", f"From the fresh start the (D+1)-th direction is kept on "
            f"{sum(r['fresh']['one_more']['chosen'] for r in true_dir)}/{len(true_dir)} keys "
            f"where it lies in the true span (share > {args.par:g}) and on "
            f"{sum(r['fresh']['one_more']['chosen'] for r in other)}/{len(other)} where it "
            f"does not."]
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
    p.add_argument("--true", action="store_true",
                   help="also fit at the true span (a diagnostic ground truth fixes)")
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
    for name in ("steps", "evidence_samples"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected a positive int")
    if args.num_repeats < 2:
        p.error(f"--num-repeats: expected an int >= 2, got {args.num_repeats}")
    args.source_settings = settings
    rows, wall, commands = [], 0.0, None
    if args.resume:
        if args.topic is None:
            p.error("--resume needs --topic")
        _, done, meta = read_record(args.topic)
        for name in ("source", "steps", "evidence_samples", "num_repeats", "true"):
            if done["settings"][name] != getattr(args, name):
                p.error(f"--resume: the record's {name} is {done['settings'][name]!r}, "
                        f"not {getattr(args, name)!r}")
        rows, wall = done["rows"], meta["wall_s"]
        commands = [*meta.get("commands", [meta["command"]]), shlex.join(["python", *sys.argv])]
        keys = [k for k in keys if k not in {r["key"] for r in rows}]
    enable_compilation_cache()
    start = time.perf_counter()
    for k in keys:
        rows.append(run_one(by_key[k], settings, args))
        r = rows[-1]["fresh"]["one_more"]
        print(f"key {k}: D+1 − D {r['delta']:+.0f} ± {r['se']:.0f}", flush=True)
        if args.topic is not None:
            write_record(args.topic, table=table(rows, args),
                         metrics={"settings": vars(args), "rows": rows},
                         command=sys.argv, commands=commands,
                         wall_s=wall + time.perf_counter() - start)
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
