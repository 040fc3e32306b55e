"""Does the size of the demo's learned generator cost test accuracy? The learned SO(2)-like
generator refitted as a fixed symmetry, as learned and rescaled to angular frequency 1.

    python benchmarks/generator_scale.py            # keys of records/demo-keys/

Background (Sec. 3.2, Eq. 14): the razor averages F over the flow of each generator at times
``τ`` drawn from the measure, uniform on ``[−π, π]`` in the demo. A quadratic ``C = ½ xᵀAx +
bᵀx`` on the plane with ``det A > 0`` has elliptic orbits traversed at angular frequency
``ω = sqrt(det A)``, so those times cover ``ω`` whole orbits: only for ``ω = 1`` (the oracle's
``H = ½(q² + p²)``) is the average uniform over each orbit, and Ĥ exactly invariant.
Parallelness does not see ``ω``: it compares directions.

For each learned fit of ``records/demo-keys/`` (its η̂ is stored there), two fixed-symmetry
models are fitted on the demo's data from the same fit key, with the demo's settings: the
generator as learned (``Ĝ``) and rescaled (``Ĝ / ω̂``; same direction). The table sets them
beside the learned fit and the oracle of that record (same key). The refits use only the
training data; test MSE only scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
from demo_sensitivity import run_one
from record import read_record, write_record

from noether_ppl.demo import DemoSettings, demo_data
from noether_ppl.geometry import generator_from_quadratic, symmetric_from_unconstrained


def learned_generator(conserved: dict) -> tuple[np.ndarray, float | None]:
    """``(G (1, 3, 3), ω)`` of a stored η̂ (``conserved_W``, ``conserved_b``); ω is None when
    ``det A <= 0`` (no closed orbits)."""
    W = np.asarray(conserved["conserved_W"], np.float64)
    b = np.asarray(conserved["conserved_b"], np.float64)
    A = np.asarray(symmetric_from_unconstrained(W))
    G = np.asarray(generator_from_quadratic(A, b), np.float64)
    det = float(np.linalg.det(A[0]))
    return G, (float(np.sqrt(det)) if det > 0 else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="demo-keys", help="record of demo_sensitivity.py")
    p.add_argument("--keys", default=None, help="comma-separated (default: all learned keys)")
    p.add_argument("--topic", default="generator-scale")
    args = p.parse_args(argv)
    _, src, _ = read_record(args.source)
    raw = dict(src["settings"])
    raw["hidden"] = tuple(raw["hidden"])
    settings = DemoSettings(**raw)
    data = demo_data(settings)
    by = {(r["variant"], r["key"]): r for r in src["records"]}
    keys = sorted(k for v, k in by if v == "learned")
    if args.keys:
        keys = [int(k) for k in args.keys.split(",")]
    start = time.perf_counter()
    rows = []
    for k in keys:
        learned, oracle = by[("learned", k)], by.get(("oracle", k))
        vanilla = by.get(("vanilla", k))
        G, omega = learned_generator(learned["conserved"])
        row = {"key": k, "parallelness": learned["parallelness"], "omega": omega,
               "learned": {n: learned[n] for n in ("neg_elbo_per_n", "test_mse")},
               "oracle": None if oracle is None else
               {n: oracle[n] for n in ("neg_elbo_per_n", "test_mse")},
               # the oracle fitted by its own criterion: −ELBO/N below the plain HNN's
               "oracle_fitted": oracle is not None and (
                   vanilla is None or oracle["neg_elbo_per_n"] < vanilla["neg_elbo_per_n"])}
        for name, gen in (("fixed", G), ("unit", None if omega is None else G / omega)):
            if gen is None:
                row[name] = None
                continue
            r = run_one(settings, f"learned-{name}", k, data, generators=gen)
            row[name] = {n: r[n] for n in ("neg_elbo_per_n", "test_mse", "fit_s")}
            print(f"key {k} {name}: -ELBO/N {r['neg_elbo_per_n']:.2f}, test MSE "
                  f"{r['test_mse']:.3e}", flush=True)
        rows.append(row)

    def cell(d, ref):
        if d is None:
            return "–"
        ratio = "" if ref is None else f" ({d['test_mse'] / ref['test_mse']:.2f}×)"
        return f"{d['neg_elbo_per_n']:.2f} / {d['test_mse']:.3e}{ratio}"

    lines = [f"The demo's learned generator (`records/{args.source}/`) refitted as a fixed "
             "symmetry on the demo's data, same fit key and settings: as learned (Ĝ) and "
             "rescaled to angular frequency 1 (Ĝ / ω̂). Cells: −ELBO/N / test MSE (test MSE "
             "/ the oracle's on that key).", "",
             "| key | parallelness | ω̂ | learned (record) | fixed at Ĝ | fixed at Ĝ / ω̂ | "
             "oracle (record) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        o = r["oracle"]
        ref = o if r["oracle_fitted"] else None
        lines.append(f"| {r['key']} | {r['parallelness']:.4f} | "
                     f"{'–' if r['omega'] is None else format(r['omega'], '.3f')} | "
                     f"{cell(r['learned'], ref)} | {cell(r['fixed'], ref)} | "
                     f"{cell(r['unit'], ref)} | {cell(o, None)} |")
    lines += ["", "Ratios are left out where the oracle did not fit by its own criterion "
              "(its −ELBO/N not below the plain HNN's on that key)."]
    text = "\n".join(lines) + "\n"
    write_record(args.topic, table=text,
                 metrics={"settings": dataclasses.asdict(settings), "source": args.source,
                          "rows": rows}, command=sys.argv,
                 wall_s=time.perf_counter() - start)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
