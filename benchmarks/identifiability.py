"""What the selection's own rule reads on the exact Hamiltonian: an upper bound on what any fit
can be scored right on, at the discovery benchmark's training states.

    python benchmarks/identifiability.py            # every system of discovery.py, keys 0-4

For each system and key, the training states of ``benchmarks/discovery.py`` (the same data
keys and sizes) and the exact ``H``: the residual spectrum of ``{C, H}`` over all quadratic
``C`` (``inference.conservation_spectrum``), the ground-truth dimension ``L`` (the hand-derived
span: residual 0 up to round-off), the residuals either side of it (``r_L``: the largest
conserved one; ``r_{L+1}``, discovery.py's "margin": the best-conserved broken direction), and
the dimension that ``inference.spectrum_dimension`` reads off that spectrum at the selection's
``max_residual`` (``inference.select.DEFAULT_MAX_RESIDUAL``), with its gap. Where the rule reads
another dimension than ``L`` on the exact ``H``, the ground truth is not identifiable by that
rule on those states: a fit read by the same rule is scored against a dimension that its own
criterion cannot resolve even with ``H`` known. No fitting; float64.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from discovery import add_data_arguments, check_systems, train_data  # noqa: E402
from record import publish  # noqa: E402

from noether_ppl import inference, systems  # noqa: E402
from noether_ppl.inference.select import DEFAULT_MAX_RESIDUAL  # noqa: E402


def row(name: str, key: int, *, trajectories: int, points: int, max_residual: float) -> dict:
    system = {**systems.PAPER, **systems.SUITE}[name]()
    L = system.generators().shape[0]
    train = train_data(system, key, trajectories=trajectories, points=points)
    x = np.asarray(train.states, np.float64).reshape(-1, system.phase_dim)
    r, _ = inference.conservation_spectrum(system.hamiltonian, x)
    D, gap = inference.spectrum_dimension(r, max_residual)
    return {"system": name, "key": key, "true_dim": L,
            "largest_conserved": float(r[L - 1]) if L else None,
            "margin": float(r[L]) if L < r.size else None,
            "rule_dim": D, "rule_gap": gap, "identifiable": bool(D == L),
            "spectrum_head": [float(v) for v in r[:L + 4]]}


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def table(rows: list[dict], args) -> str:
    out = [f"The selection's rule (`spectrum_dimension`, max_residual = {args.max_residual}) "
           f"on the exact H at discovery.py's training states ({args.trajectories} trajectories "
           f"x {args.points} steps, data key 1000 + key).", "",
           "| system | key | true | largest conserved residual | margin | rule on exact H | "
           "gap |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['system']} | {r['key']} | {r['true_dim']} | "
                   f"{_fmt(r['largest_conserved'], '.1e')} | {_fmt(r['margin'], '.3f')} | "
                   f"{r['rule_dim']} | {_fmt(r['rule_gap'], '.3g')} |")
    out += ["", "| system | rule on exact H reads the true dimension |", "|---|---:|"]
    for name in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == name]
        out.append(f"| {name} | {sum(r['identifiable'] for r in rs)}/{len(rs)} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(p)
    p.add_argument("--max-residual", type=float, default=DEFAULT_MAX_RESIDUAL)
    p.add_argument("--topic", default="identifiability")
    args = p.parse_args(argv)
    check_systems(p, args.systems)
    start = time.perf_counter()
    rows = [row(n, k, trajectories=args.trajectories, points=args.points,
                max_residual=args.max_residual) for n in args.systems for k in args.keys]
    text = table(rows, args)
    return publish(args, text, rows, start)


if __name__ == "__main__":
    sys.exit(main())
