"""Does a fitted model tell, without H, whether its likelihood mean resolves the data's Δt?

    python benchmarks/mean_resolution.py --systems two-body-2d sho --topic mean-resolution

For each system and key, the discovery benchmark's training pairs (``discovery.train_data``)
and its plain HNN, fitted as ``analysis.fit_auto``'s step 1 fits it there (same model, key,
steps and optimiser settings as ``discovery.py`` with its defaults): the error over Δt of the
package's likelihood mean (one RK2 step) against RK4 with 16 steps per Δt, in units of the
noise (``analysis.mean_resolution``, no ground truth), next to the same for the true H
(``analysis.mean_error`` on the system's field, the reference). A ratio above 1: the mean's
squared error over Δt exceeds the noise's, and a fit must absorb the integrator's error.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import numpy as np
from discovery import add_data_arguments, check_systems, steps_of, train_data
from discovery import parser as discovery_parser
from record import add_topic_arguments, publish, rebuild

from noether_ppl import analysis, inference, models, systems
from noether_ppl.analysis.resolution import DEFAULT_MAX_NOISE_RATIO, mean_error
from noether_ppl.integrators import INTEGRATORS


def row_of(name: str, key: int, args) -> dict:
    """True H and fitted plain HNN of ``key`` on system ``name``."""
    system = {**systems.PAPER, **systems.SUITE}[name]()
    M = system.phase_dim
    train = train_data(system, key, trajectories=args.trajectories, points=args.points,
                       dt=args.dt)
    spec = models.ModelSpec(hidden=tuple(args.hidden), n_conserved=0,
                            noise_variance=args.noise_variance,
                            integrator=args.integrator, substeps=args.substeps)
    steps, _ = steps_of(name, argparse.Namespace(steps=args.steps, select_steps=1))
    t = time.perf_counter()
    # fit_auto's step 1: the plain HNN from the first of its key's seven splits
    hnn = inference.fit(models.NoetherRazor(spec, phase_dim=M), train,
                        key=jax.random.split(jax.random.key(key), 7)[0], num_steps=steps,
                        lr=args.lr, lr_conserved=args.lr_conserved,
                        batch_size=args.batch_size, progress_bar=False)
    wall = time.perf_counter() - t
    fitted = analysis.mean_resolution(hnn, train, key=jax.random.key(11),
                                      max_points=train.n_pairs)
    x, _ = train.pairs()
    true = mean_error(system.vector_field, np.asarray(x, np.float64), float(train.dt),
                      integrator=args.integrator, substeps=args.substeps,
                      noise_variance=args.noise_variance)
    return {"system": name, "key": key, "dt": float(train.dt), "steps": steps,
            "true": true.to_dict(), "hnn": fitted.to_dict(), "hnn_fit_s": wall}


def _cell(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def _fraction(rows, which: str) -> str:
    return f"{np.median([r[which]['fraction_unresolved'] for r in rows]):.0%}"


def table(rows: list[dict], args) -> str:
    keys = sorted({r["key"] for r in rows})
    out = [f"The likelihood mean ({args.integrator} x {args.substeps}) against rk4 x 16 over "
           f"each system's Δt on the discovery benchmark's training pairs ({args.trajectories} "
           f"trajectories x {args.points} steps, keys {keys}, σ² = {args.noise_variance:g}): "
           "its squared error over Δt / (M σ²), median [min, max] over the keys, with the "
           "true H and with the plain HNN fitted as fit_auto's step 1 (no ground truth). "
           f"\"resolved\": ratio ≤ {DEFAULT_MAX_NOISE_RATIO:g}; \"pairs above\": the median "
           "over the keys of the fraction of pairs whose own ratio exceeds it.", "",
           "| system | Δt | steps | true H | true H resolved | fitted HNN | fitted HNN resolved "
           "| verdicts equal | pairs above: true H / HNN | HNN fit (s) |",
           "|---|---:|---:|---|---:|---|---:|---:|---|---:|"]
    for name in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == name]
        n = len(rs)
        true_ok = sum(r["true"]["resolved"] for r in rs)
        hnn_ok = sum(r["hnn"]["resolved"] for r in rs)
        same = sum(r["true"]["resolved"] == r["hnn"]["resolved"] for r in rs)
        out.append(f"| {name} | {rs[0]['dt']:g} | {rs[0]['steps']} | "
                   f"{_cell([r['true']['noise_ratio'] for r in rs])} | {true_ok}/{n} | "
                   f"{_cell([r['hnn']['noise_ratio'] for r in rs])} | {hnn_ok}/{n} | "
                   f"{same}/{n} | {_fraction(rs, 'true')} / {_fraction(rs, 'hnn')} | "
                   f"{np.median([r['hnn_fit_s'] for r in rs]):.0f} |")
    return "\n".join(out) + "\n"


def parser() -> argparse.ArgumentParser:
    """The command line: the discovery benchmark's data and plain-HNN options, its defaults."""
    d = discovery_parser().parse_args([])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p)
    p.add_argument("--hidden", nargs="+", type=int, default=d.hidden)
    p.add_argument("--noise-variance", type=float, default=d.noise_variance)
    p.add_argument("--dt", type=float, default=d.dt,
                   help="the time step of the pairs (default: each system's splits')")
    p.add_argument("--integrator", default=d.integrator, choices=sorted(INTEGRATORS),
                   help="the likelihood mean's integrator (default: the package's)")
    p.add_argument("--substeps", type=int, default=d.substeps,
                   help="its steps per Δt (default: the package's)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help="the plain HNN's steps (systems that need more run at discovery.py's "
                        "SYSTEM_STEPS)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--lr-conserved", type=float, default=d.lr_conserved)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    add_topic_arguments(p)
    return p


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.rebuild:
        return rebuild(p, args, table, "mean_resolution.py", argv)
    check_systems(p, args.systems)
    for name in ("noise_variance", "lr", "lr_conserved"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for name in ("substeps", "steps", "batch_size", "trajectories", "points"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.dt is not None and not args.dt > 0:
        p.error(f"--dt must be positive, got {args.dt}")
    start = time.perf_counter()
    rows = [row_of(name, key, args) for name in args.systems for key in args.keys]
    text = table(rows, args)
    return publish(args, text, rows, start)


if __name__ == "__main__":
    sys.exit(main())
