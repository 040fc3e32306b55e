"""The ELBO against the number of learned conserved quantities K, on a system with one.

The 1-D harmonic oscillator conserves one quadratic quantity (H, SO(2)). Fitting the razor
with K = 0, 1, 2, 3 learned quantities from the same keys shows whether the ELBO alone can tell
how many there are: for each K the −ELBO/N on the training data (with its Monte-Carlo standard
error), the test MSE, and the learned span's dimension and parallelness to SO(2) (threshold
rule of Sec. 5.1). Median and range over the keys.

    python benchmarks/elbo_ladder.py            # keys 0-4
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
from record import publish

from noether_ppl import analysis, inference, models, systems
from noether_ppl.compilation_cache import enable_compilation_cache


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--ks", nargs="+", type=int, default=[0, 1, 2, 3])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--topic", default="elbo-ladder")
    args = p.parse_args(argv)
    enable_compilation_cache()
    sho = systems.HarmonicOscillator()
    rows, start = [], time.perf_counter()
    for key in args.keys:
        train = sho.simulate(jax.random.key(100 + key), n_trajectories=7, n_steps=4, dt=0.2)
        test = sho.simulate(jax.random.key(200 + key), n_trajectories=50, n_steps=20, dt=0.2)
        for K in args.ks:
            spec = models.ModelSpec(hidden=(64, 64), elu_alpha=2.0, n_conserved=K,
                                    sym_samples=32, measure="ball", measure_scale=float(np.pi))
            res = inference.fit(models.NoetherRazor(spec, phase_dim=2), train,
                                key=jax.random.key(key), num_steps=args.steps, lr=3e-3,
                                lr_conserved=3e-2, progress_bar=False)
            est = inference.elbo_estimate(res, train, key=jax.random.key(7), num_repeats=64)
            row = {"key": key, "K": K, "neg_elbo_per_n": est.neg_elbo_per_n,
                   "se_per_n": est.se_per_n, "nll_per_n": est.nll_per_n,
                   "kl_per_n": est.kl_per_n,
                   "test_mse": analysis.one_step_mse(res, test, key=jax.random.key(3))}
            if K:
                rep = analysis.symmetry_report(res, reference=sho)
                row["dimension"] = rep.dimension
                row["parallelness"] = [float(v) for v in rep.parallelness]
            else:
                row["dimension"], row["parallelness"] = 0, []
            rows.append(row)
            print(row, flush=True)
    lines = ["1-D oscillator, 7 trajectories x 4 pairs, MLP 64x64, S = 32, ball measure (scale "
             f"pi), {args.steps} steps; median [min, max] over keys {args.keys}.", "",
             "| K | −ELBO/N | NLL/N | KL/N | test MSE | learned dim | min parallelness |",
             "|---:|---|---|---|---|---|---|"]

    def span(values, fmt):
        v = np.asarray(values, float)
        return f"{format(np.median(v), fmt)} [{format(v.min(), fmt)}, {format(v.max(), fmt)}]"

    for K in args.ks:
        rs = [r for r in rows if r["K"] == K]
        pars = [min(r["parallelness"]) for r in rs if r["parallelness"]]
        lines.append(
            f"| {K} | {span([r['neg_elbo_per_n'] for r in rs], '.2f')} | "
            f"{span([r['nll_per_n'] for r in rs], '.2f')} | "
            f"{span([r['kl_per_n'] for r in rs], '.2f')} | "
            f"{span([r['test_mse'] for r in rs], '.2e')} | "
            f"{span([r['dimension'] for r in rs], '.0f')} | "
            f"{span(pars, '.3f') if pars else '–'} |")
    best = {}
    for key in args.keys:
        rs = [r for r in rows if r["key"] == key]
        best[key] = min(rs, key=lambda r: r["neg_elbo_per_n"])["K"]
    lines += ["", "K with the highest ELBO per key: "
              + ", ".join(f"key {k}: K = {v}" for k, v in best.items())]
    text = "\n".join(lines) + "\n"
    return publish(args, text, rows, start)


if __name__ == "__main__":
    sys.exit(main())
