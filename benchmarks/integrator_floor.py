"""How fine must the likelihood mean be for the true H to predict a system's pairs?

    python benchmarks/integrator_floor.py --systems two-body-2d nbody2d3 --topic integrator-floor

For each system, time step Δt (``--dts``; the splits' own when not given) and likelihood mean
(``--means``, ``integrator x substeps``), the NLL/N of the discovery benchmark's training pairs
of keys 0–4 (``symmetry_evidence.data``: 50 trajectories x 10 steps from data key
``1000 + key``, at that Δt) with the true H in place of Ĥ (``symmetry_evidence.exact_h_nll``,
σ² = 1e-3), next to the likelihood's floor ``(M/2) log 2πσ²`` (an exact prediction) and to
predicting no motion (how much the pairs say about the dynamics at that Δt). Far above the
floor, no fit of the model can be the true H: it must absorb the integrator's error over Δt
(REPRODUCTION.md, "What the bodies' fits absorb"). No fitting; seconds per system.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace

import numpy as np
from record import publish
from symmetry_evidence import data, exact_h_nll, likelihood_floor, pairs_nll

from noether_ppl import systems
from noether_ppl.integrators import INTEGRATORS

MEANS = ("rk2x1", "rk4x1", "rk4x4", "rk4x16")
"""The likelihood means compared by default: the package's step and RK4 at 1, 4, 16 steps."""


def mean(text: str) -> tuple[str, int]:
    """``"rk4x16"`` → ``("rk4", 16)`` (an argparse type)."""
    name, _, n = text.partition("x")
    if name not in INTEGRATORS or not n.isdigit() or int(n) < 1:
        raise argparse.ArgumentTypeError(
            f"expected INTEGRATORxSUBSTEPS with an integrator of {sorted(INTEGRATORS)} and "
            f"substeps >= 1, e.g. rk4x4; got {text!r}")
    return name, int(n)


def no_motion_nll(train, noise_variance: float) -> float:
    """NLL/N of the pairs when the mean is ``x_t`` itself (the zero field)."""
    x, y = train.pairs()
    return pairs_nll(y, x, noise_variance)


def rows_of(system: str, dts, means, keys, noise_variance: float) -> list[dict]:
    rows = []
    for dt in dts:
        args = SimpleNamespace(system=system, trajectories=50, points=10, dt=dt,
                               energy_fraction=None)
        trains = [data(k, args)[0] for k in keys]
        row = {"system": system, "dt": float(trains[0].dt),
               "floor": likelihood_floor(trains[0].states.shape[-1], noise_variance),
               "no_motion": [no_motion_nll(t, noise_variance) for t in trains]}
        for name, n in means:
            row[f"{name}x{n}"] = [exact_h_nll(system, t, noise_variance, name, n)
                                  for t in trains]
        rows.append(row)
    return rows


def _cell(values) -> str:
    v = np.asarray(values, float)
    return f"{np.median(v):.3g} [{v.min():.3g}, {v.max():.3g}]"


def table(rows: list[dict], means, keys, noise_variance: float) -> str:
    names = [f"{name}x{n}" for name, n in means]
    out = [f"NLL/N of the discovery benchmark's training pairs (50 trajectories x 10 steps, keys "
           f"{list(keys)}) with the true H through each likelihood mean (integrator x steps "
           f"per Δt), σ² = {noise_variance:g}; median [min, max] over the keys. \"floor\": an "
           "exact prediction; \"no motion\": the mean x_t itself.", "",
           "| system | Δt | floor | no motion | " + " | ".join(names) + " |",
           "|---|---:|---:|---|" + "---|" * len(names)]
    for r in rows:
        out.append(f"| {r['system']} | {r['dt']:g} | {r['floor']:.3g} | {_cell(r['no_motion'])} | "
                   + " | ".join(_cell(r[n]) for n in names) + " |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--systems", nargs="+", required=True)
    p.add_argument("--dts", nargs="+", type=float, default=None,
                   help="time steps of the pairs (default: each system's splits')")
    p.add_argument("--means", nargs="+", type=mean, default=[mean(m) for m in MEANS])
    p.add_argument("--keys", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--noise-variance", type=float, default=1e-3)
    p.add_argument("--topic", default=None,
                   help="write benchmarks/records/TOPIC/ (default: print only)")
    args = p.parse_args(argv)
    known = {**systems.PAPER, **systems.SUITE}
    unknown = [s for s in args.systems if s not in known]
    if unknown:
        p.error(f"unknown --systems {unknown}; known: {sorted(known)}")
    if args.dts is not None and not all(dt > 0 for dt in args.dts):
        p.error(f"--dts must be positive, got {args.dts}")
    if not args.noise_variance > 0:
        p.error(f"--noise-variance must be positive, got {args.noise_variance}")
    start = time.perf_counter()
    rows = [r for s in args.systems
            for r in rows_of(s, args.dts or [None], args.means, args.keys, args.noise_variance)]
    text = table(rows, args.means, args.keys, args.noise_variance)
    return publish(args, text, rows, start)


if __name__ == "__main__":
    sys.exit(main())
