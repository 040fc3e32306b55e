"""The razor started at the true generators: does its ELBO hold them, and does the selection
keep them? A diagnostic of why discovery fails where it does (scoring, not a method).

    cd benchmarks && python true_start.py --systems two-body-2d --dt 0.1 --integrator rk4 \\
        --substeps 4 --steps 16000 --eval-sym-samples 256 --topic true-start-two-body-dt01

For each system and key, on the data of ``benchmarks/discovery.py`` (same data keys, sizes and
settings): the plain HNN exactly as ``analysis.fit_auto``'s step 1 fits it (the same key), and
the razor (K = true dimension + ``--extra``) fitted as long from the system's true generators
(``models.conserved_params_from_generators``; the extra ones start as the razor's own do). Then:
how much of the true span the fitted generators still hold (the smallest principal-angle cosine
between the true span and the fit's L leading directions, ``analysis.symmetry_report``), the
ELBO of that fit against the HNN's (``inference.elbo_difference``, nats ± standard error; with
``--eval-sym-samples`` also with Ĥ estimated from more symmetry samples), and what
``inference.select_conserved`` (the package's step 3, with the settings ``discovery.py`` gives
it) selects from that fit: its dimension and the smallest parallelness of its directions, and
its ELBO against the HNN's. ``discovery.py`` starts the razor where no ground truth enters; this
start uses the truth, so it answers only whether the criterion and the optimiser keep the right
answer once there (a failure there is not the search's), never what the package would choose.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import numpy as np
from discovery import (
    _min_par,
    add_data_arguments,
    add_fit_arguments,
    add_model_arguments,
    check_systems,
    steps_of,
    test_data,
    train_data,
)
from record import add_topic_arguments, publish, rebuild

from noether_ppl import analysis, inference, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache
from noether_ppl.inference.fit import fit
from noether_ppl.inference.select import DEFAULT_STOP, DEFAULT_TOLERANCE


def run_one(name: str, key: int, args) -> dict:
    system = {**systems.PAPER, **systems.SUITE}[name]()
    truth = system.generators()
    L, M = truth.shape[0], system.phase_dim
    if L == 0:
        raise ValueError(f"{name} conserves no quadratic quantity but H: nothing to start at")
    train = train_data(system, key, trajectories=args.trajectories, points=args.points,
                       dt=args.dt)
    test = test_data(system, key, dt=args.dt)
    spec = models.ModelSpec(hidden=tuple(args.hidden), n_conserved=L + args.extra,
                            sym_samples=args.sym_samples, measure="ball",
                            measure_scale=float(np.pi), noise_variance=args.noise_variance,
                            integrator=args.integrator, substeps=args.substeps,
                            mc_likelihood=args.mc_likelihood, mc_groups=args.mc_groups)
    razor = models.NoetherRazor(spec, phase_dim=M)
    hnn_model = models.NoetherRazor(spec.replace(n_conserved=0), phase_dim=M)
    steps, select_steps = steps_of(name, args)
    kwargs = {"lr": args.lr, "lr_conserved": args.lr_conserved, "batch_size": args.batch_size,
              "progress_bar": False}
    # fit_auto's keys: the HNN here is its step-1 HNN on the same data
    k_hnn, _, _, k_fit, k_init, k_cmp, k_sel = jax.random.split(jax.random.key(key), 7)
    t0 = time.perf_counter()
    hnn = fit(hnn_model, train, key=k_hnn, num_steps=steps, **kwargs)
    init = models.conserved_params_from_generators(truth, spec.n_conserved, key=k_init,
                                                   scale=spec.conserved_init_scale,
                                                   dtype=razor.dtype)
    started = fit(razor, train, key=k_fit, num_steps=steps, init_params=init, **kwargs)
    t_fit = time.perf_counter() - t0
    held = analysis.symmetry_report(started, system, dimension=L)
    d, se, est_s, est_h = inference.elbo_difference(started, hnn, train, key=k_cmp)
    row = {"system": name, "key": key, "true_dim": L, "K": spec.n_conserved, "steps": steps,
           "select_steps": select_steps,
           "held_min_cos": float(np.min(held.subspace_cosines)),
           "held_cosines": [float(c) for c in held.subspace_cosines],
           "started_minus_hnn": {"16": {"delta": d, "se": se}},
           "started_neg_elbo_per_n": est_s.neg_elbo_per_n,
           "hnn_neg_elbo_per_n": est_h.neg_elbo_per_n,
           "started_test_mse": analysis.one_step_mse(started, test, key=jax.random.key(7)),
           "hnn_test_mse": analysis.one_step_mse(hnn, test, key=jax.random.key(7))}
    for S in args.eval_sym_samples:
        dS, seS, _, _ = inference.elbo_difference(started.with_sym_samples(S), hnn, train,
                                                  key=jax.random.key(9))
        row["started_minus_hnn"][str(S)] = {"delta": dS, "se": seS}
    t1 = time.perf_counter()
    selection = inference.select_conserved(started, train, key=k_sel, num_steps=select_steps,
                                           lr=args.lr / 3, lr_conserved=args.lr_conserved,
                                           batch_size=args.batch_size, stop=args.stop,
                                           criterion=args.criterion, progress_bar=False)
    row["selected_dim"] = selection.dimension
    row["selected_min_par"] = _min_par(np.asarray(selection.generators), truth)
    row["selected_ok"] = bool(selection.dimension == L
                              and row["selected_min_par"] > args.par)
    if selection.dimension:
        ds, ses, _, _ = inference.elbo_difference(selection.result, hnn, train,
                                                  key=jax.random.fold_in(k_cmp, 1))
        row["selected_minus_hnn"] = {"delta": ds, "se": ses,
                                     "kept": "hnn" if ds < -(DEFAULT_TOLERANCE + 2 * ses)
                                     else "selected"}
    row["wall_s"] = {"fits": t_fit, "select": time.perf_counter() - t1,
                     "total": time.perf_counter() - t0}
    return row


def _pm(entry: dict | None) -> str:
    return "–" if entry is None else f"{entry['delta']:.0f} ± {entry['se']:.0f}"


def table(rows: list[dict], args) -> str:
    S = [str(s) for s in args.eval_sym_samples]
    head = ("| system | key | true | held: min cos | held: cos > 0.95 | started − HNN, ELBO (S = "
            f"{args.sym_samples}) |" + "".join(f" started − HNN (S = {s}) |" for s in S)
            + " −ELBO/N started / HNN | test MSE started / HNN | selected dim | min par |"
            " selected − HNN | step 4 keeps | wall (s) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        sel = r.get("selected_minus_hnn")
        lines.append(
            f"| {r['system']} | {r['key']} | {r['true_dim']} | {r['held_min_cos']:.3f} | "
            + ("–" if "held_cosines" not in r  # (rows recorded before the cosines were)
               else f"{sum(c > 0.95 for c in r['held_cosines'])}/{r['true_dim']}")
            + f" | {_pm(r['started_minus_hnn']['16'])} |"
            + "".join(f" {_pm(r['started_minus_hnn'].get(s))} |" for s in S)
            + f" {r['started_neg_elbo_per_n']:.2f} / {r['hnn_neg_elbo_per_n']:.2f} | "
            f"{r['started_test_mse']:.3e} / {r['hnn_test_mse']:.3e} | {r['selected_dim']} | "
            + ("–" if r["selected_min_par"] is None else f"{r['selected_min_par']:.3f}")
            + f" | {_pm(sel)} | {'–' if sel is None else sel['kept']} | "
            f"{r['wall_s']['total']:.0f} |")
    summary = ["", "| system | keys | started above the HNN (S = "
               f"{args.sym_samples}) |" + "".join(f" (S = {s}) |" for s in S)
               + " selection right | step 4 keeps the selection |",
               "|---|---:|---:|" + "---:|" * len(S) + "---:|---:|"]
    for name in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == name]
        n = len(rs)

        def above(s, rs=rs):
            return sum(r["started_minus_hnn"][s]["delta"] > 0 for r in rs)

        summary.append(
            f"| {name} | {n} | {above('16')}/{n} |"
            + "".join(f" {above(s)}/{n} |" for s in S)
            + f" {sum(r['selected_ok'] for r in rs)}/{n} | "
            f"{sum(r.get('selected_minus_hnn', {}).get('kept') == 'selected' for r in rs)}/{n} |")
    dt = "each system's" if args.dt is None else f"{args.dt}"
    intro = (f"The razor started at the true generators (K = true + {args.extra}), on "
             f"discovery.py's data: {args.trajectories} trajectories x {args.points} steps, "
             f"Δt = {dt}, likelihood mean {args.substeps} x {args.integrator}, MLP "
             f"{list(args.hidden)}, S = {args.sym_samples}, {args.steps} steps (selection: "
             f"{args.select_steps} per continuation). \"held: min cos\": the smallest cosine of "
             "the principal angles between the true span and the fit's L leading directions "
             "(1: the truth kept); \"cos > 0.95\": how many of those cosines exceed 0.95. "
             "ELBO differences in nats over the training pairs ± standard "
             "error (positive: the started fit has the higher evidence bound). The selection "
             f"is right when its dimension is the true one and every direction has parallelness "
             f"> {args.par}; step 4 keeps the selection unless its ELBO is below the HNN's by "
             "more than the tolerance plus 2 standard errors (the HNN not continued here). "
             "Ground truth starts these fits: a diagnostic, not the package's method.")
    return "\n".join([intro, "", *lines, *summary])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p)
    add_model_arguments(p)
    add_fit_arguments(p)
    p.add_argument("--stop", default=DEFAULT_STOP, choices=inference.select.STOPS)
    p.add_argument("--eval-sym-samples", nargs="+", type=int, default=[])
    add_topic_arguments(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:
        return rebuild(p, args, table, "true_start.py", argv)
    check_systems(p, args.systems)
    for name, value in (("--steps", args.steps), ("--select-steps", args.select_steps),
                        ("--substeps", args.substeps), ("--extra", args.extra)):
        if value < 1:
            p.error(f"{name}: expected a positive int, got {value}")
    if args.dt is not None and not args.dt > 0:
        p.error(f"--dt: expected a positive number, got {args.dt}")
    if any(s < 1 for s in args.eval_sym_samples):
        p.error(f"--eval-sym-samples: expected positive ints, got {args.eval_sym_samples}")
    enable_compilation_cache()
    started = time.perf_counter()
    rows = []
    for name in args.systems:
        for key in args.keys:
            rows.append(run_one(name, key, args))
            print(json.dumps(rows[-1], default=float), flush=True)
    return publish(args, table(rows, args), rows, started)


if __name__ == "__main__":
    sys.exit(main())
