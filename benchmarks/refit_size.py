"""Step 3's refit, varied: the symmetry fixed at the first D directions of a saved fit's
conservation spectrum, at several sizes, each against the fit itself by the ELBO.

    python benchmarks/refit_size.py RUN_FOLDER --dimensions 6 7 --scales 1 0.25 \\
        --steps 5000 --topic nbody2d3-cpu-auto-refit-size

``select_conserved`` (``complete=True``) reads D off the spectrum of the fitted Ĥ
(:func:`~noether_ppl.inference.conservation.conservation_spectrum`), refits F for
``num_steps`` with the symmetry fixed at an orthonormal basis of those D directions, every one
scaled to the median σ of the fit's learned generators, and keeps the refit unless its ELBO is
lower. This script repeats that refit from a saved fit (the run folder of the fit the
selection returned) for each D of ``--dimensions`` and each size ``scale × median σ`` of
``--scales``, with the run's own fit settings (``run.json``), and one continuation of the fit
itself for the same steps (its η still learned) as the equal-budget baseline. Each is scored
against the saved fit and against that continuation by the paired ELBO difference
(:func:`~noether_ppl.inference.evidence.elbo_difference`); the table adds the parallelness of
the D directions with the reference span when ``--experiment`` names the system. It measures
whether the fixed-size refit, not the spectrum, is what rejects a dimension.

``--prune`` refits otherwise, for each D of ``--dimensions``: it keeps only the fit's learned
generators that lie in the span of the spectrum's first D directions (share at least
``inference.select.SELECTED_MIN_SHARE``, :func:`~noether_ppl.inference.select.span_shares`),
at their learned sizes and still learned, and continues that fit as long: does the ELBO
support the learned directions that are no conserved quantity of Ĥ?

    python benchmarks/refit_size.py RUN_FOLDER --prune --dimensions 6 7 --steps 5000 \
        --experiment nbody2d3-cpu --topic nbody2d3-cpu-auto-prune
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np
from record import write_record

from noether_ppl.analysis.symmetry import parallelness
from noether_ppl.data import Trajectories
from noether_ppl.experiments import load_experiment
from noether_ppl.geometry import span_basis
from noether_ppl.inference import DivergenceError
from noether_ppl.inference.conservation import conservation_spectrum, principal_generators
from noether_ppl.inference.continuation import continue_fit, model_with
from noether_ppl.inference.evidence import DEFAULT_REPEATS, elbo_difference
from noether_ppl.inference.select import SELECTED_MIN_SHARE, span_shares
from noether_ppl.runs import load_run

FIT_SETTINGS = ("batch_size", "lr", "lr_conserved", "schedule", "num_particles")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run folder of a learned fit (with data/train.npz)")
    parser.add_argument("--dimensions", type=int, nargs="+", required=True)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="sizes as multiples of the median σ of the fit's generators")
    parser.add_argument("--steps", type=int, required=True, help="steps of every refit")
    parser.add_argument("--experiment", help="the packaged experiment whose system scores")
    parser.add_argument("--prune", action="store_true",
                        help="keep the learned generators inside the first D spectrum "
                             "directions, still learned (module docstring)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--topic", required=True, help="write records/TOPIC/")
    args = parser.parse_args(argv)
    if args.steps < 1 or min(args.dimensions) < 1 or min(args.scales) <= 0:
        parser.error("--steps and --dimensions must be positive ints, --scales positive")
    start = time.perf_counter()
    before = load_run(args.run)
    with open(os.path.join(args.run, "run.json")) as f:
        info = json.load(f)
    fit_kwargs = {k: info["fit"][k] for k in FIT_SETTINGS if k in info["fit"]}
    fit_kwargs.update(progress_bar=False, num_steps=args.steps)
    data = Trajectories.load(os.path.join(args.run, "data", "train.npz"))
    x = np.asarray(data.states, np.float64).reshape(-1, data.phase_dim)
    M = data.phase_dim
    key = jax.random.key(args.seed)
    k_spec, k_fit, k_cmp = jax.random.split(key, 3)
    r, S = conservation_spectrum(before, x, key=k_spec)
    sig, G_before = principal_generators(before.generators())
    median = float(np.median(sig))
    reference = None
    if args.experiment:
        reference = np.asarray(load_experiment(args.experiment).make_system().generators())

    def score(name, res, row):
        d_fit, se_fit, est, est_before = elbo_difference(
            res, before, data, key=jax.random.fold_in(k_cmp, 0), num_repeats=DEFAULT_REPEATS)
        row.update(name=name, neg_elbo_per_n=est.neg_elbo_per_n,
                   neg_elbo_per_n_se=est.se_per_n,
                   before_neg_elbo_per_n=est_before.neg_elbo_per_n,
                   minus_before=d_fit, minus_before_se=se_fit)
        print(f"{name}: −ELBO/N {est.neg_elbo_per_n:.2f} (the saved fit "
              f"{est_before.neg_elbo_per_n:.2f}; ELBO difference {d_fit:+.4g} ± {se_fit:.2g})",
              flush=True)
        return row

    def run(*args):
        """``(fit, None)``, or the state a diverging or runaway fit kept and its message."""
        try:
            return continue_fit(*args), None
        except DivergenceError as err:  # a RunawayError too: its best chunk's state
            return err.result, f"{type(err).__name__} at step {err.step}"

    rows = []
    t = time.perf_counter()
    baseline, stopped = run(before.model, before.params, G_before, data,
                            jax.random.fold_in(k_fit, 0), fit_kwargs)
    rows.append(score(f"the fit continued ({before.model.n_conserved} learned)", baseline,
                      {"dimension": before.model.n_conserved, "scale": None,
                       "stopped": stopped, "wall_s": time.perf_counter() - t}))
    for D in args.dimensions if args.prune else ():
        share = span_shares(G_before, S[:D])
        kept = share >= SELECTED_MIN_SHARE
        t = time.perf_counter()
        pruned, stopped = run(model_with(before.model, int(kept.sum())), before.params,
                              G_before[kept], data, jax.random.fold_in(k_fit, D), fit_kwargs)
        par = (parallelness(G_before[kept], reference).min()
               if reference is not None and kept.any() else None)
        row = {"dimension": int(kept.sum()), "scale": None, "prune_at": D,
               "shares": share.tolist(),
               "min_parallelness": None if par is None else float(par),
               "stopped": stopped, "wall_s": time.perf_counter() - t}
        score(f"pruned to the learned inside the first {D} (shares "
              + ", ".join(f"{v:.2f}" for v in share) + ")", pruned, row)
        d, se, _, _ = elbo_difference(pruned, baseline, data, key=jax.random.fold_in(k_cmp, 1),
                                      num_repeats=DEFAULT_REPEATS)
        row.update(minus_continued=d, minus_continued_se=se)
        rows.append(row)
    for D in () if args.prune else args.dimensions:
        basis = span_basis(S[:D]).reshape(D, M + 1, M + 1)
        par = parallelness(basis, reference).min() if reference is not None else None
        for scale in args.scales:
            t = time.perf_counter()
            refit, stopped = run(model_with(before.model, D), before.params,
                                 scale * median * basis, data, jax.random.fold_in(k_fit, D),
                                 {**fit_kwargs, "lr_conserved": 0.0})
            row = {"dimension": D, "scale": scale, "size": scale * median,
                   "min_parallelness": None if par is None else float(par),
                   "stopped": stopped, "wall_s": time.perf_counter() - t}
            score(f"fixed at the first {D}, size {scale:g} × median σ", refit, row)
            d, se, _, _ = elbo_difference(refit, baseline, data,
                                          key=jax.random.fold_in(k_cmp, 1),
                                          num_repeats=DEFAULT_REPEATS)
            row.update(minus_continued=d, minus_continued_se=se)
            rows.append(row)
    what = ("pruned to its learned generators inside the spectrum's first D" if args.prune
            else "step 3's refit repeated")
    lines = [f"{args.run}: {what} from the saved fit (K = "
             f"{before.model.n_conserved} learned, median σ {median:.4g}), {args.steps} steps "
             f"each at the run's settings {json.dumps({k: info['fit'][k] for k in FIT_SETTINGS if k in info['fit']})}; "  # noqa: E501
             f"ELBO differences over {DEFAULT_REPEATS} paired Monte-Carlo repeats (± their "
             "standard error). Spectrum head: "
             + ", ".join(f"{v:.3g}" for v in r[: max(args.dimensions) + 2]) + ".", "",
             "| refit | D | size | min parallelness of the D | −ELBO/N | ELBO − saved fit's | "
             "ELBO − the fit continued's | stopped (the state kept: its best chunk's) | "
             "wall (s) |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for row in rows:
        par = row.get("min_parallelness")
        cont = (f"{row['minus_continued']:+.4g} ± {row['minus_continued_se']:.2g}"
                if "minus_continued" in row else "–")
        lines.append(f"| {row['name']} | {row['dimension']} | "
                     f"{row['size']:.3g} | " if row["scale"] is not None else
                     f"| {row['name']} | {row['dimension']} | learned | ")
        lines[-1] += (f"{'–' if par is None else f'{par:.4f}'} | "
                      f"{row['neg_elbo_per_n']:.2f} ± {row['neg_elbo_per_n_se']:.2f} | "
                      f"{row['minus_before']:+.4g} ± {row['minus_before_se']:.2g} | {cont} | "
                      f"{row['stopped'] or '–'} | {row['wall_s']:.0f} |")
    text = "\n".join(lines)
    print(text)
    command = ["benchmarks/refit_size.py", *(argv if argv is not None else sys.argv[1:])]
    folder = write_record(args.topic, table=text,
                          metrics={"rows": rows, "spectrum": r.tolist(), "median_sigma": median,
                                   "fit_settings": fit_kwargs},
                          command=command, wall_s=time.perf_counter() - start,
                          notes=f"the run folder {args.run} (not committed)")
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
